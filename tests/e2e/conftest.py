"""Fixtures of the browser tests: one Streamlit server and one Chromium per test module (the
modules run on parallel workers)."""

from __future__ import annotations

import pytest

from tests.e2e.helpers import chromium, streamlit_server


@pytest.fixture(scope="module")
def app_url():
    yield from streamlit_server()


@pytest.fixture(scope="module")
def browser():
    yield from chromium()


@pytest.fixture(autouse=True)
def close_pages(browser):
    """Close every page a test opened: an open page keeps its renderer and its Streamlit session
    busy, taking CPU from the tests after it."""
    yield
    for context in list(browser.contexts):
        context.close()
