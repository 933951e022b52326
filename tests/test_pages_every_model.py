"""Every page renders without error for every bundled model, on a game of that model's game.

A page that does not serve a model's game says so (and nothing else fails)."""

from __future__ import annotations

import re

import pytest
from core.interp.probes.linear_probes import PROBE_ROOT
from core.interp.sae.store import list_saes
from core.models.registry import list_models
from tests.test_board_player_page import open_page

BUNDLED = [s for s in list_models() if s.source == "bundled" and s.kind == "game"]  # text models: tests/test_text_pages.py
PAGES = ["pages/board_player.py", "pages/probe_viewer.py", "pages/patching_lab.py", "pages/sae_browser.py"]


@pytest.mark.parametrize("spec", BUNDLED, ids=[s.name for s in BUNDLED])
@pytest.mark.parametrize("page", PAGES)
def test_page_renders_for_model(spec, page):
    game = spec.game_plugin
    moves = game.url_moves(game.random_games(1, seed=3)[0][:8])
    at = open_page(page, model=spec.name, moves=moves)
    assert not at.error, [e.value for e in at.error]
    assert len(at.session_state["moves"]) == 8
    if any("does not serve" in i.value for i in at.info):
        assert not game.square_moves  # Othello is served everywhere
    elif page == "pages/probe_viewer.py" and not (PROBE_ROOT / spec.name / "summary.json").exists():
        assert any("No probes" in e.label for e in at.expander)
    elif page == "pages/sae_browser.py" and not list_saes(spec.name):
        assert any("No SAE for this model yet" in e.label for e in at.expander)
    else:
        assert len(at.get("plotly_chart")) >= 2


TEXT_ELEMENTS = ("markdown", "caption", "info", "warning", "error", "success", "metric", "title", "subheader", "header")


def shown_text(at) -> list[str]:
    """Every text element's words on the page (metrics: label and value)."""
    out = []
    for kind in TEXT_ELEMENTS:
        for element in at.get(kind):
            out += [str(getattr(element, "value", "")), str(getattr(element, "label", ""))]
    return out


ALL_PAGES = PAGES + ["pages/logit_lens.py"]


@pytest.mark.parametrize("spec", BUNDLED, ids=[s.name for s in BUNDLED])
@pytest.mark.parametrize("page", ALL_PAGES)
def test_an_empty_game_shows_no_nan_and_no_exception(spec, page):
    """An empty board is the first thing a visitor sees: every page says something, never "nan"."""
    at = open_page(page, model=spec.name)
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert not nan_words(at), nan_words(at)


def nan_words(at) -> list[str]:
    return [w for w in shown_text(at) if re.search(r"\bnan\b", w, re.IGNORECASE)]
