"""The bundled transcoder sets (othello8, chess-pgn, text-stdlib): every layer loads with SAELens, and
each card's figures are what the code measures on the card's own held-out data (recomputed here)."""

from __future__ import annotations

import json

import pytest
import torch

from core.interp.circuits.replacement import load_transcoders, transcoder_folder
from core.models.registry import load_model
from core.train.transcoder import TRANSCODER_SEED_BASE, evaluate

MODELS = ["othello8", "chess-pgn", "text-stdlib"]


def bundled(model: str):
    handle = load_model(model)
    folder = transcoder_folder(model)
    assert folder is not None, f"assets/transcoders/{model} is shipped"
    return handle, load_transcoders(folder, handle.cfg.n_layers), json.loads((folder / "card.json").read_text())


def held_out(handle, card: dict) -> dict:
    """The data the card was measured on: the command's held-out games, or the text model's
    held-out shard in windows of its context."""
    if handle.kind != "text":
        return {"games": handle.game.random_games(200, seed=TRANSCODER_SEED_BASE + 1)}
    from core.text.shard import bundled_shard, shard_windows

    return {"windows": torch.from_numpy(shard_windows(bundled_shard(handle), handle.cfg.n_ctx, 200))}


@pytest.mark.parametrize("model", MODELS)
def test_each_card_has_every_layer_and_the_replacement_scores(model):
    handle, transcoders, card = bundled(model)
    metrics = card["metrics"]
    assert [m["layer"] for m in metrics["layers"]] == list(range(handle.cfg.n_layers)) == sorted(transcoders)
    assert all(set(m) >= {"layer", "fvu", "l0", "dead"} for m in metrics["layers"])
    assert {"replacement_ce_recovered", "replacement_top1_legal", "model_top1_legal"} <= set(metrics)
    assert card["command"].startswith(f"python -m core.train transcoder {model}")
    assert 0.0 < metrics["replacement_ce_recovered"] <= 1.0
    if handle.kind != "text":
        assert metrics["model_top1_legal"] > 0.9 and metrics["replacement_top1_legal"] > 0.5
    else:
        assert metrics["model_top1_legal"] is None  # no rules for text


@pytest.mark.parametrize("model", MODELS)
def test_the_last_layers_figures_are_what_the_code_measures(model):
    """The same data, the same code: FVU and L0 to float32 rounding of sums over ~1e4 positions
    (the card keeps four and two decimals)."""
    handle, transcoders, card = bundled(model)
    layer = handle.cfg.n_layers - 1
    now = evaluate(handle, transcoders[layer], layer, **held_out(handle, card))
    shipped = card["metrics"]["layers"][layer]
    assert abs(now["fvu"] - shipped["fvu"]) <= 2e-4 and abs(now["l0"] - shipped["l0"]) <= 0.02 and now["tokens"] == shipped["tokens"]


@pytest.mark.parametrize("model", ["othello8", "chess-pgn"])
def test_the_board_sets_meet_their_bar_and_label_every_feature(model):
    """Every layer FVU ≤ 0.2 and L0 ≤ 32 on held-out games; the replacement (no error terms)
    recovers ≥ 85 % of the loss; each feature has its best board property and F1."""
    handle, transcoders, card = bundled(model)
    metrics = card["metrics"]
    assert all(m["fvu"] <= 0.2 and m["l0"] <= 32 for m in metrics["layers"]), metrics["layers"]
    assert metrics["replacement_ce_recovered"] >= 0.85
    labels = card["feature_labels"]
    assert [e["layer"] for e in labels["layers"]] == list(range(handle.cfg.n_layers))
    for entry in labels["layers"]:
        d = transcoders[entry["layer"]].cfg.d_sae
        assert len(entry["property"]) == len(entry["f1"]) == d
        assert all(-1 <= p < len(labels["property_names"]) for p in entry["property"]) and all(0.0 <= f <= 1.0 for f in entry["f1"])
