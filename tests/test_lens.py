"""Logit lens, direct logit attribution, attention and neuron views on real bundled models."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from core.games.othello import engine as othello
from core.interp.lens import logit_lens as L
from core.interp.shared import position_run
from core.interp.shared.legality import evaluate_legality
from core.models.registry import list_models, load_model
from tests.rounding import forward_bound, parts_bound

BUNDLED = [s.name for s in list_models() if s.source == "bundled" and s.game == "othello"]


@pytest.fixture(scope="module", params=BUNDLED)
def handle(request):
    return load_model(request.param)


def test_last_lens_point_is_the_model(handle):
    """The lens's last point is the model's logits within their float32 rounding bound
    (``tests.rounding.forward_bound``): the lens recomputes the final LayerNorm and unembedding
    from the cached residual stream."""
    size = handle.board_size
    games = othello.random_games(8, size, seed=1)[:, : othello.context_length(size)]
    tokens = torch.from_numpy(othello.squares_to_tokens(games, size).astype(np.int64))
    labels, logits = L.logit_lens(handle, tokens)
    assert labels[0] == "embed" and len(labels) == 1 + 2 * handle.cfg.n_layers
    assert (logits[-1] - handle.forward(tokens)).abs().max().item() <= forward_bound(handle.model, tokens)


def test_dla_parts_sum_to_the_logit_minus_biases(handle):
    """The direct attributions add up to the logits less the biases. The bound: the logits'
    rounding (``forward_bound``) plus the rounding of a sum of the parts in another order
    (``parts_bound``: a few u of the parts' absolute sum per part, as the parts cancel)."""
    size = handle.board_size
    game = othello.random_games(3, size, seed=2)[0]
    for t in (1, 10, 25):
        attr = L.attribute(handle, tuple(int(m) for m in game[:t]))
        tokens = torch.from_numpy(othello.squares_to_tokens(game[None, :t], size).astype(np.int64))
        bound = forward_bound(handle.model, tokens) + parts_bound(attr.dla)
        assert (attr.dla.sum(0) - (attr.logits - attr.bias)).abs().max().item() <= bound
        token = int(attr.logits.argmax())
        assert attr.head_grid(token).shape == (handle.cfg.n_layers, handle.cfg.n_heads)


def test_lens_legality_ends_at_the_model_rate(handle):
    """The lens's last layer has the model's top-1 legal rate: a count over positions, equal
    unless rounding flips an argmax between two logits tied within ~1e-5 (none here); 1e-6 is
    below one position in 1,800, so the counts themselves must agree."""
    size = handle.board_size
    games = othello.random_games(60, size, seed=3)
    result = L.lens_legality(handle, games)
    direct = evaluate_legality(handle.forward, games, size)
    assert result["positions"] == direct["positions"]
    assert abs(result["top1_legal"][-1] - direct["top1_legal"]) < 1e-6
    assert result["top1_legal"][-1] > result["top1_legal"][0]  # depth makes the answer legal


def test_attention_and_neuron_views(handle):
    """Attention rows sum to 1: a float32 sum of at most 12 probabilities is within 12 u
    (7e-7) of the exact sum, which is 1 to a u after the softmax's division; atol 1e-5 holds on
    any CPU. Correlations are at most 1 plus a few u of their float32 normalisation."""
    size = handle.board_size
    moves = tuple(int(m) for m in othello.random_games(1, size, seed=4)[0, :12])
    patterns = L.attention_patterns(handle, moves)
    assert patterns.shape == (handle.cfg.n_layers, handle.cfg.n_heads, 12, 12)
    np.testing.assert_allclose(patterns.sum(-1), 1.0, atol=1e-5)
    assert np.triu(patterns[0, 0], 1).max() == 0.0  # causal
    board = L.neuron_output_board(handle, 0, 3)
    centre = [sq for sq in range(size * size) if othello.squares_to_tokens(np.array([sq]), size)[0] == 0]
    assert board.shape == (size * size,) and np.abs(board).sum() > 0 and np.all(board[centre] == 0)
    corr = L.neuron_board_correlation(handle, 0, 3, othello.random_games(40, size, seed=5))
    assert corr.shape == (3, size * size) and np.all(np.abs(corr) <= 1.0 + 1e-5)


def test_attention_figures_show_every_head_and_one_head_with_labels(handle):
    """The thumbnail holds each head's pattern rounded to 3 decimals (the figure's data is
    rounded to keep it small): within 5e-4, half of the last kept digit."""
    from core.viz.attention import THUMB_POSITIONS, head_grid_thumbnails, head_pattern_figure, thumbnail_block

    size = handle.board_size
    moves = tuple(int(m) for m in othello.random_games(1, size, seed=4)[0, :12])
    patterns = L.attention_patterns(handle, moves)
    labels = handle.game.token_labels(moves)
    grid = head_grid_thumbnails(patterns, labels)
    heatmaps = [t for t in grid.data if t.type == "heatmap"]
    assert len(heatmaps) == 1  # every head in one matrix, gaps between them
    rows, cols = thumbnail_block(patterns, 1, 1)
    z = np.asarray(heatmaps[0].z, dtype=float)
    np.testing.assert_allclose(z[rows, cols], patterns[1, 1], atol=5e-4)  # L1H1, rounded
    assert np.isnan(z[rows.stop, cols]).all() and heatmaps[0].y[rows.start + 2] == "L1 · 3" and heatmaps[0].x[cols.start] == "H1 · 1"
    big = head_pattern_figure(patterns[1, 1], labels, "L1H1", current=11)
    assert list(big.data[0].x)[0] == f"1. {labels[0]}" and "attends to" in big.data[0].text[11][3]
    assert big.layout.shapes[0].y0 == 10.5  # the current row framed
    long = np.tile(patterns[:, :, :1, :1], (1, 1, 60, 60))
    rows, cols = thumbnail_block(long, 0, 0)
    assert np.asarray(head_grid_thumbnails(long, [str(i) for i in range(60)]).data[0].z)[rows, cols].shape == (THUMB_POSITIONS, THUMB_POSITIONS) and rows.stop == THUMB_POSITIONS


def test_views_read_from_one_cached_pass_equal_their_own_passes(handle):
    """Views read from one cached pass equal the same views from passes of their own: the same
    kernels on the same inputs, so equal to a few u (``assert_close``'s float32 defaults, and
    1e-6 for probabilities and gaps of order 1). The neuron readout's shares sum to the MLP's
    direct effect within ``parts_bound`` of the d_mlp shares plus the effect's own rounding."""
    moves = tuple(int(m) for m in othello.random_games(1, handle.board_size, seed=6)[0, :15])
    run = position_run.run_position(handle, moves)
    _, own = L.logit_lens(handle, run.tokens)
    _, shared = L.logit_lens(handle, run.tokens, run=run)
    torch.testing.assert_close(shared, own)
    a, b = L.attribute(handle, moves), L.attribute(handle, moves, run=run)
    torch.testing.assert_close(b.dla, a.dla)
    torch.testing.assert_close(b.neuron_dla, a.neuron_dla)
    torch.testing.assert_close(b.logits, a.logits)
    np.testing.assert_allclose(L.legal_gap_by_position(handle, moves, run=run)[1], L.legal_gap_by_position(handle, moves)[1], atol=1e-6)
    np.testing.assert_allclose(L.attention_patterns(handle, moves, run=run), L.attention_patterns(handle, moves), atol=1e-6)
    # The neuron readout computed once per model: each neuron's share still sums to the MLP's direct
    # effect minus its output bias (as before the readout was cached).
    mlp = [i for i, k in enumerate(b.kinds) if k == "mlp"]
    scale = run.cache["ln_final.hook_scale"][0, -1] if "ln_final.hook_scale" in run.cache.cache_dict else torch.ones(1)
    for layer, row in enumerate(mlp):
        b_out = handle.model.blocks[layer].mlp.b_out
        w = handle.model.ln_final.w if hasattr(handle.model.ln_final, "w") else torch.ones(handle.cfg.d_model)
        bias_effect = ((b_out - b_out.mean()) / scale) @ (w[:, None] * handle.model.W_U)
        bound = parts_bound(b.neuron_dla[layer]) + parts_bound(b.dla)
        torch.testing.assert_close(b.neuron_dla[layer].sum(0) + bias_effect, b.dla[row], atol=bound, rtol=0)


def test_agreement_with_final_rank_and_kl():
    """KL of three float32 terms of order 1: a few u (6e-8) each, so the last layer's own KL is 0
    within 1e-7 and the others equal the hand-written formula within 1e-6."""
    import torch

    from core.interp.lens.logit_lens import agreement_with_final

    logits = torch.tensor([[0.0, 2.0, 1.0], [1.0, 0.0, 3.0], [0.0, 1.0, 5.0]])  # the output's top-1 is token 2
    rank, kl = agreement_with_final(logits)
    assert rank.tolist() == [2, 1, 1]
    p = logits.log_softmax(-1)
    expected = (p[-1].exp() * (p[-1] - p)).sum(-1)
    assert abs(kl[-1]) < 1e-7 and torch.allclose(torch.from_numpy(kl), expected, atol=1e-6)
