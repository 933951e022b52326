"""The replacement model on the bundled othello8 model: with error terms it is the model (the local
replacement the attribution graph needs); without them its scores are the plain forward passes'
numbers with the MLPs swapped; transcoder folders that do not fit are refused with the reason.

Bound: with error terms each MLP output is rebuilt as ``t + (y - t)``, exact up to float32
rounding of values of order 1 (a few 1e-7), which the following layers carry to the logits
within 1e-5; a replacement that dropped or doubled an MLP would move them by 1e-1 or more.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from core.interp.circuits.replacement import load_transcoders, replacement_hooks, replacement_scores, transcoder_out
from core.models.registry import load_model
from core.train.transcoder import TranscoderTrainConfig, hooks_of, make_transcoder


@pytest.fixture(scope="module")
def handle():
    return load_model("othello8")


@pytest.fixture(scope="module")
def transcoders(handle):
    """One untrained transcoder per layer: the exactness with error terms holds for any."""
    return {layer: make_transcoder(handle.cfg.d_model, TranscoderTrainConfig(layer=layer, d_transcoder=128, seed=layer), hooks_of(layer)[0]).eval() for layer in range(handle.cfg.n_layers)}


@pytest.fixture(scope="module")
def tokens(handle):
    return torch.from_numpy(handle.game.batch_tokens(handle.game.random_games(4, seed=21)))


def test_with_error_terms_the_replacement_is_the_model(handle, transcoders, tokens):
    clean = handle.run_with_hooks(tokens, [])
    exact = handle.run_with_hooks(tokens, replacement_hooks(transcoders, with_errors=True))
    swapped = handle.run_with_hooks(tokens, replacement_hooks(transcoders))
    assert (exact - clean).abs().max().item() <= 1e-5
    assert (swapped - clean).abs().max().item() > 1e-1  # without the errors, the untrained transcoders change everything
    assert all(not hp.fwd_hooks for hp in handle.model.hook_dict.values())


def test_the_scores_are_the_three_runs_cross_entropies(handle, transcoders):
    games = handle.game.random_games(12, seed=5)
    scores = replacement_scores(handle, transcoders, games=games, batch=5)
    tb = handle.game.token_batch(games)
    tokens, mask = torch.from_numpy(tb.tokens), torch.from_numpy(tb.valid)
    target = torch.from_numpy(tb.weights)
    target = target / target.sum(-1, keepdim=True).clamp(min=1e-12)
    for hooks, ce, top1 in ((None, scores.ce_model, scores.top1_legal_model), (replacement_hooks(transcoders), scores.ce_replacement, scores.top1_legal_replacement)):
        logits = handle.run_with_hooks(tokens, hooks or [])
        logp = F.log_softmax(logits.float(), -1)[mask]
        assert abs(float(-(target[mask] * logp).sum(-1).mean()) - ce) <= 1e-4
        legal = torch.from_numpy(tb.legal)[mask]
        assert abs(float(legal.gather(-1, logp.argmax(-1, keepdim=True)).float().mean()) - top1) <= 1e-6
    assert scores.positions == int(mask.sum())
    assert scores.ce_mean_ablated > scores.ce_model and scores.top1_legal_model > 0.9
    expected = (scores.ce_mean_ablated - scores.ce_replacement) / (scores.ce_mean_ablated - scores.ce_model)
    assert scores.ce_recovered == pytest.approx(expected)


def test_a_transcoder_is_its_skip_formula(transcoders):
    tc = transcoders[2]
    x = torch.randn(7, tc.cfg.d_in)
    with torch.no_grad():
        by_hand = torch.relu(x @ tc.W_enc + tc.b_enc) @ tc.W_dec + tc.b_dec + x @ tc.W_skip.T
        assert torch.allclose(transcoder_out(tc, x), by_hand, atol=1e-6, rtol=0)


def test_folders_that_do_not_fit_are_refused(handle, transcoders, tmp_path):
    for layer in (0, 1):
        transcoders[layer].save_model(str(tmp_path / f"L{layer}"))
    with pytest.raises(ValueError, match="no transcoder for layer 2"):
        load_transcoders(tmp_path, handle.cfg.n_layers)
    transcoders[3].save_model(str(tmp_path / "L2"))  # layer 3's transcoder where layer 2's belongs
    with pytest.raises(ValueError, match="reads blocks.3.ln2.hook_normalized, not layer 2"):
        load_transcoders(tmp_path, handle.cfg.n_layers)
    assert np.isfinite(transcoders[0].W_dec.detach().numpy()).all()
