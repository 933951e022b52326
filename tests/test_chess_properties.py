"""Castling rights, legal en passant and pinned pieces read from a Replay's arrays equal what
python-chess says at every position of random games."""

from __future__ import annotations

import chess
import numpy as np

from core.games.chess import rules as C
from core.games.chess.properties import castling_rights, en_passant_legal, pinned_pieces, side_to_move_castling
from core.games.chess.records import decode_move


def python_chess_facts(games: np.ndarray):
    """Per game and move: (4 castling rights, legal en passant, pinned squares), by python-chess."""
    rights, ep, pins = [], [], []
    for row in games:
        board = chess.Board()
        r, e, p = [], [], []
        for code in row[row >= 0]:
            board.push(decode_move(int(code)))
            r.append([board.has_kingside_castling_rights(chess.WHITE), board.has_queenside_castling_rights(chess.WHITE),
                      board.has_kingside_castling_rights(chess.BLACK), board.has_queenside_castling_rights(chess.BLACK)])
            e.append(board.has_legal_en_passant())
            p.append([board.piece_at(s) is not None and board.is_pinned(board.piece_at(s).color, s) for s in range(64)])
        rights.append(r), ep.append(e), pins.append(p)
    return rights, ep, pins


def test_castling_en_passant_and_pins_equal_python_chess():
    games = C.random_games(120, 160, seed=11)
    rep = C.replay(games)
    rights, ep, pins = python_chess_facts(games)
    ours_rights, ours_ep = castling_rights(rep), en_passant_legal(rep)
    ours_pins = pinned_pieces(rep.boards.reshape(len(games), -1, 64).reshape(-1, 64)).reshape(len(games), -1, 64)
    seen = {"ep": 0, "pins": 0, "lost rights": 0}
    for g, row in enumerate(games):
        n = int((row >= 0).sum())
        assert (ours_rights[g, :n] == np.array(rights[g], dtype=bool)).all(), g
        assert (ours_ep[g, :n] == np.array(ep[g], dtype=bool)).all(), g
        assert (ours_pins[g, :n] == np.array(pins[g], dtype=bool)).all(), g
        seen["ep"] += int(ours_ep[g, :n].sum())
        seen["pins"] += int(ours_pins[g, :n].any(1).sum())
        seen["lost rights"] += int((~ours_rights[g, :n]).any(1).sum())
    assert min(seen.values()) > 5, seen  # each fact happens, so the comparison means something
    to_move = side_to_move_castling(rep)
    g, t = 0, 10
    mine = (0, 1) if rep.next_player[g, t] == 1 else (2, 3)
    assert to_move[g, t].tolist() == [ours_rights[g, t, mine[0]], ours_rights[g, t, mine[1]]]
