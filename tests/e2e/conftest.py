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
