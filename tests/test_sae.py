"""SAEs: our activation stream feeds SAELens's trainer; the result loads with SAELens's loader."""

from __future__ import annotations

import json

import pytest
import torch

from core.interp.sae.metrics import sae_metrics
from core.models.registry import load_model
from core.interp.sae.store import load_sae, save_sae
from core.train.sae import ActivationStream, SAETrainConfig, card_for, train_sae


@pytest.fixture(scope="module")
def handle(tiny_bundle):
    return load_model(str(tiny_bundle))


def test_stream_is_shuffled_fresh_games_and_refills_at_half(handle):
    stream = ActivationStream(handle, "blocks.1.hook_resid_post", batch_size=64, buffer_tokens=1024, games_per_refill=20)
    batches = [next(stream) for _ in range(40)]
    assert all(b.shape == (64, handle.cfg.d_model) for b in batches)
    assert stream.refills >= 2 and stream.generated >= 40 * 64
    # consecutive rows come from many positions: no two rows of a batch are identical game starts
    first = batches[0]
    assert torch.unique(first, dim=0).shape[0] > 60


@pytest.mark.parametrize("architecture", ["topk", "standard"])
def test_train_save_load_and_metrics(handle, tmp_path, architecture):
    """A saved and reloaded SAE encodes and decodes as the trained one: the same weights
    (safetensors keeps float32 bits) through SAELens's own kernels, so a few u apart (atol 1e-5
    at reconstructions of order 1, rtol 1e-4)."""
    cfg = SAETrainConfig(hook="blocks.1.hook_resid_post", architecture=architecture, d_sae=128, k=8, l1_coefficient=0.05, lr=2e-3, total_tokens=40_960, batch_size=512, buffer_tokens=8192, games_per_refill=100)
    sae, stats = train_sae(handle, cfg)
    assert stats["activations_generated"] >= cfg.total_tokens and stats["generation_rate_per_s"] > 0
    metrics = sae_metrics(handle, sae, cfg.hook, n_games=40)
    assert 0 <= metrics["fvu"] < 1.0  # it learned something beyond the mean
    assert metrics["ce_clean"] < metrics["ce_zero_ablation"]
    if architecture == "topk":
        assert metrics["l0"] <= 8 + 1e-6
    if architecture == "topk":
        from core.interp.sae.metrics import board_scores
        from core.models.registry import randomly_initialised

        board = board_scores(handle, sae, cfg.hook, n_games=30, random_handle=randomly_initialised(handle))
        assert set(board) == {"sae_features", "mlp_neurons", "random_init_neurons"}
        assert all(0 <= v["coverage"] <= 1 and 0 <= v["board_reconstruction"] <= 1 for v in board.values())
    folder = save_sae(sae, tmp_path / "sae", card_for(handle, cfg, stats, metrics))
    loaded = load_sae(folder)  # SAELens's own loader
    assert loaded.cfg.d_sae == 128 and loaded.cfg.d_in == handle.cfg.d_model
    x = torch.randn(5, handle.cfg.d_model)
    with torch.no_grad():
        torch.testing.assert_close(loaded.decode(loaded.encode(x)), sae.decode(sae.encode(x)), atol=1e-5, rtol=1e-4)
    card = json.loads((folder / "card.json").read_text())
    assert card["metrics"]["fvu"] == metrics["fvu"] and card["train_config"]["architecture"] == architecture


def test_token_activations_are_the_move_positions_for_othello(handle):
    """The token activations are the collected activations at the move positions: the same pass
    read two ways, compared with ``assert_close``'s float32 defaults (a few u)."""
    from core.interp.shared.activations import collect, token_activations

    games = handle.game.random_games(6, seed=5)
    hook = "blocks.1.hook_resid_post"
    torch.testing.assert_close(token_activations(handle, games, [hook])[hook], collect(handle, games, [hook]).acts[hook])


def test_token_activations_cover_every_chess_token():
    """An SAE spliced into a chess model replaces every token (start, from, to, promotion): it
    trains and is scored on all of them, not only where a move ends."""
    from core.interp.shared.activations import collect, token_activations
    from tests.test_chess_interventions import CHESS

    if CHESS is None:
        pytest.skip("no bundled chess model")
    chess_handle = load_model(CHESS)
    game = chess_handle.game
    games = game.random_games(3, seed=2)
    hook = "blocks.0.hook_resid_post"
    acts = token_activations(chess_handle, games, [hook])[hook]
    tokens = game.batch_tokens(games)
    assert len(acts) == int((tokens != game.pad_token).sum())
    moves_only = collect(chess_handle, games, [hook]).acts[hook]
    assert len(moves_only) < len(acts) < 3.2 * len(moves_only)
    full = chess_handle.activations(torch.from_numpy(tokens[:1]), [hook])[hook][0]
    torch.testing.assert_close(acts[: len(full)][:5], full[:5].float())
