"""End to end in headless Chromium: open a share link, click a legal square, see the model update."""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from core.games import othello
from core.games.play import game_state
from core.models.registry import default_model_name

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = os.environ.get("BOARDLENS_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--disable-quic", "--no-first-run"]

# CI installs Chromium and must run this test; elsewhere a missing browser is a skip with a reason.
pytestmark = pytest.mark.skipif(
    not shutil.which(CHROMIUM) and not os.environ.get("CI"), reason=f"Chromium not found at {CHROMIUM} (apt-get install -y chromium)"
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def app_url():
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true", "--server.port", str(port), "--server.address", "127.0.0.1", "--browser.gatherUsageStats", "false"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            urllib.request.urlopen(url + "/_stcore/health", timeout=1)
            break
        except OSError:
            time.sleep(0.3)
    else:
        proc.kill()
        pytest.fail("streamlit did not start: " + proc.stdout.read().decode()[-2000:])
    yield url
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        yield b
        b.close()


def click_square(page, square: int, size: int, title: str = "") -> None:
    """Click the centre of ``square`` on the first board (whose title contains ``title``; plotly
    axes give its pixel position)."""
    row, col = divmod(square, size)
    xy = page.evaluate(
        """([col, row, title]) => {
            const gd = [...document.querySelectorAll('.js-plotly-plot')].find(g => ((g._fullLayout.title || {}).text || '').includes(title));
            gd.scrollIntoView({block: 'center'});
            const L = gd._fullLayout, box = gd.getBoundingClientRect();
            return [box.left + L._size.l + L.xaxis.l2p(col), box.top + L._size.t + L.yaxis.l2p(row)];
        }""",
        [col, row, title],
    )
    page.mouse.click(xy[0], xy[1])


def test_link_to_a_page_on_a_fresh_server_opens_it_in_the_app(app_url, browser):
    """The first request to a just-started server is a link straight to a page (this test runs
    first): it must open inside the app (sidebar model picker, wide layout), not as a bare script."""
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.goto(f"{app_url}/sae_browser?moves=d3c5f6")
    page.get_by_text("Feature dashboard").wait_for(timeout=120_000)
    page.locator('[data-testid="stSidebar"]').get_by_text("Model", exact=True).wait_for(timeout=30_000)
    page.get_by_text("Top-activating positions").wait_for(timeout=60_000)
    page.wait_for_function("() => document.querySelectorAll('.js-plotly-plot').length >= 6", timeout=60_000)
    assert page.locator('[data-testid="stException"]').count() == 0
    assert "moves=d3c5f6" in page.url and "/sae_browser" in page.url


def test_share_link_then_click_a_legal_square(app_url, browser, tmp_path):
    moves = "d3c5f6"
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.goto(f"{app_url}/?model={default_model_name()}&moves={moves}")
    page.get_by_text("White to move").wait_for(timeout=60_000)
    page.wait_for_selector(".js-plotly-plot", timeout=30_000)
    page.get_by_text("Top-1 move").wait_for(timeout=30_000)
    before = page.locator('[data-testid="stMetricValue"]').first.inner_text()

    state = game_state(othello.parse_moves(moves))
    target = int(state.legal.nonzero()[0][0])
    label = othello.square_to_label(target)
    click_square(page, target, 8)
    page.get_by_text("Black to move").wait_for(timeout=30_000)
    page.wait_for_function(f"() => window.location.search.includes('moves={moves}{label}')", timeout=30_000)
    page.get_by_text(f"d3 c5 f6 {label}").wait_for(timeout=30_000)
    page.get_by_text("Top-1 move").wait_for(timeout=30_000)
    after_state = game_state(state.moves + (target,))
    after = page.locator('[data-testid="stMetricValue"]').first.inner_text()
    assert re.fullmatch(r"[a-h][1-8]", after.strip())
    # The panel shows the model's real top-1 for the new position.
    from core.interp.predictions import predict
    from core.models.registry import load_model

    expected = othello.square_to_label(predict(load_model(default_model_name()), after_state).top1)
    page.wait_for_function(
        f"() => document.querySelector('[data-testid=\"stMetricValue\"]').innerText.trim() === '{expected}'", timeout=30_000
    )
    page.screenshot(path=str(tmp_path / "after_click.png"), full_page=True)
    assert before.strip() != "" and after.strip() != ""


def test_illegal_click_is_explained_then_a_legal_click_plays(app_url, browser):
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.goto(f"{app_url}/?moves=d3")
    page.get_by_text("White to move").wait_for(timeout=60_000)
    page.wait_for_selector(".js-plotly-plot", timeout=30_000)
    for _ in range(2):  # the same illegal square twice: a message each time
        click_square(page, othello.label_to_square("a1"), 8)
        page.get_by_text("Illegal move").wait_for(timeout=30_000)
        page.get_by_text("White to move").wait_for(timeout=10_000)
        # The board is redrawn without the click's selection (a selection dims every other square).
        page.wait_for_function(
            "() => document.querySelector('.js-plotly-plot').data.every(t => !t.selectedpoints || !t.selectedpoints.length)", timeout=30_000
        )
    click_square(page, othello.label_to_square("c5"), 8)
    page.get_by_text("Black to move").wait_for(timeout=30_000)
    page.wait_for_function("() => window.location.search.includes('moves=d3c5')", timeout=30_000)
    no_warning_left(page)


def no_warning_left(page) -> None:
    """Once the run that played the move has finished (the earlier run's elements are cleared as
    it ends), no illegal-move warning is on the page."""
    page.wait_for_function("() => !document.body.innerText.includes('Illegal move') && !document.body.innerText.includes('already occupied')", timeout=30_000)


def test_two_fast_clicks_play_two_moves(app_url, browser):
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.goto(f"{app_url}/?moves=")
    page.get_by_text("Black to move").wait_for(timeout=60_000)
    page.wait_for_selector(".js-plotly-plot", timeout=30_000)
    click_square(page, othello.label_to_square("d3"), 8)
    page.wait_for_timeout(250)
    click_square(page, othello.label_to_square("c5"), 8)
    page.wait_for_function("() => window.location.search.includes('moves=d3c5')", timeout=60_000)
    page.get_by_text("Black to move").wait_for(timeout=30_000)
    no_warning_left(page)


@pytest.mark.parametrize("path, board_title, ready", [("logit_lens", "L5 mlp", "Direct logit attribution"), ("probe_viewer", "True board", "Random move")])
def test_a_click_on_an_analysis_board_plays_that_move(app_url, browser, path, board_title, ready):
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.goto(f"{app_url}/{path}?moves=d3c5")
    page.get_by_text(ready).first.wait_for(timeout=120_000)
    page.wait_for_function(f"() => [...document.querySelectorAll('.js-plotly-plot')].some(g => ((g._fullLayout.title || {{}}).text || '').includes('{board_title}'))", timeout=60_000)
    click_square(page, othello.label_to_square("e6"), 8, board_title)  # legal for black after d3 c5
    page.wait_for_function("() => window.location.search.includes('moves=d3c5e6')", timeout=60_000)
    assert page.locator('[data-testid="stException"]').count() == 0


def click_cell(page, title: str, x: int, y: int, axis: str = "") -> None:
    """Click cell (x, y) of the heatmap on axes ``x{axis}``/``y{axis}`` of the plot whose title
    contains ``title`` (plotly's axes give its pixel position)."""
    xy = page.evaluate(
        """([title, x, y, axis]) => {
            const gd = [...document.querySelectorAll('.js-plotly-plot')].find(g => ((g._fullLayout.title || {}).text || '').includes(title));
            gd.scrollIntoView({block: 'center'});
            const L = gd._fullLayout, box = gd.getBoundingClientRect(), X = L['xaxis' + axis], Y = L['yaxis' + axis];
            return [box.left + X._offset + X.l2p(x), box.top + Y._offset + Y.l2p(y)];
        }""",
        [title, x, y, axis],
    )
    page.mouse.click(xy[0], xy[1])


def test_a_click_on_a_dla_head_cell_opens_its_attention(app_url, browser):
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.goto(f"{app_url}/logit_lens?moves=d3c5f6f5")
    page.get_by_text("Direct logit attribution").wait_for(timeout=120_000)
    page.wait_for_function("() => [...document.querySelectorAll('.js-plotly-plot')].some(g => (g._fullLayout.title.text || '').includes('embeddings'))", timeout=60_000)
    click_cell(page, "embeddings", 2, 1)  # head H2 of layer 1
    page.get_by_text("L1H2 is open under Attention").wait_for(timeout=60_000)
    page.get_by_text("L1H2: destination (rows) attends to source (columns)").wait_for(timeout=60_000)  # the view switched to that head
    assert page.locator('[data-testid="stException"]').count() == 0


def test_a_click_on_a_patching_cell_opens_that_site(app_url, browser):
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.goto(f"{app_url}/patching_lab?moves=d3c5f6f5e6e3")
    page.get_by_text("One site: its effect").wait_for(timeout=120_000)
    page.wait_for_function("() => document.querySelectorAll('.js-plotly-plot').length >= 6", timeout=60_000)
    # The block maps: the plot whose title names the patched sites; click mlp_out (third map), layer 1, position 4.
    click_cell(page, "per patched site", 3, 1, axis="3")
    page.wait_for_function("() => window.location.search.includes('component=mlp_out&layer=1&position=4')", timeout=60_000)
    assert page.locator('[data-testid="stException"]').count() == 0


def test_logit_lens_page_renders_in_chromium(app_url, browser):
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.goto(f"{app_url}/logit_lens?moves=d3c5f6f5")
    page.get_by_text("Direct logit attribution").wait_for(timeout=90_000)
    page.get_by_text("Neuron view").wait_for(timeout=60_000)
    page.wait_for_function("() => document.querySelectorAll('.js-plotly-plot').length >= 10", timeout=60_000)
    assert page.locator('[data-testid="stException"]').count() == 0
    assert "moves=d3c5f6f5" in page.url


def test_patching_lab_renders_in_chromium(app_url, browser):
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.goto(f"{app_url}/patching_lab?moves=d3c5f6f5e6e3")
    page.get_by_text("One site: its effect").wait_for(timeout=120_000)
    page.wait_for_function("() => document.querySelectorAll('.js-plotly-plot').length >= 6", timeout=60_000)
    assert page.locator('[data-testid="stException"]').count() == 0
    assert "moves=d3c5f6f5e6e3" in page.url


def test_chess_link_click_a_piece_then_its_destination(app_url, browser, tmp_path):
    from core.games import chess as C
    from core.models.registry import list_models

    chess_model = next((s.name for s in list_models() if s.source == "bundled" and s.game == "chess"), None)
    if chess_model is None:
        pytest.skip("no bundled chess model")
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.goto(f"{app_url}/?model={chess_model}&moves=e2e4e7e5")
    page.get_by_text("White to move").wait_for(timeout=90_000)
    page.wait_for_selector(".js-plotly-plot", timeout=30_000)
    page.get_by_text("Top legal moves").wait_for(timeout=30_000)
    before = page.locator('[data-testid="stMetricValue"]').first.inner_text().strip()
    time.sleep(1.5)
    click_square(page, C.chess.G1, 8)  # the knight
    page.get_by_text("Piece on g1 picked").wait_for(timeout=30_000)
    page.wait_for_function("() => document.querySelector('.js-plotly-plot').innerText.includes('P(to | g1)')", timeout=30_000)
    page.screenshot(path=str(tmp_path / "picked.png"), full_page=True)
    time.sleep(1.5)  # the picked-piece board replaces the first one: let it settle before clicking
    click_square(page, C.chess.F3, 8)  # its destination
    page.get_by_text("Black to move").wait_for(timeout=30_000)
    page.wait_for_function("() => window.location.search.includes('moves=e2e4e7e5g1f3')", timeout=30_000)
    page.get_by_text("1. e4 e5 2. Nf3").wait_for(timeout=30_000)
    page.get_by_text("Top legal moves").wait_for(timeout=30_000)
    after = page.locator('[data-testid="stMetricValue"]').first.inner_text().strip()
    assert re.fullmatch(r"[a-h][1-8][a-h][1-8][qrbn]?", after) and re.fullmatch(r"[a-h][1-8][a-h][1-8][qrbn]?", before)
    assert page.locator('[data-testid="stException"]').count() == 0


CHESS_PAGES = [
    # page, texts that appear once the page's sections have rendered (the last one last), plotly figures then on the page
    ("logit_lens", ("Legal minus illegal, by component and position", "Neuron view"), 12),
    ("probe_viewer", ("a random edit of the same size gives",), 6),
    ("patching_lab", ("One site: its effect",), 6),
    ("sae_browser", ("Top-activating positions",), 8),
]


@pytest.mark.parametrize("page_name, texts, figures", CHESS_PAGES)
def test_chess_link_renders_each_analysis_page_in_chromium(app_url, browser, tmp_path, page_name, texts, figures):
    from core.interp.sae_store import list_saes
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
    page.wait_for_function(f"() => document.querySelectorAll('.js-plotly-plot').length >= {figures}", timeout=60_000)
    page.screenshot(path=str(tmp_path / f"{page_name}.png"), full_page=True)
    assert page.locator('[data-testid="stException"]').count() == 0
    assert "moves=e2e4e7e5g1f3b8c6" in page.url


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


SHARE_PAGES = [
    # page path, its title, parameters of the view
    ("", "Board player", "moves=d3c5f6"),
    ("probe_viewer", "Probe viewer", "moves=d3c5f6"),
    ("logit_lens", "Logit lens", "moves=d3c5f6"),
    ("sae_browser", "SAE feature browser", "moves=d3c5f6&feature=7"),
    ("patching_lab", "Patching lab", "moves=d3c5f6f5e6&change=3&metric=logit-difference&direction=noising&normalise=0&component=mlp_out"),
]


def share_link_of(page) -> str:
    page.get_by_role("button", name="Share this view").click()
    code = page.locator('[data-testid="stPopoverBody"] code').first
    code.wait_for(timeout=30_000)
    return code.inner_text().strip()


@pytest.mark.parametrize("path, title, params", SHARE_PAGES)
def test_share_link_opens_the_same_view_in_a_fresh_browser(app_url, browser, path, title, params):
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.goto(f"{app_url}/{path}?{params}")
    page.get_by_role("heading", name=title).wait_for(timeout=180_000)
    page.get_by_role("button", name="Share this view").wait_for(timeout=180_000)
    link = share_link_of(page)
    assert link.startswith(f"{app_url}/{path}?") and all(p in link for p in params.split("&")), link
    fresh = browser.new_context(viewport={"width": 1400, "height": 1000}).new_page()
    fresh.goto(link)
    fresh.get_by_role("heading", name=title).wait_for(timeout=180_000)
    fresh.get_by_role("button", name="Share this view").wait_for(timeout=180_000)
    assert share_link_of(fresh) == link
    assert fresh.locator('[data-testid="stException"]').count() == 0
    fresh.context.close()


def test_a_click_on_any_cell_of_the_sae_table_opens_that_feature(app_url, browser):
    from core.interp.sae_store import list_saes

    if not list_saes(default_model_name()):
        pytest.skip("no bundled SAE for the default model")
    page = browser.new_page(viewport={"width": 1500, "height": 1000})
    page.goto(f"{app_url}/sae_browser?moves=d3c5f6&feature=7")
    page.get_by_text("Top-activating positions").first.wait_for(timeout=240_000)
    page.wait_for_function("() => document.body.innerText.includes('Feature 7 fires on')", timeout=30_000)
    table = page.locator('[data-testid="stDataFrame"]').nth(1)  # the board metrics come first
    table.scroll_into_view_if_needed()
    box = table.bounding_box()
    row_height = 35  # the grid's default header and row height
    time.sleep(1.0)
    # the "density" cell of the third row (feature 2): not the checkbox column
    page.mouse.click(box["x"] + box["width"] * 0.35, box["y"] + row_height * 3.5)
    page.wait_for_function("() => document.body.innerText.includes('Feature 2 fires on') || document.body.innerText.includes('Feature 2 never')", timeout=60_000)
    page.wait_for_function("() => window.location.search.includes('feature=2')", timeout=30_000)
    assert page.locator('[data-testid="stException"]').count() == 0
