"""Fixtures of the browser tests: one Streamlit server and one Chromium per test process (each
parallel worker that runs browser tests starts its own, once, and its modules share them, as the
visitors of a hosted demo share one server). A test that needs a server nobody has used yet asks
for ``fresh_app_url``."""

from __future__ import annotations

import pytest

from tests.e2e.helpers import chromium_and_profile, streamlit_server


@pytest.fixture(scope="session")
def app_url():
    yield from streamlit_server()


@pytest.fixture
def fresh_app_url():
    """A server started for this test alone: its first request is the test's."""
    yield from streamlit_server()


class OneVisitor:
    """Chromium as one visitor uses it: ``new_page`` opens a tab in one long-lived browser profile,
    so Streamlit's and plotly's scripts come from its HTTP cache with their compiled code (a new
    context downloads, parses and compiles ~10 MB of JavaScript again). Each tab is still a new
    Streamlit session. ``new_context`` gives a browser that has seen nothing, for tests that need
    one."""

    def __init__(self, browser, visitor):
        self._browser = browser
        self._visitor = visitor

    def new_page(self, viewport: dict | None = None):
        page = self._visitor.new_page()
        if viewport:
            page.set_viewport_size(viewport)
        return page

    @property
    def contexts(self) -> list:
        return [self._visitor, *self._browser.contexts]

    def close_pages(self) -> None:
        """Close every tab and every context that has seen nothing (an open tab keeps its renderer
        and its Streamlit session busy, taking CPU from the tests after it); keep the visitor's
        profile."""
        for page in list(self._visitor.pages):
            page.close()
        for context in list(self._browser.contexts):
            context.close()

    def __getattr__(self, name):
        return getattr(self._browser, name)


@pytest.fixture(scope="session")
def browser():
    for chrome, visitor in chromium_and_profile():
        yield OneVisitor(chrome, visitor)


@pytest.fixture(autouse=True)
def close_pages(browser):
    yield
    browser.close_pages()


PAGE_STATE = """() => ({
    figures: document.querySelectorAll('[data-testid=stMain] .js-plotly-plot').length,
    stale: document.querySelectorAll('[data-stale="true"]').length,
    running: !!document.querySelector('[data-testid="stStatusWidget"]'),
    buttons: [...document.querySelectorAll('button')].map(b => b.innerText.trim()).filter(t => t),
    text: document.body.innerText,
})"""


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """A failed browser test reports what its pages showed then (address, figures drawn, stale
    elements, whether a script run was still going, buttons, text): a timeout alone says only
    which wait gave up."""
    outcome = yield
    report = outcome.get_result()
    browser = item.funcargs.get("browser") if hasattr(item, "funcargs") else None
    if report.when != "call" or not report.failed or browser is None:
        return
    for context in browser.contexts:
        for page in context.pages:
            try:
                state = page.evaluate(PAGE_STATE)
            except Exception as exc:  # a crashed or closed page: say so instead
                report.sections.append(("page at failure", f"{page.url}: unreadable ({exc})"))
                continue
            text = state.pop("text")
            report.sections.append(("page at failure", f"{page.url}\n{state}\n--- text (first 4000 characters) ---\n{text[:4000]}"))
