"""Probes: engine targets, the fitter, files, the published probe import, and interventions."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from core.games.othello import engine as othello
from core.interp.probes import interventions as I
from core.interp.probes import linear_probes as P
from core.interp.shared import activations
from core.interp.shared import board_targets
from core.models.registry import default_model_name, load_model, randomly_initialised


@pytest.fixture(scope="module")
def handle():
    return load_model(default_model_name())


def test_targets_follow_the_engine_and_the_mover():
    games = othello.random_games(300, 8, seed=3)[:, :59]
    rep = othello.replay(games, 8)
    valid = board_targets.valid_positions(rep)
    mte = board_targets.probe_targets(rep, "mine_theirs_empty")[valid]
    bwe = board_targets.probe_targets(rep, "black_white_empty")[valid]
    mover = rep.mover[valid]
    black_moved = mover == 1
    # black just moved: mine = black; white just moved: mine = white (classes swap)
    assert np.array_equal(mte[black_moved], bwe[black_moved])
    swapped = np.choose(bwe[~black_moved], [0, 2, 1])
    assert np.array_equal(mte[~black_moved], swapped)
    # the square just played always belongs to the mover
    played = games[valid]
    assert (mte[np.arange(len(played)), played] == 1).all()
    assert np.array_equal(board_targets.probe_targets(rep, "empty")[valid], (bwe == 0).astype(np.int64))
    assert np.array_equal(board_targets.probe_targets(rep, "legal_next")[valid].astype(bool), rep.legal_next[valid])
    with pytest.raises(ValueError, match="unknown probe target"):
        board_targets.probe_targets(rep, "nonsense")


def test_fit_recovers_a_planted_linear_code():
    gen = torch.Generator().manual_seed(0)
    n, d, n_sq = 6000, 48, 5
    x = torch.randn(n, d, generator=gen) * torch.linspace(0.1, 5.0, d)  # badly scaled on purpose
    true_w = torch.randn(d, n_sq, 3, generator=gen)
    y = torch.einsum("nd,dsc->nsc", x, true_w).argmax(-1)
    w, b = P.fit_probe(x[:5000], y[:5000], 3)
    pred = (torch.einsum("nd,dsc->nsc", x[5000:], w) + b).argmax(-1)
    assert (pred == y[5000:]).float().mean() > 0.95


def test_the_closed_form_loss_and_gradient_equal_autograd_cross_entropy():
    """The closed form and autograd compute the same float32 sums in another order: a few u of
    values of order 1 (rtol 1e-5), and of the gradients (rtol 1e-4 allows for their
    cancellations; atol 1e-7 for entries that are ~0)."""
    g = torch.Generator().manual_seed(0)
    z, y = torch.randn(300, 16, generator=g), torch.randint(0, 5, (300, 7), generator=g)
    w, b = torch.randn(16, 7, 5, generator=g, requires_grad=True), torch.randn(7, 5, generator=g, requires_grad=True)
    loss, gw, gb = P.logistic_loss_and_grad(z, y, w.detach(), b.detach(), l2=1e-3)
    logits = (z @ w.reshape(16, -1)).reshape(300, 7, 5) + b
    reference = torch.nn.functional.cross_entropy(logits.reshape(-1, 5), y.reshape(-1)) + 1e-3 * (w * w).sum()
    reference.backward()
    assert torch.allclose(loss, reference, rtol=1e-5, atol=1e-6)
    assert torch.allclose(gw, w.grad, rtol=1e-4, atol=1e-7) and torch.allclose(gb, b.grad, rtol=1e-4, atol=1e-7)


def test_probes_on_the_bundled_model_beat_the_random_init_baseline(handle, tmp_path):
    every = activations.resid_hooks(handle.cfg.n_layers)
    hooks = [every[0], every[len(every) // 2], every[-1]]  # embedding, middle and last layer
    probes = P.train_probes(handle, "mine_theirs_empty", hooks, train_games=300, test_games=100)
    baseline = P.train_probes(randomly_initialised(handle), "mine_theirs_empty", hooks, train_games=300, test_games=100)
    best = max(p.meta["held_out"]["accuracy"] for p in probes.values())
    best_random = max(p.meta["held_out"]["accuracy"] for p in baseline.values())
    assert best > best_random + 0.1, (best, best_random)
    meta = probes[hooks[-1]].meta["held_out"]
    assert np.array(meta["per_square"]).shape == (8, 8) and set(meta["per_class"]) == {"empty", "mine", "theirs"}
    assert len(meta["by_move"]) == 59 and 0 <= meta["board_exact"] <= meta["accuracy"]
    # files: round trip, and clear errors for the wrong model or a corrupt file
    P.save_probe_set(probes, tmp_path)
    loaded = P.load_probe_set(tmp_path, "mine_theirs_empty", handle.cfg.d_model, 8)
    assert list(loaded) == hooks
    assert torch.equal(loaded[hooks[2]].weight, probes[hooks[2]].weight)
    assert loaded[hooks[2]].weight.shape == (handle.cfg.d_model, 8, 8, 3)
    with pytest.raises(P.ProbeLoadError, match="d_model"):
        P.load_probe(tmp_path / "mine_theirs_empty" / hooks[0], d_model=7)
    (tmp_path / "mine_theirs_empty" / f"{hooks[0]}.safetensors").write_bytes(b"junk")
    with pytest.raises(P.ProbeLoadError, match="damaged or replaced"):  # its sha256 no longer matches
        P.load_probe(tmp_path / "mine_theirs_empty" / hooks[0])
    meta_path = tmp_path / "mine_theirs_empty" / f"{hooks[0]}.json"
    meta_path.write_text(json.dumps({k: v for k, v in json.loads(meta_path.read_text()).items() if k != "sha256"}))
    with pytest.raises(P.ProbeLoadError, match="not a readable probe"):  # a probe saved without one
        P.load_probe(tmp_path / "mine_theirs_empty" / hooks[0])


def test_nanda_probe_import_maps_to_mover_relative_classes(tmp_path):
    d = 16
    full = torch.randn(3, d, 8, 8, 3)
    torch.save(full, tmp_path / "main_linear_probe.pth")
    probe = P.import_nanda_probe(tmp_path / "main_linear_probe.pth", mode="black_to_play")
    # black to play: white just moved, so our "mine" (white) is its option 1 (white)
    assert torch.equal(probe.weight[..., 1], full[0, ..., 1]) and torch.equal(probe.weight[..., 2], full[0, ..., 2])
    probe = P.import_nanda_probe(tmp_path / "main_linear_probe.pth", mode="white_to_play")
    assert torch.equal(probe.weight[..., 1], full[1, ..., 2]) and torch.equal(probe.weight[..., 2], full[1, ..., 1])
    avg = P.import_nanda_probe(tmp_path / "main_linear_probe.pth")
    assert avg.weight.shape == (d, 8, 8, 3) and avg.meta["imported_mode"] == "average"
    torch.save(torch.zeros(2, 3), tmp_path / "bad.pth")
    with pytest.raises(P.ProbeLoadError, match=r"\(3, d_model, 8, 8, 3\)"):
        P.import_nanda_probe(tmp_path / "bad.pth")


def test_legal_set_error_counts_false_positives_and_negatives():
    probs = np.array([[0.5, 0.3, 0.1, 0.1], [0.1, 0.2, 0.3, 0.4]])
    legal = np.array([[True, True, False, False], [True, True, False, False]])
    assert I.legal_set_error(probs, legal).tolist() == [0, 4]


def test_edit_makes_the_probe_read_the_target_and_leaves_no_hook(handle):
    probes = P.load_probe_set(P.PROBE_ROOT / handle.name, "mine_theirs_empty", handle.cfg.d_model, 8)
    layer_probe = probes["blocks.3.hook_resid_post"]
    prefixes, squares, targets, legal = I.flip_examples(8, 20, seed=5)
    batch = I.make_batch(prefixes, squares, targets, 8)
    _, cache = handle.run_with_cache(batch.tokens, names_filter=lambda n: n == "blocks.3.hook_resid_post")
    x = cache["blocks.3.hook_resid_post"][torch.arange(len(squares)), batch.last]
    edited = x + I.edit_vectors(x, layer_probe, squares, targets)
    reads = layer_probe.logits(edited).argmax(-1).reshape(len(squares), -1)[np.arange(len(squares)), squares]
    assert reads.tolist() == targets.tolist()
    res = I.intervene(handle, {p.meta["layer"]: p for p in probes.values()}, prefixes[0], int(squares[0]), I.STATES[targets[0]], layers=[3], scale=1.0)
    assert not np.array_equal(res.probs_clean, res.probs_edited)
    assert np.array_equal(res.legal_edited, legal[0])
    assert all(not hp.fwd_hooks for hp in handle.model.hook_dict.values())
    with pytest.raises(ValueError, match="at least one move"):
        I.intervene(handle, {3: layer_probe}, (), 0, "mine", [3])
