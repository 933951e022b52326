"""What an edit does to the next move, on the bundled models: the before/after predictions, the
greedy move and continuation, the batched sweep and the feature-set ablations against the plain
one-edit forward passes they stand for.

Bounds: a batched or key/value-cached pass and a plain pass compute the same network with sums
blocked differently (float32 rounding; probabilities of order 0.1 move by a few 1e-7, see
``tests/rounding.py``); 1e-5 on probabilities is far below what an edit at the wrong position or
with the wrong value moves (1e-3 and more, asserted each time). "Bit for bit" is asserted where
both sides run the same kernels on the same inputs.
"""

from __future__ import annotations

import threading

import numpy as np
import pytest
import torch

from core.interp.sae.store import list_saes, load_sae
from core.interp.steering.edits import Edit, EditError, Feature, Head, Neuron, hook_for, run_with_edits
from core.interp.steering.outcome import greedy_text, kl_divergence, steer_position, steer_text
from core.interp.steering.sweep import ablate_set, active_features, batched_next, random_unit, strength_sweep
from core.interp.steering.verdict import describe
from core.models.registry import load_model

TOL = 1e-5


def position(name: str, n_moves: int, seed: int = 3):
    handle = load_model(name)
    game = handle.game
    moves = tuple(int(m) for m in game.random_games(1, seed=seed)[0][:n_moves] if m >= 0)
    return handle, game.state(moves), torch.from_numpy(game.game_tokens(moves).astype(np.int64))


def sae_of(handle):
    entry = list_saes(handle.name)[0]
    return load_sae(entry.folder, d_in=handle.hook_width(entry.hook)), entry.hook


def last_probs(handle, tokens, edits) -> np.ndarray:
    """The plain pass: the whole input through TransformerLens with the edits' hooks."""
    return run_with_edits(handle, tokens[None], edits)[0, -1].float().softmax(-1).numpy()


@pytest.mark.parametrize("name", ["othello8", "chess", "chess-pgn"])
def test_edits_that_change_nothing_change_nothing_bit_for_bit(name):
    handle, state, tokens = position(name, 14)
    sae, hook = sae_of(handle)
    last = len(tokens) - 1
    inactive = int(np.setdiff1d(np.arange(int(sae.cfg.d_sae)), active_features(handle, tokens, sae, hook))[0])
    for edits in (
        [Edit(Feature(sae, hook, inactive), "zero", at=last)],
        [Edit(Feature(sae, hook, int(active_features(handle, tokens, sae, hook)[0])), "add", 0.0, from_position=0)],
        [Edit(Neuron(1, 7), "scale", 1.0, at=last)],
        [Edit(Head(0, 1), "scale", 1.0, from_position=2)],
    ):
        out = steer_position(handle, state, edits)
        assert np.array_equal(out.before.probs, out.after.probs) and out.before.move_probs == out.after.move_probs, edits
        assert out.kl == 0.0 and out.move_before == out.move_after


@pytest.mark.parametrize("name", ["othello8", "chess", "chess-pgn"])
def test_the_edited_prediction_equals_the_plain_edited_pass(name):
    """The after-edit prediction (the prefix's keys and values with the edit in them, continued by
    rows) gives the very next token as the plain pass with the same hooks does."""
    handle, state, tokens = position(name, 14)
    last = len(tokens) - 1
    for edit in (Edit(Neuron(handle.cfg.n_layers - 1, 11), "clamp", 4.0, at=last), Edit(Head(1, 2), "zero", from_position=3)):
        out = steer_position(handle, state, [edit])
        plain = last_probs(handle, tokens, [edit])
        clean = last_probs(handle, tokens, [])
        after = out.after.next_token if out.after.next_token is not None else None
        if after is None:  # Othello: one token per move, the board's probabilities are the next token's
            after = np.zeros_like(plain)
            named = handle.game.token_square() >= 0
            after[named] = out.after.probs[handle.game.token_square()[named]]
            plain = np.where(named, plain, 0.0)
            clean = np.where(named, clean, 0.0)
        assert np.abs(after - plain).max() <= TOL, edit
        assert np.abs(plain - clean).max() > 1e-3, edit  # the edit does something


def test_chess_moves_after_an_edit_are_the_product_of_their_edited_tokens():
    """A whole UCI move after an edit of the last position: P(from) from the edited pass, P(to |
    from) from the pass that appends the from-square (its last position unedited, reading the
    edited keys and values), as the plain passes give them."""
    handle, state, tokens = position("chess", 12)
    game = handle.game
    edit = Edit(Neuron(handle.cfg.n_layers - 1, 3), "clamp", 5.0, at=len(tokens) - 1)
    out = steer_position(handle, state, [edit])
    move, p = max(((m, p) for m, p in out.after.move_probs.items() if m in set(state.legal_moves)), key=lambda mp: mp[1])
    first, second = game.tokenizer.move_tokens(move)[:2]
    p_first = last_probs(handle, tokens, [edit])[first]
    p_second = last_probs(handle, torch.cat([tokens, torch.tensor([first])]), [edit])[second]
    assert abs(p - p_first * p_second) <= TOL


def test_greedy_text_with_cached_keys_equals_rerunning_the_whole_sequence():
    """Writing token by token from cached keys and values (the edit of one position kept there;
    an edit from p on applied to each new token) gives the tokens a full pass per step gives."""
    handle = load_model("text-stdlib")
    tokens = torch.tensor(handle.tokenizer.encode("def add(a, b):\n    return")[:20])
    for edit in (Edit(Neuron(0, 12), "clamp", 6.0, at=len(tokens) - 1), Edit(Head(0, 1), "zero", from_position=4)):
        cached = greedy_text(handle, tokens, [[edit]], 12)[0]
        seq = tokens.clone()
        by_hand = []
        for _ in range(12):
            nxt = int(run_with_edits(handle, seq[None], [edit])[0, -1].argmax())
            by_hand.append(nxt)
            seq = torch.cat([seq, torch.tensor([nxt])])
        assert cached == by_hand, edit
    out = steer_text(handle, tokens, [Edit(Neuron(0, 12), "scale", 1.0, at=len(tokens) - 1)], steps=8)
    assert out.kl == 0.0 and out.continuation_before == out.continuation_after and np.array_equal(out.probs_before, out.probs_after)


def test_a_strength_sweep_row_equals_that_strength_run_alone():
    handle, state, tokens = position("othello8", 20)
    sae, hook = sae_of(handle)
    feature = int(active_features(handle, tokens, sae, hook)[0])
    unit, last = Feature(sae, hook, feature), len(tokens) - 1
    control = random_unit(handle, unit, seed=feature)
    assert isinstance(control, Feature) and control.index != feature
    strengths = np.linspace(0.0, 6.0, 20)
    legal = np.zeros(handle.cfg.d_vocab, bool)
    legal[[handle.game.square_token(int(s)) for s in np.flatnonzero(np.asarray(state.legal).reshape(-1))]] = True
    sw = strength_sweep(handle, tokens, Edit(unit, "clamp", 0.0, at=last), Edit(control, "clamp", 0.0, at=last), strengths, strengths * 0.5, legal=legal)
    for i in (0, 7, 19):
        alone = last_probs(handle, tokens, [Edit(unit, "clamp", float(strengths[i]), at=last)])
        base = last_probs(handle, tokens, [])
        assert abs(sw.p_top[0, i] - alone[sw.top_token]) <= TOL
        assert abs(sw.illegal[0, i] - (1 - alone[legal].sum())) <= TOL
        assert abs(sw.kl[0, i] - kl_divergence(base, alone)) <= 1e-4  # a KL of ~1 from sums of 60 terms: rounding of the logs
        ctrl = last_probs(handle, tokens, [Edit(control, "clamp", float(strengths[i]) * 0.5, at=last)])
        assert abs(sw.p_top[1, i] - ctrl[sw.top_token]) <= TOL
    assert sw.kl[0].max() > 0.05  # the sweep moves the distribution


def test_a_sweep_from_a_position_on_equals_the_plain_pass():
    handle, _, tokens = position("chess-pgn", 10)
    edit, control = Edit(Neuron(2, 30), "add", 0.0, from_position=5), Edit(Neuron(2, 31), "add", 0.0, from_position=5)
    sw = strength_sweep(handle, tokens, edit, control, [0.0, 3.0, -3.0])
    for i, s in enumerate([0.0, 3.0, -3.0]):
        alone = last_probs(handle, tokens, [Edit(Neuron(2, 30), "add", s, from_position=5)])
        assert abs(sw.p_top[0, i] - alone[sw.top_token]) <= TOL
    assert sw.kl[0, 0] == 0.0 or sw.kl[0, 0] < 1e-10


def test_a_feature_set_ablation_equals_a_hand_written_hook():
    """Every feature of the set is read from the clean activation and removed at once (one hook
    on the SAE's features, as SAELens would zero them together; edits one after another would
    re-encode the already edited activation)."""
    handle, _, tokens = position("othello8", 18)
    sae, hook = sae_of(handle)
    top = [int(f) for f in active_features(handle, tokens, sae, hook)[:3]]
    result = ablate_set(handle, tokens, sae, hook, top, n_random=4)

    def by_hand(act, hook=None):
        x = act[:, -1]
        f = sae.encode(x)
        out = act.clone()
        for i in top:
            one = torch.zeros(1, int(sae.cfg.d_sae))
            base = sae.decode(one)[0]
            one[0, i] = 1.0
            out[:, -1] = out[:, -1] - f[:, i : i + 1] * (sae.decode(one)[0] - base)
        return out

    alone = handle.run_with_hooks(tokens[None], [(hook, by_hand)])[0, -1].softmax(-1).numpy()
    base = last_probs(handle, tokens, [])
    top_token = int(np.argmax(base))
    assert abs(result.top_before - base[top_token]) <= TOL and abs(result.top_after - alone[top_token]) <= TOL
    assert abs(result.kl - kl_divergence(base, alone)) <= 1e-4
    assert len(result.random_kl) == 4 and result.n_active >= 3 and result.kl > 1e-3
    with pytest.raises(ValueError, match="features must be in"):
        ablate_set(handle, tokens, sae, hook, [10**7])


def test_batched_rows_take_only_their_own_edits():
    handle, _, tokens = position("othello8", 16)
    last = len(tokens) - 1
    e1 = Edit(Neuron(3, 9), "clamp", 5.0, at=last, rows=(1, 2))
    e2 = Edit(Head(2, 0), "zero", at=last, rows=(2, 3))
    probs = batched_next(handle, tokens, 3, [e1, e2])
    assert np.abs(probs[0] - last_probs(handle, tokens, [])).max() <= TOL
    assert np.abs(probs[1] - last_probs(handle, tokens, [Edit(Neuron(3, 9), "clamp", 5.0, at=last)])).max() <= TOL
    assert np.abs(probs[2] - last_probs(handle, tokens, [Edit(Head(2, 0), "zero", at=last)])).max() <= TOL


def test_bad_edits_and_positions_say_why_and_leave_the_model_clean():
    handle, state, tokens = position("othello8", 10)
    with pytest.raises(EditError, match="finite number"):
        steer_position(handle, state, [Edit(Neuron(0, 0), "clamp", float("inf"))])
    with pytest.raises(EditError, match="not in"):
        strength_sweep(handle, tokens, Edit(Neuron(0, 10**6), "clamp"), Edit(Neuron(0, 1), "clamp"), [1.0])
    with pytest.raises(EditError, match="per row"):
        batched_next(handle, tokens, 2, [Edit(Neuron(0, 0), "zero", torch.ones(2), per_row=True)])
    over = handle.game.state(tuple(int(m) for m in handle.game.random_games(1, seed=1)[0] if m >= 0))
    with pytest.raises(ValueError, match="game is over"):
        steer_position(handle, over, [])
    assert all(not hp.fwd_hooks for hp in handle.model.hook_dict.values())


def test_eight_threads_steering_at_once_get_their_own_answers():
    handle, state, tokens = position("chess", 12)
    last = len(tokens) - 1
    edits = [[Edit(Neuron(layer, 3 + layer), "clamp", 4.0, at=last)] if layer % 2 else [] for layer in range(8)]
    expected = [steer_position(handle, state, e).after.move_probs for e in edits]
    got: dict[int, dict] = {}

    def work(i: int) -> None:
        for _ in range(2):
            got[i] = steer_position(handle, state, edits[i]).after.move_probs

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(got[i] == expected[i] for i in range(8))
    assert all(not hp.fwd_hooks for hp in handle.model.hook_dict.values())


def test_the_verdict_says_what_changed_and_against_what():
    text = describe("Clamping feature 3 to 2× its max activation at this move", "move", ("d3", 0.41, True), ("c4", 0.55, False), 0.8, 0.05, "random feature 9", (0.01, 0.3))
    assert "goes from d3 (41.0%) to c4 (55.0%), illegal" in text and "16.0×" in text and "far more than a random one" in text and "1.0% → 30.0%" in text
    assert "changes nothing" in describe("Ablating L1H2 (to 0) at this move", "move", ("d3", 0.4, True), ("d3", 0.4, True), 0.0, 0.2, "random head L1H0")
    assert "no more than a random one" in describe("Ablating L1N2", "token", ("x", 0.5, None), ("y", 0.4, None), 0.2, 0.19, "random neuron L1N5")


def test_hooks_apply_to_their_rows_and_positions_only():
    act = torch.arange(2 * 5 * 4, dtype=torch.float32).reshape(2, 5, 4)
    _, fn = hook_for(Edit(Neuron(0, 1), "clamp", 9.0, at=2, rows=(1, 2)))
    out = fn(act)
    changed = (out != act).nonzero().tolist()
    assert changed == [[1, 2, 1]] and torch.equal(act, torch.arange(40, dtype=torch.float32).reshape(2, 5, 4))
    _, fn = hook_for(Edit(Neuron(0, 1), "scale", torch.tensor([2.0, 3.0]), from_position=3, per_row=True))
    out = fn(act)
    assert torch.equal(out[:, 3:, 1], act[:, 3:, 1] * torch.tensor([[2.0], [3.0]])) and torch.equal(out[:, :3], act[:, :3])
