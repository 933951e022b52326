"""End to end in headless Chromium: a link to each page of a PGN-character chess model (Karvonen's
layout, the bundled model trained in it) renders the whole page."""

from __future__ import annotations

import pytest

from tests.e2e import helpers as H
from tests.e2e.helpers import needs_chromium

pytestmark = needs_chromium


PGN_PAGES = [
    # page, texts that appear once the page has rendered, plotly figures then on the page
    ("", ("Top legal moves",), 2),
    ("probe_viewer", ("Probe viewer",), 0),
    ("logit_lens", ("The same read-outs one character at a time",), 9),  # its first section: legality, a board per layer, the character lens
    ("patching_lab", ("One site: its effect",), 4),  # boards, block maps, one site; the exact sweep adds more
    ("sae_browser", ("SAE feature browser",), 0),
]


@pytest.mark.parametrize("page_name, texts, figures", PGN_PAGES)
def test_pgn_chess_link_renders_every_page_in_chromium(app_url, browser, page_name, texts, figures):
    """Karvonen's PGN-character layout (the bundled model trained in it): one link per page."""
    from core.interp.sae.store import list_saes
    from core.models.registry import list_models

    model = next((s.name for s in list_models() if s.source == "bundled" and s.tokenizer == "pgn-chars"), None)
    if model is None:
        pytest.skip("no bundled pgn-chars model")
    if page_name == "sae_browser" and list_saes(model):
        texts, figures = ("Top-activating positions", "The text around each top example"), 7  # the activation bands share one figure
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.goto(f"{app_url}/{page_name}?model={model}&moves=e2e4e7e5g1f3b8c6")
    for text in texts:
        page.get_by_text(text).first.wait_for(timeout=240_000)
    if page_name == "patching_lab":
        H.run_exact_sweep(page)
    page.get_by_role("button", name="Share this view").wait_for(timeout=240_000)
    # The run has ended when no element of the page is left stale (the lab's exact sweep on a busy
    # machine can take minutes); then every figure is drawn.
    page.wait_for_function(H.SETTLED, timeout=240_000)
    page.wait_for_function(f"() => document.querySelectorAll('[data-testid=stMain] .js-plotly-plot').length >= {figures}", timeout=120_000)
    H.keep_screenshot(page, f"pgn_{page_name or 'board'}")
    assert page.locator('[data-testid="stException"]').count() == 0
    assert page.locator("text=does not serve").count() == 0
    assert "moves=e2e4e7e5g1f3b8c6" in page.evaluate("location.search")
