"""The feature browser's index against a dense encode, and the per-feature views, on a real SAE."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from core.games.othello import engine as othello
from core.interp.sae import features as F
from core.interp.shared import unit_index
from core.interp.shared.board_properties import board_properties
from core.interp.shared.predictions import next_token_probs
from core.interp.shared.activations import collect
from core.interp.sae.store import SAELoadError, list_saes, load_sae, save_sae
from core.models.registry import load_model
from core.train.sae import SAETrainConfig, card_for, train_sae
from tests.rounding import product_bound

HOOK = "blocks.1.hook_resid_post"


@pytest.fixture(scope="module")
def handle(tiny_bundle):
    return load_model(str(tiny_bundle))


@pytest.fixture(scope="module")
def sae(handle):
    cfg = SAETrainConfig(hook=HOOK, d_sae=64, k=6, lr=2e-3, total_tokens=30_720, batch_size=512, buffer_tokens=8192, games_per_refill=100)
    trained, _ = train_sae(handle, cfg)
    return trained


@pytest.fixture(scope="module")
def index(handle, sae):
    return F.build_index(handle, sae, HOOK, n_games=60)


def dense_features(handle, sae, index):
    acts = collect(handle, index.games, [HOOK]).acts[HOOK]
    with torch.inference_mode():
        return sae.encode(acts).float()


def encode_bound(handle, sae, index) -> float:
    """How far two float32 encodings of the same activations (batched differently: the index's
    chunks, a dense pass, one position) may differ: the rounding of the encoder's product at its
    operands' magnitudes (``tests.rounding.product_bound``). Features near 0 have no relative
    accuracy, so bounds are absolute."""
    acts = collect(handle, index.games, [HOOK]).acts[HOOK]
    return product_bound(acts.abs() + sae.b_dec.detach().abs(), sae.W_enc.detach())


def test_index_holds_every_nonzero_activation_sorted(handle, sae, index):
    """The index holds the dense encoding's values within the encoder's rounding
    (``encode_bound``); densities are counts of positive values, equal unless rounding moves an
    activation across 0 (none here: 1e-6 is below one position in the index)."""
    dense = dense_features(handle, sae, index)
    bound = encode_bound(handle, sae, index)
    assert index.n_positions == len(dense)
    assert len(index.values) == int((dense > 0).sum())
    for f in range(index.d_sae):
        positions, values = index.activations(f)
        assert np.all(np.diff(values) <= 0)
        np.testing.assert_allclose(values, dense[positions, f].numpy(), rtol=0, atol=bound)
        assert len(values) == int((dense[:, f] > 0).sum())
    np.testing.assert_allclose(index.density, (dense > 0).float().mean(0).numpy(), rtol=1e-6)
    np.testing.assert_allclose(index.max_activation, dense.max(0).values.clamp(min=0).numpy(), rtol=0, atol=bound)
    with pytest.raises(ValueError):
        index.activations(index.d_sae)


def test_best_property_f1_matches_a_dense_computation(handle, sae, index):
    """F1 is a ratio of counts: both computations count the same firings (thresholds are
    fractions of the same maximum), so they agree to float32's relative rounding of the ratio, a
    few u; rel 1e-5 would still fail on one position counted differently (1 in ~1,500)."""
    dense = dense_features(handle, sae, index)
    rep = othello.replay(index.games, handle.board_size)
    props, names = board_properties(rep, np.arange(rep.mover.shape[1])[None, :] < rep.lengths[:, None])
    assert names == index.property_names
    f = int(np.argmax(index.best_f1))
    p = torch.from_numpy(props).float()
    best = 0.0
    for t in [0.1 * i for i in range(10)]:
        fire = (dense[:, f] > t * dense[:, f].max()) & (dense[:, f] > 0)
        tp = (fire.float()[:, None] * p).sum(0)
        f1 = 2 * tp / (fire.sum() + p.sum(0)).clamp(min=1)
        best = max(best, float(f1.max()))
    assert index.best_f1[f] == pytest.approx(best, rel=1e-5)
    assert index.best_f1[f] > 0


def test_examples_are_the_boards_of_their_positions(handle, index):
    f = int(np.argmax(index.density))
    examples = unit_index.top_examples(index, f, k=5)
    assert [e.value for e in examples] == sorted((e.value for e in examples), reverse=True)
    from core.games.othello.play import game_state

    for e in examples:
        state = game_state(e.moves, handle.board_size)
        np.testing.assert_array_equal(state.board, e.board)
        assert (e.moves[-1],) == e.last_move and len(e.moves) == e.move + 1
    # distinct positions: no game prefix twice, and none of the skipped ones beats the last kept
    many = unit_index.top_examples(index, f, k=40)
    assert len({e.moves for e in many}) == len(many)
    positions, values = index.activations(f)
    kept = {e.moves for e in many}
    assert all(unit_index._example(index, int(p), float(v)).moves in kept for p, v in zip(positions, values) if v > many[-1].value)
    bands = unit_index.quantile_examples(index, f)
    top = examples[0].value
    for label, band in bands:
        assert band and all(0 < e.value <= top for e in band)
        assert len({e.moves for e in band}) == len(band), label  # distinct positions, as the top examples
    # The densest feature fires at many positions that random games share (their openings): the
    # bands still fill with distinct positions.
    early = [unit_index.quantile_examples(index, f, per_band=8, seed=s) for s in range(3)]
    assert all(len({e.moves for e in band}) == len(band) for bands_ in early for _, band in bands_)


def test_features_now_and_splice(handle, sae, index):
    """The features of one position equal the dense encoding's within the encoder's rounding
    (``encode_bound``); the page's one pass gives the probabilities of the separate passes within
    1e-5, where a probability moves by at most its logits' change: the logits' float32 rounding
    (``tests.rounding.forward_bound``, ~1e-6 for this model) is well inside it, and a wrong splice
    moves probabilities by 1e-2 or more."""
    moves = tuple(int(m) for m in index.games[0, :7])
    bound = encode_bound(handle, sae, index)
    now = F.features_now(handle, sae, HOOK, moves, k=5)
    dense = dense_features(handle, sae, index)
    row = dense[6]  # game 0 after move 7 is the index's 7th position
    assert now[0][0] == int(row.argmax()) and now[0][1] == pytest.approx(float(row.max()), abs=bound)
    spliced = F.spliced_probs(handle, sae, HOOK, moves)
    from core.games.othello.play import game_state
    from core.interp.shared.predictions import predict

    clean = predict(handle, game_state(moves, handle.board_size)).probs
    assert 0 < spliced.sum() <= 1 + 1e-5
    assert not np.allclose(clean, spliced)  # the reconstruction is not exact
    assert F.features_now(handle, sae, HOOK, ()) == []
    # The page's one pass (the spliced pass resumed at the hook's block) gives the same three.
    one = F.splice_now(handle, sae, HOOK, moves, k=5)
    assert [f for f, _ in one.features] == [f for f, _ in now] and np.allclose([v for _, v in one.features], [v for _, v in now], rtol=0, atol=bound)
    assert np.abs(one.clean - next_token_probs(handle, moves)).max() <= 1e-6
    assert np.abs(one.spliced - F.spliced_next_tokens(handle, sae, HOOK, moves)).max() <= 1e-5
    assert np.abs(F.on_squares(handle.game, one.spliced) - spliced).max() <= 1e-5
    assert F.splice_now(handle, sae, HOOK, ()) is None


def test_weight_views(handle, sae):
    """Logit effects are the direction times W_U, centred: a d_model-long float32 product, a few
    u of |d| |W_U| (~1e-6 here) from the hand-written one, inside rtol 1e-4 + atol 1e-6. A cosine is
    a ratio of such products, within 1e-5 of the hand-written one by the same argument."""
    d = F.residual_directions(handle, sae, HOOK)
    effects = F.logit_effects(handle, d, 0)
    size = handle.board_size
    per_token = (d[0] @ handle.model.W_U).numpy()[1:]
    squares = othello.tokens_to_squares(np.arange(1, othello.vocab_size(size)), size)
    np.testing.assert_allclose(effects[squares], per_token - per_token.mean(), rtol=1e-4, atol=1e-6)
    weight = torch.randn(handle.cfg.d_model, size, size, 3)
    cos = F.probe_cosines(d[0], weight)
    manual = torch.nn.functional.cosine_similarity(weight[:, 0, 1, 1] - weight[:, 0, 1, 2], d[0], dim=0)
    assert cos["mine − theirs"][1] == pytest.approx(float(manual), abs=1e-5)
    assert F.probe_hook_for("blocks.1.hook_resid_pre", 2) == "blocks.0.hook_resid_post"
    assert F.probe_hook_for("blocks.1.mlp.hook_post", 2) == "blocks.1.hook_resid_post"


def test_store_round_trip_and_damaged_folders(handle, sae, tmp_path):
    folder = save_sae(sae, tmp_path / "tiny6" / "one", card_for(handle, SAETrainConfig(hook=HOOK), {}, {}))
    from sae_lens import SAE

    assert SAE.load_from_disk(str(folder)).cfg.metadata.hook_name == HOOK  # SAELens's own loader
    assert [e.name for e in list_saes("tiny6", root=tmp_path)] == ["one"]
    with pytest.raises(SAELoadError, match="width"):
        load_sae(folder, d_in=handle.cfg.d_model + 1)
    (folder / "sae_weights.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(SAELoadError, match="sae_weights.safetensors: damaged or replaced"):  # its sha256 differs
        load_sae(folder)
    card = json.loads((folder / "card.json").read_text())
    (folder / "card.json").write_text(json.dumps({k: v for k, v in card.items() if k != "sha256"}))
    with pytest.raises(SAELoadError, match="could not be read"):  # a folder saved without hashes
        load_sae(folder)
    (folder / "card.json").write_text("{broken")
    assert list_saes("tiny6", root=tmp_path) == []


def test_decoder_neighbours_and_extreme_squares(sae):
    """Cosines of unit vectors: the same normalised float32 product in both computations, a few
    u apart (1e-6 is ~16 u)."""
    w = torch.nn.functional.normalize(sae.W_dec.detach().float(), dim=-1)
    neighbours = F.decoder_neighbours(sae, 3, k=4)
    cos = (w @ w[3]).numpy()
    cos[3] = -2
    assert [f for f, _ in neighbours] == list(np.argsort(-cos)[:4])
    assert neighbours[0][1] == pytest.approx(float(cos.max()), abs=1e-6)
    values = np.arange(36, dtype=np.float32)
    up, down = F.extreme_squares(values, 6, k=2)
    assert [v for _, v in up] == [35.0, 34.0] and [v for _, v in down] == [0.0, 1.0]
    assert up[0][0] == othello.square_to_label(35, 6)


@pytest.mark.parametrize("hook", ["blocks.0.mlp.hook_post", "blocks.1.hook_mlp_out"])
def test_other_hooks_browse_too(handle, hook):
    """An SAE on the MLP neurons (d_mlp wide) writes to the residual stream through W_out. Its
    directions are W_dec @ W_out, one float32 product computed the same way on both sides
    (``assert_close``'s float32 defaults); the one-pass splice gives the separate pass's
    probabilities within 1e-6 because, for a hook inside a block, both run the whole model with
    the same hook (the same kernels on the same inputs)."""
    cfg = SAETrainConfig(hook=hook, d_sae=32, k=4, lr=2e-3, total_tokens=5_120, batch_size=256, buffer_tokens=2048, games_per_refill=40)
    sae, _ = train_sae(handle, cfg)
    width = handle.cfg.d_mlp if hook.endswith("hook_post") else handle.cfg.d_model
    assert sae.cfg.d_in == width == handle.hook_width(hook)
    index = F.build_index(handle, sae, hook, n_games=20)
    assert index.d_sae == 32 and len(index.values) > 0
    d = F.residual_directions(handle, sae, hook)
    assert d.shape == (32, handle.cfg.d_model)
    if hook.endswith("hook_post"):
        torch.testing.assert_close(d, sae.W_dec.detach() @ handle.model.blocks[0].mlp.W_out.detach())
    assert F.logit_effects(handle, d, 0).shape == (handle.board_size**2,)
    moves = tuple(int(m) for m in index.games[0, :5])
    assert len(F.features_now(handle, sae, hook, moves, k=3)) <= 3
    assert F.spliced_probs(handle, sae, hook, moves).shape == (handle.board_size**2,)
    one = F.splice_now(handle, sae, hook, moves, k=3)  # a hook inside a block: the spliced pass runs whole
    assert np.abs(one.spliced - F.spliced_next_tokens(handle, sae, hook, moves)).max() <= 1e-6
    assert [f for f, _ in one.features] == [f for f, _ in F.features_now(handle, sae, hook, moves, k=3)]


def test_feature_table_opens_with_the_best_tracking_features_and_dead_ones_last():
    from types import SimpleNamespace

    from core.interp.shared.unit_index import feature_table

    index = SimpleNamespace(
        property_names=["a", "b"], density=np.array([0.0, 0.2, 0.1, 0.3]), max_activation=np.array([0.0, 1.0, 2.0, 3.0]),
        best_property=np.array([-1, 0, 1, 0]), best_f1=np.array([0.0, 0.5, 0.9, 0.5], dtype=np.float32),
    )
    table = feature_table(index)
    assert table["feature"].tolist() == [2, 3, 1, 0]  # F1, then density; the dead feature last
    assert table["best property"].tolist() == ["b", "a", "a", "—"] and table["density"].tolist() == [0.1, 0.3, 0.2, 0.0]


def test_activation_bands_show_distinct_positions_when_games_share_them():
    """Ten games with the same opening: the feature fires at the same position in each, with
    values spread over one band; the band shows that position once, not four times."""
    from core.interp.shared.unit_index import FeatureIndex, quantile_examples

    G, T = 10, 3
    games = np.tile(np.array([19, 18, 17]), (G, 1))
    values = np.linspace(1.0, 0.5, G + 1).astype(np.float32)  # one top activation, then the band
    position = np.arange(G + 1, dtype=np.int32) % G * T + 1  # move 1 of every game (the first one twice)
    index = FeatureIndex(
        size=8, hook="blocks.0.hook_resid_post", games=games, boards=np.zeros((G, T, 8, 8), dtype=np.int8),
        game=np.repeat(np.arange(G), T), move=np.tile(np.arange(T), G), ptr=np.array([0, G + 1]), position=position, values=values,
        property_names=["p"], best_property=np.array([0]), best_f1=np.array([1.0], dtype=np.float32),
        move_squares=np.zeros((G, T, 2), dtype=np.int64), f1=np.ones((1, 1), dtype=np.float16),
    )
    bands = quantile_examples(index, 0, bands=2, per_band=4)
    assert bands and all(len(band) == 1 for _, band in bands), [(label, [e.moves for e in band]) for label, band in bands]


def test_a_property_is_checked_against_the_top_examples(handle, index):
    """"empty d4"-type properties hold exactly where the example boards have an empty square;
    every example's square holds exactly one class; a property beyond the board has no classes."""
    f = int(np.argmax(index.density))
    examples = unit_index.top_examples(index, f, k=12)
    n_sq = handle.game.n_squares
    for square in (0, 7, n_sq - 1):
        hits, classes = unit_index.property_in_examples(index, handle.game, examples, square)  # class 0 (empty) of the square
        assert hits == sum(int(e.board.reshape(-1)[square] == 0) for e in examples)
        assert sum(n for _, n in classes) == len(examples)
        assert dict(classes).get(index.property_names[square], 0) == hits
    legal = 3 * n_sq  # the first "legal" property, after the three board classes
    hits, classes = unit_index.property_in_examples(index, handle.game, examples, legal)
    assert classes == [] and 0 <= hits <= len(examples)
    assert unit_index.property_in_examples(index, handle.game, [], 0) == (0, [])
