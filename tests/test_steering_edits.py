"""Steering and ablation edits equal the reference implementations: SAELens's own
``HookedSAETransformer`` with a hook on the feature activations and ``use_error_term=True``, and
TransformerLens ``run_with_hooks`` with a hand-written hook, on the bundled othello8 model and SAE.

Bounds: the two sides compute the same network with the edit placed differently (our feature edit
adds ``(f' - f) @ W_dec`` to the stream; SAELens rebuilds the stream as reconstruction + error),
so they differ by float32 rounding of the stream (values up to ~30, a few u each, ~1e-5 after the
unembedding at most); 1e-5 on the logits is the issue's bound, and every edit tested moves the
logits by 1e-2 or more, so an edit at the wrong place or of the wrong size fails."""

from __future__ import annotations

import threading

import numpy as np
import pytest
import torch

from core.interp.sae.store import list_saes, load_sae
from core.interp.steering.edits import Edit, EditError, Feature, Head, Neuron, check, run_with_edits
from core.models.registry import load_model

MODEL = "othello8"


@pytest.fixture(scope="module")
def handle():
    return load_model(MODEL)


@pytest.fixture(scope="module")
def sae_entry(handle):
    return list_saes(MODEL)[0]


@pytest.fixture(scope="module")
def sae(handle, sae_entry):
    return load_sae(sae_entry.folder, d_in=handle.hook_width(sae_entry.hook))


@pytest.fixture(scope="module")
def tokens(handle):
    game = handle.game
    moves = tuple(int(m) for m in game.random_games(1, seed=7)[0][:20] if m >= 0)
    return torch.from_numpy(game.batch_tokens(np.array([moves])))


def active_feature(handle, sae, hook, tokens) -> tuple[int, float]:
    """The feature most active at the last position: an edit of it has an effect to see."""
    act = handle.activations(tokens, [hook])[hook][0, -1]
    f = sae.encode(act[None])[0]
    i = int(f.argmax())
    return i, float(f[i])


def saelens_logits(handle, sae, tokens, edit_acts) -> torch.Tensor:
    from sae_lens import HookedSAETransformer

    model = HookedSAETransformer(handle.model.cfg)
    model.load_state_dict(handle.model.state_dict(), strict=False)
    model.eval()
    sae.use_error_term = True
    hook = sae.cfg.metadata.hook_name
    try:
        with torch.inference_mode():
            return model.run_with_hooks_with_saes(tokens, saes=[sae], fwd_hooks=[(f"{hook}.hook_sae_acts_post", edit_acts)])
    finally:
        sae.use_error_term = False


@pytest.mark.parametrize("operation, from_position", [("zero", None), ("clamp", None), ("zero", 12), ("clamp", 5)])
def test_feature_edits_equal_sae_lens_with_the_error_term(handle, sae, sae_entry, tokens, operation, from_position):
    index, value = active_feature(handle, sae, sae_entry.hook, tokens)
    target = 0.0 if operation == "zero" else 3.0 * value
    at = slice(tokens.shape[1] - 1, None) if from_position is None else slice(from_position, None)

    def edit_acts(acts, hook):
        acts = acts.clone()
        acts[:, at, index] = target
        return acts

    theirs = saelens_logits(handle, sae, tokens, edit_acts)
    ours = run_with_edits(handle, tokens, [Edit(Feature(sae, sae_entry.hook, index), operation, target, from_position)])
    clean = handle.run_with_hooks(tokens, [])
    assert (ours - clean).abs().max().item() > 1e-2  # the edit does something
    assert (ours - theirs).abs().max().item() <= 1e-5


def test_a_feature_edit_that_changes_nothing_changes_nothing_bit_for_bit(handle, sae, sae_entry, tokens):
    index, _ = active_feature(handle, sae, sae_entry.hook, tokens)
    clean = handle.run_with_hooks(tokens, [])
    same = run_with_edits(handle, tokens, [Edit(Feature(sae, sae_entry.hook, index), "add", 0.0, from_position=0)])
    assert torch.equal(same, clean)
    steered = run_with_edits(handle, tokens, [Edit(Feature(sae, sae_entry.hook, index), "add", 4.0)])
    assert (steered - clean).abs().max().item() > 1e-2


@pytest.mark.parametrize("operation, from_position", [("zero", None), ("clamp", 3), ("add", None)])
def test_neuron_edits_equal_a_hand_written_hook(handle, tokens, operation, from_position):
    layer, index = 2, 17
    at = slice(tokens.shape[1] - 1, None) if from_position is None else slice(from_position, None)

    def by_hand(act, hook):
        act = act.clone()
        act[:, at, index] = {"zero": 0.0, "clamp": 2.5, "add": act[:, at, index] + 2.5}[operation] if operation == "add" else {"zero": 0.0, "clamp": 2.5}[operation]
        return act

    with handle.session() as model, torch.inference_mode():
        theirs = model.run_with_hooks(tokens, fwd_hooks=[(f"blocks.{layer}.mlp.hook_post", by_hand)])
    ours = run_with_edits(handle, tokens, [Edit(Neuron(layer, index), operation, 0.0 if operation == "zero" else 2.5, from_position)])
    assert (ours - theirs).abs().max().item() <= 1e-5
    assert (ours - handle.run_with_hooks(tokens, [])).abs().max().item() > 1e-3


def test_head_ablations_equal_a_hand_written_hook(handle, tokens):
    layer, head = 1, 3
    z = handle.activations(tokens, [f"blocks.{layer}.attn.hook_z"])[f"blocks.{layer}.attn.hook_z"]
    mean = z[0, :, head].mean(0)
    for operation, value in (("zero", 0.0), ("mean", mean)):
        def by_hand(act, hook):
            act = act.clone()
            act[:, 4:, head] = value
            return act

        with handle.session() as model, torch.inference_mode():
            theirs = model.run_with_hooks(tokens, fwd_hooks=[(f"blocks.{layer}.attn.hook_z", by_hand)])
        ours = run_with_edits(handle, tokens, [Edit(Head(layer, head), operation, value, from_position=4)])
        assert (ours - theirs).abs().max().item() <= 1e-5, operation
        assert (ours - handle.run_with_hooks(tokens, [])).abs().max().item() > 1e-3, operation


@pytest.mark.parametrize("edit, message", [
    (Edit(Neuron(0, 10**6), "zero"), "neuron 1000000 is not in"),
    (Edit(Neuron(99, 0), "zero"), "layer 99 is not in"),
    (Edit(Head(0, 0), "clamp", 1.0), "a head can be ablated"),
    (Edit(Neuron(0, 0), "explode"), "unknown operation"),
    (Edit(Neuron(0, 0), "clamp", float("nan")), "finite number"),
    (Edit(Neuron(0, 0), "add", 1e30), "finite number"),
])
def test_bad_edits_are_refused_with_the_reason_and_leave_no_hook(handle, tokens, edit, message):
    with pytest.raises(EditError, match=message):
        run_with_edits(handle, tokens, [edit])
    assert all(not hp.fwd_hooks for hp in handle.model.hook_dict.values())


def test_a_feature_out_of_range_is_refused(handle, sae, sae_entry):
    with pytest.raises(EditError, match="feature 99999 is not in"):
        check(handle, Edit(Feature(sae, sae_entry.hook, 99_999), "zero"))


def test_eight_threads_editing_the_shared_model_get_their_own_answers_and_leave_it_clean(handle, tokens):
    """Scoped hooks through the handle's lock: each thread's edit affects only its own run, no hook
    outlives it, and the weights are untouched."""
    weights = {k: v.clone() for k, v in handle.model.state_dict().items()}
    edits = [Edit(Neuron(layer, 5 * layer + t), "clamp", 3.0) for t, layer in enumerate([0, 1, 2, 3, 4, 5, 0, 1])]
    expected = [run_with_edits(handle, tokens, [e]) for e in edits]
    results: dict[int, torch.Tensor] = {}

    def work(i: int) -> None:
        for _ in range(3):
            results[i] = run_with_edits(handle, tokens, [edits[i]])

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(torch.equal(results[i], expected[i]) for i in range(8))
    assert all(not hp.fwd_hooks for hp in handle.model.hook_dict.values())
    assert all(torch.equal(v, weights[k]) for k, v in handle.model.state_dict().items())


def test_mean_ablation_puts_in_the_units_mean_over_the_games(handle, sae, sae_entry, tokens):
    """The mean a mean ablation uses is the unit's mean over the games' move positions, as a hand
    count over TransformerLens's own cache of the same games gives it (float32 means of ~1,000
    values: a few u relative, within 1e-5 at values of order 1); the ablation with it equals a
    hand-written hook putting that mean in."""
    from core.interp.shared.board_targets import valid_positions
    from core.interp.steering.edits import unit_mean

    game = handle.game
    games = game.random_games(20, seed=3)
    neuron, head = Neuron(3, 40), Head(2, 5)
    rows, cols = np.nonzero(valid_positions(game.replay(games)) & (game.move_positions(games) >= 0))
    positions = game.move_positions(games)[rows, cols]
    with handle.session() as model, torch.inference_mode():
        _, cache = model.run_with_cache(torch.from_numpy(game.batch_tokens(games)))
    by_hand = {h: cache[h][torch.from_numpy(rows), torch.from_numpy(positions)].double() for h in (neuron.hook, head.hook, sae_entry.hook)}
    assert len(rows) > 500
    n_mean, h_mean = unit_mean(handle, neuron, games), unit_mean(handle, head, games)
    assert abs(n_mean - float(by_hand[neuron.hook][:, 40].mean())) <= 1e-5
    assert h_mean.shape == (handle.cfg.d_head,) and torch.allclose(h_mean.double(), by_hand[head.hook][:, 5].mean(0), atol=1e-5, rtol=0)
    index, _ = active_feature(handle, sae, sae_entry.hook, tokens)
    f_mean = unit_mean(handle, Feature(sae, sae_entry.hook, index), games)
    f_all = sae.encode(by_hand[sae_entry.hook].float())[:, index].double()
    assert abs(f_mean - float(f_all.mean())) <= 1e-5 * max(1.0, abs(f_mean))

    def put_mean(act, hook):
        act = act.clone()
        act[:, -1:, 40] = n_mean
        return act

    with handle.session() as model, torch.inference_mode():
        theirs = model.run_with_hooks(tokens, fwd_hooks=[(neuron.hook, put_mean)])
    ours = run_with_edits(handle, tokens, [Edit(neuron, "mean", n_mean)])
    assert (ours - theirs).abs().max().item() <= 1e-5
