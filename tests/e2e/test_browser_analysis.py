"""End to end in headless Chromium, the analysis pages: board, DLA-head, patching-cell and SAE-table clicks; each page renders."""

from __future__ import annotations

import time

import pytest

from core.games.othello import engine as othello
from core.models.registry import default_model_name

from tests.e2e import helpers as H
from tests.e2e.helpers import needs_chromium

pytestmark = needs_chromium


def test_a_click_on_the_probe_viewers_board_plays_that_move(app_url, browser):
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.goto(f"{app_url}/probe_viewer?moves=d3c5")
    page.get_by_text("Random move").first.wait_for(timeout=120_000)
    page.wait_for_function("() => [...document.querySelectorAll('[data-testid=stMain] .js-plotly-plot')].some(g => ((g._fullLayout.title || {}).text || '').includes('True board'))", timeout=60_000)
    H.click_square(page, othello.label_to_square("e6"), 8, "True board")  # legal for black after d3 c5
    page.wait_for_function("() => window.location.search.includes('moves=d3c5e6')", timeout=60_000)
    assert page.locator('[data-testid="stException"]').count() == 0


def test_a_click_on_a_dla_head_cell_opens_its_attention(app_url, browser):
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.goto(f"{app_url}/logit_lens?moves=d3c5f6f5&section=attribution")
    page.get_by_text("Direct logit attribution").wait_for(timeout=120_000)
    page.wait_for_function("() => [...document.querySelectorAll('[data-testid=stMain] .js-plotly-plot')].some(g => (g._fullLayout.title.text || '').includes('embeddings'))", timeout=60_000)
    H.click_cell(page, "embeddings", 2, 1)  # head H2 of layer 1
    page.get_by_text("L1H2's attention pattern, opened from its attribution cell").wait_for(timeout=60_000)  # the Attention section opened
    page.get_by_text("L1H2: destination (rows) attends to source (columns)").wait_for(timeout=60_000)  # the view switched to that head
    assert page.locator('[data-testid="stException"]').count() == 0


def test_a_click_on_a_patching_cell_opens_that_site(app_url, browser):
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.goto(f"{app_url}/patching_lab?moves=d3c5f6f5e6e3")
    H.run_exact_sweep(page)
    page.wait_for_function("() => document.querySelectorAll('[data-testid=stMain] .js-plotly-plot').length >= 6", timeout=120_000)  # the lab renders whole (a loaded machine: the sweep's run first)
    assert page.locator('[data-testid="stException"]').count() == 0 and "moves=d3c5f6f5e6e3" in page.url
    # The block maps: the plot whose title names the patched sites; click mlp_out (third map), layer 1, position 4.
    H.click_cell(page, "per patched site", 3, 1, axis="3")
    page.wait_for_function("() => window.location.search.includes('component=mlp_out&layer=1&position=4')", timeout=60_000)
    assert page.locator('[data-testid="stException"]').count() == 0


def test_logit_lens_page_renders_a_click_on_a_lens_board_plays_it_and_a_section_opens(app_url, browser):
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.goto(f"{app_url}/logit_lens?moves=d3c5")
    page.get_by_text("The prediction after each layer").first.wait_for(timeout=120_000)
    page.wait_for_function("() => document.querySelectorAll('[data-testid=stMain] .js-plotly-plot').length >= 8", timeout=60_000)  # legality, a board per layer
    assert "moves=d3c5" in page.url
    H.click_square(page, othello.label_to_square("e6"), 8, "L5 mlp")  # a lens board plays a move: legal for black after d3 c5
    page.wait_for_function("() => window.location.search.includes('moves=d3c5e6')", timeout=60_000)
    page.get_by_text("The prediction after each layer").first.wait_for(timeout=60_000)
    page.locator("[data-testid=\"stButtonGroup\"] button", has_text="Neuron view").first.click()  # one section at a time
    page.get_by_text("fires on").first.wait_for(timeout=60_000)  # the neuron dashboard
    page.wait_for_function("() => window.location.search.includes('section=neurons')", timeout=60_000)
    assert page.locator('[data-testid="stException"]').count() == 0
    assert "moves=d3c5e6" in page.url


def third_row_feature() -> int:
    """The feature in the third row of the default model's first SAE table (the rows are ordered
    by F1), from the index the server reads (the shipped one)."""
    from core import corpus_results
    from core.interp.shared import unit_index
    from core.interp.sae.store import list_saes, load_sae
    from core.models.registry import load_model

    handle = load_model(default_model_name())
    entry = list_saes(handle.name)[0]
    sae = load_sae(entry.folder, d_in=handle.hook_width(entry.hook))
    index, _ = corpus_results.load_or_build(handle, corpus_results.sae_index_result(handle, sae, entry.hook, entry.name))
    return int(unit_index.feature_table(index)["feature"][2])


def test_a_click_on_any_cell_of_the_sae_table_opens_that_feature(app_url, browser):
    from core.interp.sae.store import list_saes

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
    third = third_row_feature()
    # the "density" cell of the third row: not the checkbox column
    page.mouse.click(box["x"] + box["width"] * 0.35, box["y"] + row_height * 3.5)
    page.wait_for_function(f"() => document.body.innerText.includes('Feature {third} fires on') || document.body.innerText.includes('Feature {third} never')", timeout=60_000)
    page.wait_for_function(f"() => window.location.search.includes('feature={third}')", timeout=30_000)
    assert page.locator('[data-testid="stException"]').count() == 0
