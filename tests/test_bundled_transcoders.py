"""The bundled transcoder set of othello8: every layer loads with SAELens, and its card's figures are
what the code measures on the card's own held-out games (recomputed here)."""

from __future__ import annotations

import json

import pytest

from core.interp.circuits.replacement import load_transcoders, transcoder_folder
from core.models.registry import load_model
from core.train.transcoder import TRANSCODER_SEED_BASE, evaluate


@pytest.fixture(scope="module")
def bundled():
    handle = load_model("othello8")
    folder = transcoder_folder("othello8")
    assert folder is not None, "assets/transcoders/othello8 is shipped"
    return handle, load_transcoders(folder, handle.cfg.n_layers), json.loads((folder / "card.json").read_text())


def test_the_card_has_every_layer_and_the_replacement_scores(bundled):
    handle, transcoders, card = bundled
    metrics = card["metrics"]
    assert [m["layer"] for m in metrics["layers"]] == list(range(handle.cfg.n_layers)) == sorted(transcoders)
    assert all(set(m) >= {"layer", "fvu", "l0", "dead"} for m in metrics["layers"])
    assert {"replacement_ce_recovered", "replacement_top1_legal", "model_top1_legal"} <= set(metrics)
    assert card["command"].startswith("python -m core.train transcoder othello8")
    assert 0.0 < metrics["replacement_ce_recovered"] <= 1.0 and metrics["model_top1_legal"] > 0.95


@pytest.mark.parametrize("layer", [0, 3, 5])
def test_a_layers_figures_are_what_the_code_measures(bundled, layer):
    """The same games (the card's held-out seed), the same code: FVU and L0 to float32 rounding
    of sums over ~1e4 positions (the card keeps four and two decimals)."""
    handle, transcoders, card = bundled
    games = handle.game.random_games(200, seed=TRANSCODER_SEED_BASE + 1)
    now = evaluate(handle, transcoders[layer], layer, games=games)
    shipped = card["metrics"]["layers"][layer]
    assert abs(now["fvu"] - shipped["fvu"]) <= 2e-4 and abs(now["l0"] - shipped["l0"]) <= 0.02 and now["tokens"] == shipped["tokens"]
