"""End to end in headless Chromium: a link to each page of the bundled text model renders the
whole page, with the prompt the link carries."""

from __future__ import annotations

import urllib.parse

import pytest
from playwright.sync_api import expect

from tests.e2e import helpers as H
from tests.e2e.helpers import needs_chromium

pytestmark = needs_chromium
PROMPT = "import os\n\ndef main():\n    print(os.getcwd())\n"
TEXT_PAGES = [
    # page, a text that appears once the page has rendered, plotly figures then on the page
    ("", "mean loss of the real next token", 2),
    ("probe_viewer", "has no board", 0),
    ("logit_lens", "Top next token after each layer", 2),
    ("patching_lab", "Metric: logit of", 1),
    ("sae_browser", "Mean loss of the real next token", 1),
]


@pytest.mark.parametrize("page_name, text, figures", TEXT_PAGES)
def test_text_model_link_renders_every_page_in_chromium(app_url, browser, page_name, text, figures):
    from core.models.registry import list_models

    model = next((s.name for s in list_models() if s.source == "bundled" and s.kind == "text"), None)
    if model is None:
        pytest.skip("no bundled text model")
    page = browser.new_page(viewport={"width": 1400, "height": 1200})
    page.goto(f"{app_url}/{page_name}?model={model}&prompt={urllib.parse.quote(PROMPT)}")
    page.get_by_text(text).first.wait_for(timeout=240_000)
    page.get_by_role("button", name="Share this view").wait_for(timeout=240_000)
    page.wait_for_function(H.SETTLED, timeout=240_000)
    page.wait_for_function(f"() => document.querySelectorAll('[data-testid=stMain] .js-plotly-plot').length >= {figures}", timeout=120_000)
    H.keep_screenshot(page, f"text_{page_name or 'prompt'}")
    assert page.locator('[data-testid="stException"]').count() == 0
    if page_name != "probe_viewer":  # every other page shows the prompt it reads
        # Streamlit's frontend loads the text box's code on first use and fills the box a moment
        # after drawing it: wait for what a person sees once it has, not for the first frame.
        expect(page.locator("textarea").first).to_have_value(PROMPT, timeout=60_000)
    assert "prompt=" in page.evaluate("location.search")
