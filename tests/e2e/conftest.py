"""Fixtures of the browser tests: one Streamlit server and one Chromium per test process (each
parallel worker that runs browser tests starts its own, once, and its modules share them, as the
visitors of a hosted demo share one server). A test that needs a server nobody has used yet asks
for ``fresh_app_url``."""

from __future__ import annotations

import pytest

from tests.e2e.helpers import chromium, streamlit_server


@pytest.fixture(scope="session")
def app_url():
    yield from streamlit_server()


@pytest.fixture
def fresh_app_url():
    """A server started for this test alone: its first request is the test's."""
    yield from streamlit_server()


@pytest.fixture(scope="session")
def browser():
    yield from chromium()


@pytest.fixture(autouse=True)
def close_pages(browser):
    """Close every page a test opened: an open page keeps its renderer and its Streamlit session
    busy, taking CPU from the tests after it."""
    yield
    for context in list(browser.contexts):
        context.close()


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
