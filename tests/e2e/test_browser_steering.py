"""End to end in headless Chromium: a steering link on each page that shows a unit renders the
panel (the verdict, the boards or the continuation, the sweep) with no exception, and the share
link keeps the edit."""

from __future__ import annotations

import pytest

from tests.e2e import helpers as H
from tests.e2e.helpers import needs_chromium

pytestmark = needs_chromium

STEERING_LINKS = [
    # page, parameters, the verdict's start, a name for the screenshot
    ("sae_browser", "model=othello8&moves=d3c5f6f5e6e3c3d2&feature=7&steer=clamp:2&sweep=1", "Clamping feature 7", "steer_sae_othello8"),
    ("logit_lens", "model=chess&moves=e2e4e7e5g1f3b8c6&section=neurons&neuron=L3N40&steer=zero", "Ablating L3N40", "steer_neuron_chess"),
    ("logit_lens", "model=chess-pgn&moves=e2e4e7e5g1f3b8c6&section=attention&head=L1H2&steer=mean&steer_from=3&sweep=1", "Ablating L1H2 to its mean", "steer_head_pgn"),
    ("patching_lab", "model=othello8&moves=d3c5f6f5e6e3&change=3&component=attn_out&layer=2&steer_unit=L2H5&steer=scale:0", "Scaling L2H5 by 0", "steer_site_othello8"),
    ("sae_browser", "model=text-stdlib&steer=clamp:3", "Clamping feature", "steer_sae_text"),
]


@pytest.mark.parametrize("path, params, starts, name", STEERING_LINKS)
def test_a_steering_link_renders_its_panel(app_url, browser, path, params, starts, name):
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.goto(f"{app_url}/{path}?{params}")
    if "text" in params:  # the text SAE browser shows a feature under its "Feature" tab
        page.get_by_role("tab", name="Feature", exact=True).click(timeout=240_000)
    page.get_by_text(starts).first.wait_for(timeout=240_000)
    page.wait_for_function(H.RUN_ENDED, timeout=120_000)
    assert page.locator('[data-testid="stException"]').count() == 0
    assert "nats" in page.get_by_text(starts).first.inner_text()
    if "sweep=1" in params:
        page.get_by_text("all in one batched forward").first.wait_for(timeout=60_000)
    if "text" in params:
        page.get_by_text("With the edit:").first.wait_for(timeout=60_000)
    H.keep_screenshot(page, name)
    link = H.share_link_of(page)
    steer = next(p for p in params.split("&") if p.startswith("steer="))
    assert steer in link.replace("%3A", ":"), link
    page.close()
