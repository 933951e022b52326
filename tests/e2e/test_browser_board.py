"""End to end in headless Chromium, the board player: a link on a fresh server, clicks, typed moves, hostile link text, chess piece then destination."""

from __future__ import annotations

import re
import time

import pytest

from core.games.othello import engine as othello
from core.games.othello.play import game_state
from core.models.registry import default_model_name

from tests.e2e import helpers as H
from tests.e2e.helpers import needs_chromium

pytestmark = needs_chromium


def test_link_to_a_page_on_a_fresh_server_opens_it_in_the_app(fresh_app_url, browser):
    """The first request to a just-started server is a link straight to a page: it must open
    inside the app (sidebar model picker, wide layout), not as a bare script."""
    app_url = fresh_app_url
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.goto(f"{app_url}/sae_browser?moves=d3c5f6")
    page.get_by_text("Feature dashboard").wait_for(timeout=120_000)
    page.locator('[data-testid="stSidebar"]').get_by_text("Model", exact=True).wait_for(timeout=30_000)
    page.get_by_text("Top-activating positions").wait_for(timeout=60_000)
    page.wait_for_function("() => document.querySelectorAll('[data-testid=stMain] .js-plotly-plot').length >= 6", timeout=60_000)
    assert page.locator('[data-testid="stException"]').count() == 0
    assert "moves=d3c5f6" in page.url and "/sae_browser" in page.url


def test_share_link_then_click_a_legal_square(app_url, browser):
    moves = "d3c5f6"
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.goto(f"{app_url}/?model={default_model_name()}&moves={moves}")
    page.get_by_text("White to move").wait_for(timeout=60_000)
    page.wait_for_selector("[data-testid=stMain] .js-plotly-plot", timeout=30_000)
    before = H.metric_value(page, "Top-1 move", "[a-h][1-8]")

    state = game_state(othello.parse_moves(moves))
    target = int(state.legal.nonzero()[0][0])
    label = othello.square_to_label(target)
    H.click_square(page, target, 8)
    page.get_by_text("Black to move").wait_for(timeout=30_000)
    page.wait_for_function(f"() => window.location.search.includes('moves={moves}{label}')", timeout=30_000)
    page.get_by_text(f"d3 c5 f6 {label}").wait_for(timeout=30_000)
    after_state = game_state(state.moves + (target,))
    after = H.metric_value(page, "Top-1 move", "[a-h][1-8]")
    assert re.fullmatch(r"[a-h][1-8]", after)
    # The panel shows the model's real top-1 for the new position.
    from core.interp.shared.predictions import predict
    from core.models.registry import load_model

    expected = othello.square_to_label(predict(load_model(default_model_name()), after_state).top1)
    assert H.metric_value(page, "Top-1 move", expected) == expected
    H.keep_screenshot(page, "after_click")
    assert before.strip() != "" and after.strip() != ""


def test_illegal_click_is_explained_then_a_legal_click_plays(app_url, browser):
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.goto(f"{app_url}/?moves=d3")
    page.get_by_text("White to move").wait_for(timeout=60_000)
    page.wait_for_selector("[data-testid=stMain] .js-plotly-plot", timeout=30_000)
    for _ in range(2):  # the same illegal square twice: a message each time
        for attempt in range(3):  # under load a click can land before the chart listens: it then does nothing, so click again
            H.click_square(page, othello.label_to_square("a1"), 8)
            try:
                page.get_by_text("Illegal move").wait_for(timeout=15_000)
                break
            except Exception:  # noqa: BLE001 - playwright's TimeoutError
                if attempt == 2:
                    raise
        page.get_by_text("White to move").wait_for(timeout=10_000)
        # The board is redrawn without the click's selection (a selection dims every other square).
        page.wait_for_function(
            "() => document.querySelector('[data-testid=stMain] .js-plotly-plot').data.every(t => !t.selectedpoints || !t.selectedpoints.length)", timeout=30_000
        )
    H.click_square(page, othello.label_to_square("c5"), 8)
    page.get_by_text("Black to move").wait_for(timeout=30_000)
    page.wait_for_function("() => window.location.search.includes('moves=d3c5')", timeout=30_000)
    H.no_warning_left(page)


def test_two_fast_clicks_play_two_moves(app_url, browser):
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.goto(f"{app_url}/?moves=")
    page.get_by_text("Black to move").wait_for(timeout=60_000)
    page.wait_for_selector("[data-testid=stMain] .js-plotly-plot", timeout=30_000)
    H.click_square(page, othello.label_to_square("d3"), 8)
    page.wait_for_timeout(250)
    H.click_square(page, othello.label_to_square("c5"), 8)
    page.wait_for_function("() => window.location.search.includes('moves=d3c5')", timeout=60_000)
    page.get_by_text("Black to move").wait_for(timeout=30_000)
    H.no_warning_left(page)


def test_enter_in_the_moves_box_plays_the_moves(app_url, browser):
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.goto(f"{app_url}/?model={default_model_name()}")
    page.get_by_text("Black to move").wait_for(timeout=60_000)
    box = page.get_by_label("Moves", exact=True).and_(page.get_by_test_id("stTextInputField"))
    box.fill("d3 c5")
    box.press("Enter")
    page.get_by_text("Black to move").wait_for(timeout=30_000)
    page.wait_for_function("() => window.location.search.includes('moves=d3c5')", timeout=30_000)
    assert page.locator('[data-testid="stException"]').count() == 0


def test_link_text_is_shown_as_plain_text_never_as_a_link_or_image(app_url, browser):
    from urllib.parse import quote

    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    hostile = quote("[Click here](https://example.com/login) ![img](https://example.com/x.png) www.example.com " + "x" * 3000)
    page.goto(f"{app_url}/?model={hostile}&moves={hostile}")
    page.get_by_text("Unknown model").wait_for(timeout=60_000)
    page.get_by_text("Could not restore the game").wait_for(timeout=30_000)
    alerts = page.locator('[data-testid="stAlert"]')
    assert alerts.count() >= 2
    for i in range(alerts.count()):
        alert = alerts.nth(i)
        assert alert.locator("a").count() == 0 and alert.locator("img").count() == 0
        assert len(alert.inner_text()) < 1000  # long values are cut
    assert "[Click here]" in alerts.first.inner_text()


def test_chess_link_click_a_piece_then_its_destination(app_url, browser):
    from core.games.chess import rules as C
    from core.models.registry import list_models

    chess_model = next((s.name for s in list_models() if s.source == "bundled" and s.game == "chess"), None)
    if chess_model is None:
        pytest.skip("no bundled chess model")
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.goto(f"{app_url}/?model={chess_model}&moves=e2e4e7e5")
    page.get_by_text("White to move").wait_for(timeout=90_000)
    page.wait_for_selector("[data-testid=stMain] .js-plotly-plot", timeout=30_000)
    page.get_by_text("Top legal moves").wait_for(timeout=30_000)
    uci = r"[a-h][1-8][a-h][1-8][qrbn]?"
    before = H.metric_value(page, "Top-1 move", uci)
    time.sleep(1.5)
    H.click_square(page, C.chess.G1, 8)  # the knight
    page.get_by_text("Piece on g1 picked").wait_for(timeout=30_000)
    page.wait_for_function("() => document.querySelector('[data-testid=stMain] .js-plotly-plot').innerText.includes('P(to | g1)')", timeout=30_000)
    H.keep_screenshot(page, "picked")
    time.sleep(1.5)  # the picked-piece board replaces the first one: let it settle before clicking
    H.click_square(page, C.chess.F3, 8)  # its destination
    page.get_by_text("Black to move").wait_for(timeout=30_000)
    page.wait_for_function("() => window.location.search.includes('moves=e2e4e7e5g1f3')", timeout=30_000)
    page.get_by_text("1. e4 e5 2. Nf3").wait_for(timeout=30_000)
    page.get_by_text("Top legal moves").wait_for(timeout=30_000)
    after = H.metric_value(page, "Top-1 move", uci)
    assert re.fullmatch(uci, after) and re.fullmatch(uci, before)
    assert page.locator('[data-testid="stException"]').count() == 0


def test_model_card_is_drawn_when_opened(app_url, browser):
    """The card is drawn only while open (its learning curve is not paid on every page load):
    closed, the sidebar has no figure; one click opens the card's figures, its numbers and the
    command that trained the model."""
    from ui.caches import bundled_card

    card = bundled_card(default_model_name())
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.goto(f"{app_url}/?model={default_model_name()}&moves=d3c5f6")
    page.wait_for_selector("[data-testid=stMain] .js-plotly-plot", timeout=60_000)
    page.wait_for_function(H.SETTLED, timeout=60_000)
    sidebar = page.locator('[data-testid="stSidebar"]')
    assert sidebar.locator(".js-plotly-plot").count() == 0
    sidebar.get_by_text("Model card").click()
    sidebar.get_by_text("Held-out top-1 legal rate by training step").wait_for(timeout=60_000)
    page.wait_for_function("() => document.querySelectorAll('[data-testid=stSidebar] .js-plotly-plot').length == 1", timeout=60_000)
    sidebar.get_by_text(f"{card['eval']['top1_legal']:.2%}").first.wait_for(timeout=10_000)
    assert "python -m core.train" in sidebar.inner_text()
    assert page.locator('[data-testid="stException"]').count() == 0
