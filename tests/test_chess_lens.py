"""The logit lens and direct logit attribution on the bundled chess model (core and page)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from core.interp.lens import logit_lens as L
from core.interp.shared.legality import evaluate_legality
from core.models.registry import list_models, load_model
from tests.test_board_player_page import open_page
from tests.rounding import forward_bound, parts_bound

CHESS = next((s.name for s in list_models() if s.source == "bundled" and s.game == "chess"), None)
pytestmark = pytest.mark.skipif(CHESS is None, reason="no bundled chess model")


@pytest.fixture(scope="module")
def handle():
    return load_model(CHESS)


def test_last_lens_point_is_the_model_and_dla_sums_to_the_logit(handle):
    """The lens ends at the logits and the attributions add up to them, within float32
    rounding: the logits' (``forward_bound``) plus a sum of the parts in another order
    (``parts_bound``); tests/rounding.py argues both."""
    game = handle.game
    tokens = torch.from_numpy(game.batch_tokens(game.random_games(4, seed=1)))
    _, logits = L.logit_lens(handle, tokens)
    assert (logits[-1] - handle.forward(tokens)).abs().max().item() <= forward_bound(handle.model, tokens)
    moves = tuple(int(m) for m in game.random_games(1, seed=2)[0][:30])
    for n in (1, 7, 30):
        attr = L.attribute(handle, moves[:n])
        prefix = torch.from_numpy(game.batch_tokens(np.array([moves[:n]])))
        bound = forward_bound(handle.model, prefix) + parts_bound(attr.dla)
        assert (attr.dla.sum(0) - (attr.logits - attr.bias)).abs().max().item() <= bound


def test_lens_legality_by_token_kind_ends_at_the_model(handle):
    """Top-1 legal rates are counts over positions: equal unless rounding flips an argmax
    between logits tied within ~1e-5; 1e-6 is below one position in the ~1,000 scored, so the
    counts must agree."""
    game = handle.game
    games = game.random_games(12, seed=3)
    result = L.lens_legality(handle, games)
    direct = evaluate_legality(handle.forward, games, game)
    assert abs(result["top1_legal"][-1] - direct["top1_legal"]) < 1e-6
    for kind, values in result["by_kind"].items():
        assert abs(values[-1] - direct["by_kind"][kind]["top1_legal"]) < 1e-6


def test_legal_gap_by_position_equals_the_attribution_at_each_position(handle):
    """The gap by layer is the attribution's parts summed by layer: two float32 sums of the same
    parts in another order, within ``parts_bound`` of the parts."""
    game = handle.game
    moves = tuple(int(m) for m in game.random_games(1, seed=4)[0][:6])
    labels, gap, valid = L.legal_gap_by_position(handle, moves)
    assert gap.shape == (1 + 2 * handle.cfg.n_layers, len(game.game_tokens(moves))) and valid.all()
    batch = game.token_batch(np.array([moves]))
    for p in (0, 5, gap.shape[1] - 1):
        attr = L.attribute(handle, moves, position=p)
        per_part = attr.legal_minus_illegal(batch.legal[0, p], game.token_square() >= 0).numpy()
        # Summing heads and attention bias per layer gives the layer's attention part.
        by_layer = [per_part[[i for i, layer in enumerate(attr.layers) if layer == -1]].sum()]
        for layer in range(handle.cfg.n_layers):
            by_layer.append(per_part[[i for i, (k, ly) in enumerate(zip(attr.kinds, attr.layers)) if ly == layer and k in ("head", "attn_bias")]].sum())
            by_layer.append(per_part[[i for i, (k, ly) in enumerate(zip(attr.kinds, attr.layers)) if ly == layer and k == "mlp"]].sum())
        np.testing.assert_allclose(gap[:, p], by_layer, atol=parts_bound(torch.from_numpy(per_part)), rtol=0)


def test_lens_page_renders_for_a_chess_link():
    at = open_page("pages/logit_lens.py", model=CHESS, moves="e2e4e7e5g1f3")
    assert not at.error, [e.value for e in at.error]
    assert [h.value for h in at.subheader] == ["The prediction after each layer"]
    assert len(at.get("plotly_chart")) >= 1 + 9  # legality, a board per layer
    for section, header in (("Attention", "Attention"), ("Neuron view", "Neuron view"), ("Attribution", "Direct logit attribution")):
        at.button_group(key="lens_section").set_value(section).run()
        assert not at.exception and not at.error and [h.value for h in at.subheader] == [header], section
    assert len(at.get("plotly_chart")) >= 1 + 2  # legality, DLA, the components x positions map
    at.radio(key="gap_kind").set_value("to").run()
    assert not at.exception
    at.radio[0].set_value("legal minus illegal").run()
    assert not at.exception
