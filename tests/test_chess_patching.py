"""Batched patching on a chess game equals transformer_lens.patching, with a whole-move metric."""

from __future__ import annotations

import numpy as np
import torch
from transformer_lens import patching as tl_patching

from core.games.chess import rules as C
from core.interp.patching import sweeps as P
from core.models.convert import build_hooked_transformer
from core.models.handle import ModelHandle, ModelInfo
from tests.rounding import metric_bound


def test_chess_block_and_head_patching_equal_transformer_lens():
    """Every patched site equals TransformerLens's within the metric's float32 rounding
    (``tests.rounding.metric_bound``), and the metric is the board player's log-probability of
    the move within the same bound."""
    torch.manual_seed(0)
    config = dict(n_layers=2, d_model=32, d_head=8, n_heads=4, d_mlp=64, d_vocab=77, n_ctx=64, act_fn="gelu", normalization_type="LN")
    handle = ModelHandle(build_hooked_transformer(config), ModelInfo("tiny-chess", "chess", 8, {}, "test", "uci-squares"))
    game = handle.game
    moves = tuple(C.parse_moves("e4 e5 Nf3 Nc6 Bb5 a6 Ba4 Nf6"))
    # Change move 3 (Nf3 -> Nc3) and replay the rest while it stays legal: same number of tokens.
    clean_moves, corrupted_moves, dropped = P.corrupt_game(moves, 2, C.parse_moves("Nc3", moves[:2])[0], game)
    assert dropped == 0 and len(clean_moves) == len(corrupted_moves) == 8
    clean = torch.from_numpy(game.game_tokens(clean_moves))[None]
    corrupted = torch.from_numpy(game.game_tokens(corrupted_moves))[None]
    assert clean.shape == corrupted.shape
    # The metric: the log-probability of the whole next move O-O (e1g1) after the clean game,
    # as the product of its two tokens, read by appending the move's first token to both games.
    castle = game.move_tokens(C.parse_moves("O-O", clean_moves)[0])
    clean_x = torch.cat([clean, torch.tensor([[castle[0]]])], 1)
    corrupted_x = torch.cat([corrupted, torch.tensor([[castle[0]]])], 1)

    def metric(logits: torch.Tensor) -> torch.Tensor:
        logp = logits.log_softmax(-1)
        return logp[:, -2, castle[0]] + logp[:, -1, castle[1]]

    ours = P.act_patch_block_every(handle, corrupted_x, clean_x, metric)
    heads = P.act_patch_head_all_pos_every(handle, corrupted_x, clean_x, metric)
    with handle.session() as model:
        _, clean_cache = model.run_with_cache(clean_x)
        theirs = tl_patching.get_act_patch_block_every(model, corrupted_x, clean_cache, metric)
        theirs_heads = tl_patching.get_act_patch_attn_head_all_pos_every(model, corrupted_x, clean_cache, metric)
    assert ours.shape == theirs.shape == (3, 2, clean_x.shape[1])
    bound = metric_bound(handle.model, clean_x, metric)  # float32 rounding of the metric (tests/rounding.py)
    assert (ours - theirs).abs().max().item() <= bound and (heads - theirs_heads).abs().max().item() <= bound
    assert ours.std() > 0
    # Sanity: the metric is the move's log-probability that the board player multiplies out.
    with torch.no_grad():
        direct = float(metric(handle.forward(clean_x)))
    from core.interp.shared.predictions import predict

    pred = predict(handle, game.state(clean_moves))
    assert np.isclose(np.log(pred.move_probs[C.parse_moves("O-O", clean_moves)[0]]), direct, atol=bound)  # the board player's rows pass against a plain forward


def test_patching_lab_serves_a_chess_link():
    import pytest

    from core.models.registry import list_models
    from tests.test_board_player_page import open_page

    chess_model = next((s.name for s in list_models() if s.source == "bundled" and s.game == "chess"), None)
    if chess_model is None:
        pytest.skip("no bundled chess model")
    from tests.test_patching_lab_page import run_exact_sweep

    at = run_exact_sweep(open_page("pages/patching_lab.py", model=chess_model, moves="e2e4e7e5g1f3b8c6f1b5a7a6"))
    assert not at.error, [e.value for e in at.error]
    assert at.subheader[0].value.startswith("One site")
    assert len({c.proto.id for c in at.get("plotly_chart")}) >= 6
    at.slider[0].set_value(2).run()  # change Black's first move
    assert not at.exception and not at.error
    assert len(at.dataframe) == 1 and len(at.dataframe[0].value) == 12
