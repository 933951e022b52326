"""The compiled chess move generator (cozy-chess, through its Python bindings) behind ``chess._run``.

It produces exactly the records of the python-chess engine (tests compare both with python-chess
position by position), about an order of magnitude faster: a position's legal moves come back as
one bitboard of destinations per piece, which is also how ``Replay`` stores them, so no Python
object is made per move. Two conventions differ from python-chess and are converted here:
cozy-chess writes castling as the king taking its own rook (e1h1), and it reports an en-passant
file after every double pawn step, where python-chess's repetition key counts it only when an
en-passant capture is legal.
"""

from __future__ import annotations

import cozy_chess as cz
import numpy as np

from core.games import chess as C

_PIECES = (cz.Piece.Pawn, cz.Piece.Knight, cz.Piece.Bishop, cz.Piece.Rook, cz.Piece.Queen, cz.Piece.King)
_PAWN, _KING = int(cz.Piece.Pawn), int(cz.Piece.King)
_LAST_RANKS = 0xFF000000000000FF
_SQUARES = [cz.Square.from_index(i) for i in range(64)]
_PROMO_PIECE = {2: cz.Piece.Knight, 3: cz.Piece.Bishop, 4: cz.Piece.Rook, 5: cz.Piece.Queen}
# Castling as cozy-chess writes it (king to rook square) <-> as python-chess does (king two squares).
_ROOK_TO_KING = {(4, 7): 6, (4, 0): 2, (60, 63): 62, (60, 56): 58}
_KING_TO_ROOK = {(k, v): r for (k, r), v in _ROOK_TO_KING.items()}


def _groups(board: cz.Board, rooks_own: int, ep_possible: bool) -> list[tuple[int, int, bool]]:
    """One (from-square, destinations, promotes) per piece that can move, sorted by from-square
    (cozy-chess may list a pawn's en-passant capture apart from its other moves: merged)."""
    out = []
    for pm in board.generate_piece_moves():
        frm, bits, piece = int(pm.from_square), int(pm.to), int(pm.piece)
        if piece == _PAWN:
            out.append((frm, bits, bool(bits & _LAST_RANKS)))
        elif piece == _KING and bits & rooks_own:
            for rook_sq in (7, 0, 63, 56):
                if bits >> rook_sq & 1 and (frm, rook_sq) in _ROOK_TO_KING:
                    bits = (bits & ~(1 << rook_sq)) | (1 << _ROOK_TO_KING[(frm, rook_sq)])
            out.append((frm, bits, False))
        else:
            out.append((frm, bits, False))
    out.sort()
    if ep_possible:  # merge a pawn listed twice (its en-passant capture apart)
        merged: list[tuple[int, int, bool]] = []
        for group in out:
            if merged and merged[-1][0] == group[0]:
                merged[-1] = (group[0], merged[-1][1] | group[1], merged[-1][2] or group[2])
            else:
                merged.append(group)
        return merged
    return out


def _state(board: cz.Board) -> tuple[int, ...]:
    return tuple(int(board.pieces(p)) for p in _PIECES) + (int(board.colors(cz.Color.White)),)


def run_cozy(n: int, T: int, games: np.ndarray | None, uniforms: np.ndarray | None) -> tuple[np.ndarray, C.Replay]:
    rec = C._Recorder(n, T)
    start = _state(cz.Board())
    u_rows = uniforms.tolist() if uniforms is not None else None
    for g in range(n):
        board = cz.Board()
        bb = start
        white_to_move = True
        in_check = False
        seen: dict = {}
        bits_rows, checks, clocks, codes = [], [], [], []
        t = 0
        while True:
            white = bb[6]
            occupied = bb[0] | bb[1] | bb[2] | bb[3] | bb[4] | bb[5]
            own = white if white_to_move else occupied & ~white
            ep = board.en_passant()
            groups = _groups(board, bb[3] & own, ep is not None)
            ep_square = None
            if ep is not None:
                sq = int(ep) + (40 if white_to_move else 16)
                pawns_own = bb[0] & own
                if any(True for f, bits, _ in groups if pawns_own >> f & 1 and bits >> sq & 1):
                    ep_square = sq
            key = (board.hash_without_ep(), ep_square)
            repeats = seen.get(key, 0) + 1
            seen[key] = repeats
            if t > 0:
                ended = C._end(not groups, in_check, C.insufficient_material(*bb[:6], white, occupied & ~white), board.halfmove_clock, repeats)
                if ended:
                    rec.termination[g] = ended
                    break
            rec.legal(g * (T + 1) + t, groups)
            if t == T:
                break
            if u_rows is not None:
                code = C.pick(groups, u_rows[g][t], presorted=True)
            else:
                code = C._next_code(games, None, g, t, groups, lambda: C.board_after([int(m) for m in games[g, :t]]))
                if code < 0:
                    break
            frm, to, piece = code % 64, (code // 64) % 64, code // 4096
            if (frm, to) in _KING_TO_ROOK and bb[5] >> frm & 1:
                to = _KING_TO_ROOK[(frm, to)]
            board.play_unchecked(cz.Move(_SQUARES[frm], _SQUARES[to], _PROMO_PIECE.get(piece)))
            white_to_move = not white_to_move
            bb = _state(board)
            in_check = int(board.checkers()) != 0
            bits_rows.append(bb)
            checks.append(in_check)
            clocks.append(board.halfmove_clock)
            codes.append(code)
            t += 1
        rec.lengths[g] = t
        if t:
            rec.bits[g, :t] = bits_rows
            rec.check[g, :t] = checks
            rec.clock[g, :t] = clocks
            rec.played[g, :t] = codes
            rec.mover[g, :t] = np.resize(np.array([C.WHITE, C.BLACK], dtype=np.int8), t)
            rec.next_player[g, :t] = -rec.mover[g, :t]
        C._check_after_end(games, g, t, T, rec.termination[g])
    return rec.played, rec.finish(start)
