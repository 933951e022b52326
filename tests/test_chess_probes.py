"""Chess probe targets against python-chess, and probes read where a move's board is complete."""

from __future__ import annotations

import chess
import numpy as np
import pytest
import torch

from core.games.chess import rules as C
from core.games.registry import get_game
from core.interp.probes import linear_probes as P
from core.interp.shared import activations
from core.models.registry import list_models, load_model

CHESS = next((s.name for s in list_models() if s.source == "bundled" and s.game == "chess"), None)


def test_chess_probe_targets_match_python_chess():
    game = get_game("chess")
    games = game.random_games(20, seed=6)
    rep = game.replay(games)
    piece, relative, dest = (game.probe_classes(rep, t) for t in ("piece", "piece_relative", "legal_destination"))
    for g in range(0, 20, 4):
        board = chess.Board()
        for t in range(int(rep.lengths[g])):
            mover = board.turn
            board.push(C.decode_move(int(games[g, t])))
            for sq in range(64):
                p = board.piece_at(sq)
                value = 0 if p is None else p.piece_type * (1 if p.color else -1)
                assert piece[g, t, sq] == value + 6
                expected_rel = 0 if p is None else p.piece_type + (0 if p.color == mover else 6)
                assert relative[g, t, sq] == expected_rel
            reachable = {m.to_square for m in board.legal_moves} if not rep.termination[g] or t < rep.lengths[g] - 1 else set()
            assert set(np.flatnonzero(dest[g, t])) == reachable, (g, t)
    assert game.probe_targets["piece"][6] == "empty" and len(game.probe_targets["piece_relative"]) == 13


@pytest.mark.skipif(CHESS is None, reason="no bundled chess model")
def test_chess_probes_read_activations_where_each_move_ends():
    """The probe data are the full pass's activations read at each move's last token: the same
    float32 values, batched differently (1e-6 at activations of order 1 is ~16 u)."""
    handle = load_model(CHESS)
    game = handle.game
    games = game.random_games(3, seed=7)
    hook = "blocks.2.hook_resid_post"
    data = activations.collect(handle, games, [hook])
    positions = game.move_positions(games)
    tokens = torch.from_numpy(game.batch_tokens(games))
    full = handle.activations(tokens, [hook])[hook]
    g, t = np.nonzero(data.valid)
    assert len(g) == len(data.acts[hook]) and (positions[g, t] >= 0).all()
    for i in (0, len(g) // 2, len(g) - 1):
        assert torch.allclose(data.acts[hook][i], full[g[i], positions[g[i], t[i]]].float(), atol=1e-6)
    # a move's board is read at its last token: the to-square (or the promotion letter)
    vocab = game.tokenizer.vocab
    for i in (0, 5):
        label = vocab[int(tokens[g[i], positions[g[i], t[i]]])]
        assert label == C.uci(int(games[g[i], t[i]]))[2:4] or label in "qrbn"
    truth = data.targets("piece")
    assert truth.shape == (len(g), 64) and truth.max() <= 12


@pytest.mark.skipif(CHESS is None, reason="no bundled chess model")
def test_chess_probes_train_and_report_occupied_accuracy(tmp_path):
    handle = load_model(CHESS)
    hooks = ["blocks.1.hook_resid_post", "blocks.5.hook_resid_post"]
    probes = P.train_probes(handle, "piece", hooks, train_games=40, test_games=15)
    meta = probes[hooks[1]].meta["held_out"]
    assert 0 < meta["occupied_accuracy"] < meta["accuracy"] <= 1 and len(meta["per_class"]) == 13
    assert probes[hooks[0]].weight.shape == (handle.cfg.d_model, 8, 8, 13)
    P.save_probe_set(probes, tmp_path)
    loaded = P.load_probe_set(tmp_path, "piece", handle.cfg.d_model, 8)
    assert torch.equal(loaded[hooks[1]].weight, probes[hooks[1]].weight)


@pytest.mark.skipif(CHESS is None, reason="no bundled chess model")
def test_probe_viewer_serves_chess_and_trains_probes_from_the_page():
    from tests.test_board_player_page import button, open_page

    at = open_page("pages/probe_viewer.py", model=CHESS, moves="e2e4e7e5g1f3")
    assert not at.error, [e.value for e in at.error]
    assert {o.split(" ")[0] for o in at.selectbox[0].options} == {"piece", "piece_relative", "legal_destination"}
    at.slider[0].set_value(50)
    at.slider[1].set_value(50)
    button(at, "Train piece probes (every layer)").click().run(timeout=600)
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert any("occupied squares" in m.value for m in at.markdown)
    assert any(m.value.startswith("Trained 8 piece probes on 50 games") and "the probes it replaces" in m.value for m in at.success), [m.value for m in at.success]
    assert len(at.get("plotly_chart")) >= 3
    # the trained piece probes drive the intervention panel: remove the knight that can move
    assert any("a random edit of the same size gives" in m.value for m in at.markdown), [i.value for i in at.info]
