"""End to end in headless Chromium: a researcher uploads a PGN file in the sidebar; the probe
viewer scores its probes on those games and the sidebar reports the malformed ones."""

from __future__ import annotations

from tests.e2e import helpers as H
from tests.e2e.helpers import needs_chromium
from tests.test_game_corpus import CHESS_SAMPLE, MALFORMED

pytestmark = needs_chromium


def test_upload_a_pgn_file_and_the_probe_viewer_scores_on_it(app_url, browser, tmp_path):
    pgn = tmp_path / "mine.pgn"
    pgn.write_text(CHESS_SAMPLE.read_text() + "\n\n" + "\n\n".join(MALFORMED) + "\n")
    page = browser.new_page(viewport={"width": 1500, "height": 1400})
    page.goto(f"{app_url}/probe_viewer?model=chess&moves=e2e4e7e5")
    sidebar = page.locator('[data-testid="stSidebar"]')
    sidebar.locator('[data-testid="stSelectbox"]').filter(has_text="Games for statistics").locator("input").click(timeout=240_000)
    page.get_by_role("option", name="Your own file…").click()
    page.locator('[data-testid="stSidebar"] input[type="file"]').set_input_files(str(pgn))
    sidebar.get_by_text("mine.pgn: 200 games; 3 skipped").wait_for(timeout=240_000)
    page.get_by_text("Scores on 100 games of mine.pgn").wait_for(timeout=240_000)
    page.wait_for_function(H.SETTLED, timeout=240_000)
    H.keep_screenshot(page, "upload_probe_viewer")
    assert page.locator('[data-testid="stException"]').count() == 0
    sidebar.get_by_text("3 skipped game(s)").click()
    sidebar.get_by_text("game 202: starts from a set-up position").wait_for(timeout=30_000)  # the skipped list, by number in the file
    assert page.locator("[data-testid=stMain] .js-plotly-plot").count() >= 3  # boards and the accuracy chart with the file's line
