"""End to end in headless Chromium: share links reopen the same view in a fresh browser; a chess link renders every analysis page."""

from __future__ import annotations


import pytest


from tests.e2e import helpers as H
from tests.e2e.helpers import needs_chromium

pytestmark = needs_chromium


SHARE_PAGES = [
    # page path, its title, parameters of the view
    ("", "Board player", "moves=d3c5f6"),
    ("probe_viewer", "Probe viewer", "moves=d3c5f6"),
    ("logit_lens", "Logit lens", "moves=d3c5f6"),
    ("sae_browser", "SAE feature browser", "moves=d3c5f6&feature=7"),
    ("patching_lab", "Patching lab", "moves=d3c5f6f5e6&change=3&metric=logit-difference&direction=noising&normalise=0&component=mlp_out"),
    ("circuits", "Circuits", "moves=d3c5f6f5e6e3c3d2c4b3&target=top&nodes=0.80&edges=0.98"),
]


@pytest.mark.parametrize("path, title, params", SHARE_PAGES)
def test_share_link_opens_the_same_view_in_a_fresh_browser(app_url, browser, path, title, params):
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.goto(f"{app_url}/{path}?{params}")
    page.get_by_role("heading", name=title).wait_for(timeout=180_000)
    page.get_by_role("button", name="Share this view").wait_for(timeout=180_000)
    H.keep_screenshot(page, f"page_{path or 'board_player'}", full_page=False)  # README's pictures (docs/img)
    link = H.share_link_of(page)
    assert link.startswith(f"{app_url}/{path}?") and all(p in link for p in params.split("&")), link
    fresh = browser.new_context(viewport={"width": 1400, "height": 1000}).new_page()
    fresh.goto(link)
    fresh.get_by_role("heading", name=title).wait_for(timeout=180_000)
    fresh.get_by_role("button", name="Share this view").wait_for(timeout=180_000)
    assert H.share_link_of(fresh) == link
    assert fresh.locator('[data-testid="stException"]').count() == 0
    fresh.context.close()


CHESS_PAGES = [
    # page, texts that appear once the page's sections have rendered (the last one last), plotly figures then on the page
    ("logit_lens", ("The prediction after each layer",), 10),  # its first section: legality and a board per layer
    ("probe_viewer", ("a random edit of the same size gives",), 6),
    ("patching_lab", ("One site: its effect",), 6),
    ("sae_browser", ("Top-activating positions",), 8),
]


@pytest.mark.parametrize("page_name, texts, figures", CHESS_PAGES)
def test_chess_link_renders_each_analysis_page_in_chromium(app_url, browser, page_name, texts, figures):
    from core.interp.sae.store import list_saes
    from core.models.registry import list_models

    chess_model = next((s.name for s in list_models() if s.source == "bundled" and s.game == "chess"), None)
    if chess_model is None:
        pytest.skip("no bundled chess model")
    if page_name == "sae_browser" and not list_saes(chess_model):
        pytest.skip("no bundled chess SAE")
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.goto(f"{app_url}/{page_name}?model={chess_model}&moves=e2e4e7e5g1f3b8c6")
    for text in texts:
        page.get_by_text(text).first.wait_for(timeout=240_000)
    if page_name == "patching_lab":
        H.run_exact_sweep(page)
    page.wait_for_function(f"() => document.querySelectorAll('[data-testid=stMain] .js-plotly-plot').length >= {figures}", timeout=60_000)
    H.keep_screenshot(page, f"chess_{page_name}")
    assert page.locator('[data-testid="stException"]').count() == 0
    assert "moves=e2e4e7e5g1f3b8c6" in page.url

