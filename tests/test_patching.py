"""Batched activation patching equals transformer_lens.patching, site for site."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from transformer_lens import patching as tl_patching

from core.games.othello import engine as othello
from core.interp.patching import sweeps as P
from core.models.registry import default_model_name, load_model
from tests.rounding import metric_bound


@pytest.fixture(scope="module")
def setup(tiny_bundle):
    handle = load_model(str(tiny_bundle))
    size = handle.board_size
    game = othello.random_games(1, size, seed=8)[0]
    clean_moves = [int(m) for m in game[:14]]
    # corrupt move 5: another legal move there, then replay the rest while it stays legal
    state = othello.replay(np.array([clean_moves[:4]]), size)
    alternatives = [s for s in np.flatnonzero(state.legal_next[0, -1]) if s != clean_moves[4]]
    corrupted_moves = clean_moves[:4] + [int(alternatives[0])]
    for m in clean_moves[5:]:
        rep = othello.replay(np.array([corrupted_moves]), size)
        if not rep.legal_next[0, -1][m]:
            break
        corrupted_moves.append(m)
    n = len(corrupted_moves)
    tok = lambda moves: torch.from_numpy(othello.squares_to_tokens(np.array([moves[:n]]), size).astype(np.int64))  # noqa: E731
    clean, corrupted = tok(clean_moves), tok(corrupted_moves)
    target = int(clean[0, -1])

    def metric(logits: torch.Tensor) -> torch.Tensor:
        return logits[:, -1].log_softmax(-1)[:, target] - logits[:, -1, 3]

    return handle, clean, corrupted, metric


def test_block_every_equals_transformer_lens(setup):
    """Every (kind, layer, position) value equals TransformerLens's within the float32 rounding
    bound of the metric (``tests.rounding.metric_bound``)."""
    handle, clean, corrupted, metric = setup
    ours = P.act_patch_block_every(handle, corrupted, clean, metric)
    with handle.session() as model:
        _, clean_cache = model.run_with_cache(clean)
        theirs = tl_patching.get_act_patch_block_every(model, corrupted, clean_cache, metric)
    assert ours.shape == theirs.shape == (3, handle.cfg.n_layers, clean.shape[1])
    assert (ours - theirs).abs().max().item() <= metric_bound(handle.model, clean, metric)
    assert ours.abs().max() > 0 and ours.std() > 0  # a real, non-constant answer


def test_head_variants_equal_transformer_lens(setup):
    """Both head sweeps equal TransformerLens's within the metric's rounding bound (``tests.rounding.metric_bound``)."""
    handle, clean, corrupted, metric = setup
    ours_all = P.act_patch_head_all_pos_every(handle, corrupted, clean, metric)
    ours_pos = P.act_patch_head_out_by_pos(handle, corrupted, clean, metric)
    with handle.session() as model:
        _, clean_cache = model.run_with_cache(clean)
        theirs_all = tl_patching.get_act_patch_attn_head_all_pos_every(model, corrupted, clean_cache, metric)
        theirs_pos = tl_patching.get_act_patch_attn_head_out_by_pos(model, corrupted, clean_cache, metric)
    bound = metric_bound(handle.model, clean, metric)
    assert (ours_all - theirs_all).abs().max().item() <= bound
    assert (ours_pos - theirs_pos).abs().max().item() <= bound


def test_noising_direction_and_normalisation_and_no_hooks_left(setup):
    """Noising position 0 (the same move in both games) leaves the clean metric, within the
    metric's rounding bound: the patched run is a batched row, the clean one a pass of its own."""
    handle, clean, corrupted, metric = setup
    denoise = P.act_patch_block_every(handle, corrupted, clean, metric)
    clean_v, corrupted_v = P.run_metric(handle, clean, metric), P.run_metric(handle, corrupted, metric)
    # patching the whole residual stream at layer 0 position 0.. is the clean run only where the games agree;
    # the last layer's resid_pre at the last position carries everything the last output sees from below
    norm = P.normalise(denoise, clean_v, corrupted_v)
    assert norm.shape == denoise.shape
    noise = P.act_patch_block_every(handle, clean, corrupted, metric)
    assert abs(noise[0, 0, 0].item() - clean_v) <= metric_bound(handle.model, clean, metric)  # position 0 is the same move in both games
    assert all(not hp.fwd_hooks for hp in handle.model.hook_dict.values())
    with pytest.raises(ValueError, match="one game at a time"):
        P.act_patch_block_every(handle, corrupted.repeat(2, 1), clean.repeat(2, 1), metric)


def test_attribution_patching_tracks_exact_patching():
    handle = load_model(default_model_name())
    games = othello.random_games(2, 8, seed=1)[:, :20]
    clean, corrupted = (torch.from_numpy(othello.squares_to_tokens(games[i : i + 1], 8).astype(np.int64)) for i in (0, 1))
    target = int(clean[0, -1])

    def metric(logits: torch.Tensor) -> torch.Tensor:
        return logits[:, -1].log_softmax(-1)[:, target]

    exact = P.act_patch_block_every(handle, corrupted, clean, metric)
    approx = P.attribution_patch_block_every(handle, corrupted, clean, metric)
    assert approx.shape == exact.shape
    corr = np.corrcoef(exact.reshape(-1).numpy(), approx.reshape(-1).numpy())[0, 1]
    assert corr > 0.5, corr
    assert all(p.grad is None for p in handle.model.parameters())


def test_agreement_figure_names_every_site_and_says_what_r_means():
    from core.viz.patching import agreement_figure, agreement_words

    rng = np.random.default_rng(0)
    exact = rng.normal(size=(3, 2, 4))
    fig = agreement_figure(exact, exact + 0.01 * rng.normal(size=exact.shape), ["d3", "c5", "f6", "f5"], "share of the difference")
    hover = list(fig.data[0].hovertext)
    assert len(hover) == 24 and hover[5].startswith("residual stream (resid_pre), layer 1, 2. c5")
    assert "stand in" in fig.layout.title.text and "share of the difference" in fig.layout.xaxis.title.text
    assert "misleads" in agreement_words(0.1) and "nothing" in agreement_words(float("nan"))


def test_diffed_neuron_dla_from_one_batched_forward_equals_two_runs(setup):
    """The batched pair pass gives each neuron's (clean - corrupted) x direct effect as two runs
    of their own do. Each term is a difference of two float32 activations times a d_model-long
    dot product: its rounding is a few u of the activations (|act| <= ~10) times the effect, and of
    sqrt(d_model) u of the dot product; atol 1e-5 with rtol 1e-4 is over 10 times that for this
    model (d_model 64) and far below a neuron mixed up with another (changes of 1e-2 and more)."""
    handle, clean, corrupted, _ = setup
    token = int(clean[0, -1])
    got = P.neuron_diff_dla(handle, clean, corrupted, token)
    m = handle.model
    with torch.inference_mode():
        _, c = m.run_with_cache(clean)
        _, k = m.run_with_cache(corrupted)
        scale = c["ln_final.hook_scale"][0, -1]
        readout = (m.ln_final.w if hasattr(m.ln_final, "w") else torch.ones(m.cfg.d_model)) * m.W_U[:, token]
        for layer in range(m.cfg.n_layers):
            w_out = m.blocks[layer].mlp.W_out
            diff = c[f"blocks.{layer}.mlp.hook_post"][0, -1] - k[f"blocks.{layer}.mlp.hook_post"][0, -1]
            expected = diff * (((w_out - w_out.mean(-1, keepdim=True)) / scale) @ readout)
            torch.testing.assert_close(got[layer], expected.float(), atol=1e-5, rtol=1e-4)


def test_one_patched_site_matches_the_block_sweep(setup):
    """A site patched on its own gives the sweep's value for it, within the metric's rounding
    bound (the sweep batches sites as rows; ``tests.rounding.metric_bound``)."""
    handle, clean, corrupted, metric = setup
    bound = metric_bound(handle.model, clean, metric)
    sweep = P.act_patch_block_every(handle, corrupted, clean, metric)
    for c, kind in enumerate(P.BLOCK_KINDS):
        for layer, pos in ((0, 4), (handle.cfg.n_layers - 1, clean.shape[1] - 1), (1, 2)):
            logits = P.patched_logits(handle, corrupted, clean, kind, layer, pos)
            assert float(metric(logits[None, None])[0]) == pytest.approx(float(sweep[c, layer, pos]), abs=bound)


def test_attribution_from_the_pair_pass_equals_its_own_clean_pass(setup):
    """Attribution from the pair pass's cache equals attribution from a clean pass of its own:
    the same gradients times activation differences, the cache from a batch of two rows instead of
    one (float32 kernels may block a 2-row product differently: a few u of each activation, far
    below atol 1e-5 + rtol 1e-5 at values of order 1)."""
    handle, clean, corrupted, metric = setup
    own = P.attribution_patch_block_every(handle, corrupted, clean, metric)
    _, cache = P.run_pair(handle, clean, corrupted)
    shared = P.attribution_patch_block_every(handle, corrupted, clean, metric, clean_cache={n: v[:1] for n, v in cache.items()})
    torch.testing.assert_close(shared, own, atol=1e-5, rtol=1e-5)
    # noising: the corrupted game (row 1) is the source
    noising = P.attribution_patch_block_every(handle, clean, corrupted, metric, clean_cache={n: v[1:] for n, v in cache.items()})
    torch.testing.assert_close(noising, P.attribution_patch_block_every(handle, clean, corrupted, metric), atol=1e-5, rtol=1e-5)


def test_sweep_work_counts_what_the_exact_sweep_runs(setup):
    """The lab prices a sweep by ``sweep_work``: every position of every row through every block
    that the block and head sweeps run (their reference passes included), counted by a hook on
    each block, equals its count."""
    handle, clean, corrupted, metric = setup
    model, cfg = handle.model, handle.cfg
    seen = {"tokens": 0, "calls": 0}

    def count(module, args):
        seen["tokens"] += args[0].shape[0] * args[0].shape[1]
        seen["calls"] += 1

    hooks = [block.register_forward_pre_hook(count) for block in model.blocks]
    try:
        P.act_patch_block_every(handle, corrupted, clean, metric)
        P.act_patch_head_all_pos_every(handle, corrupted, clean, metric)
    finally:
        for h in hooks:
            h.remove()
    n_pos = clean.shape[1]
    first = int((clean[0] != corrupted[0]).nonzero()[0, 0])
    assert (seen["tokens"], seen["calls"]) == P.sweep_work(cfg.n_layers, cfg.n_heads, n_pos, first)
    assert P.sweep_work(cfg.n_layers, cfg.n_heads, n_pos, n_pos) == (6 * n_pos * cfg.n_layers, 6 * cfg.n_layers)  # nothing differs: the reference passes only
