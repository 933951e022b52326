"""The compiled chess move generator (cozy-chess, through its Python bindings) behind ``rules._run``.

It produces exactly the records of the python-chess engine (tests compare both with python-chess
position by position), about an order of magnitude faster: a position's legal moves come back as
one bitboard of destinations per piece, which is also how ``Replay`` stores them, so no Python
object is made per move. Two conventions differ from python-chess and are converted here:
cozy-chess writes castling as the king taking its own rook (e1h1), and it reports an en-passant
file after every double pawn step, where python-chess's repetition key counts it only when an
en-passant capture is legal.
"""

from __future__ import annotations

from itertools import chain

import cozy_chess as cz
import numpy as np

from core.games.chess import records as C

_PIECES = (cz.Piece.Pawn, cz.Piece.Knight, cz.Piece.Bishop, cz.Piece.Rook, cz.Piece.Queen, cz.Piece.King)
_P0, _P1, _P2, _P3, _P4, _P5 = _PIECES
_WHITE = cz.Color.White
_LAST_RANKS = 0xFF000000000000FF
_SQUARES = [cz.Square.from_index(i) for i in range(64)]
_PROMO_PIECE = {2: cz.Piece.Knight, 3: cz.Piece.Bishop, 4: cz.Piece.Rook, 5: cz.Piece.Queen}
# Castling as cozy-chess writes it (king to rook square) <-> as python-chess does (king two squares).
_ROOK_TO_KING = {(4, 7): 6, (4, 0): 2, (60, 63): 62, (60, 56): 58}
_KING_TO_ROOK = {(k, v): r for (k, r), v in _ROOK_TO_KING.items()}


def _groups(piece_moves, pawns: int, rooks_own: int, ep_possible: bool) -> tuple[list[tuple[int, int, bool]], int]:
    """One (from-square, destinations, promotes) per piece that can move, sorted by from-square,
    and the number of legal moves they stand for (a promoting pawn's destination is four moves).

    The piece kind is read from the position's own bitboards, not from each record: a king's
    destinations hold one of its own rooks only when it castles (cozy-chess may also list a
    pawn's en-passant capture apart from its other moves: merged).
    """
    out: list[tuple[int, int, bool]] = []
    append = out.append
    total = 0
    for pm in piece_moves:
        frm, bits = int(pm.from_square), int(pm.to)
        if pawns >> frm & 1:
            promo = bits & _LAST_RANKS != 0
            append((frm, bits, promo))
            total += bits.bit_count() * (4 if promo else 1)
            continue
        if bits & rooks_own:  # castling, written as the king taking its rook
            for rook_sq in (7, 0, 63, 56):
                if bits >> rook_sq & 1 and (frm, rook_sq) in _ROOK_TO_KING:
                    bits = (bits & ~(1 << rook_sq)) | (1 << _ROOK_TO_KING[(frm, rook_sq)])
        append((frm, bits, False))
        total += bits.bit_count()
    out.sort()
    if ep_possible:
        merged: list[tuple[int, int, bool]] = []
        for group in out:
            if merged and merged[-1][0] == group[0]:
                merged[-1] = (group[0], merged[-1][1] | group[1], merged[-1][2] or group[2])
            else:
                merged.append(group)
        return merged, total
    return out, total


def _state(board: cz.Board) -> tuple[int, ...]:
    return tuple(int(board.pieces(p)) for p in _PIECES) + (int(board.colors(cz.Color.White)),)


def run_cozy(n: int, T: int, games: np.ndarray | None, uniforms: np.ndarray | None) -> tuple[np.ndarray, C.Replay]:
    rec = C._Recorder(n, T)
    start = _state(cz.Board())
    u_rows = uniforms.tolist() if uniforms is not None else None
    moves: dict[tuple[int, int, int], cz.Move] = {}  # made once per batch, not once per position
    g_pos, g_list = rec.g_pos, rec.groups
    for g in range(n):
        u_row = u_rows[g] if u_rows is not None else None
        board = cz.Board()
        pieces, white_of, piece_moves, hash_key = board.pieces, board.colors, board.generate_piece_moves, board.hash_without_ep
        bb = start
        white_to_move = True
        in_check = False
        clock = 0
        seen: dict = {}
        bits_rows, checks, clocks, codes = [], [], [], []
        t = 0
        while True:
            white = bb[6]
            own = white if white_to_move else ~white  # a mask: & with a piece board gives the mover's
            ep = board.en_passant()
            groups, n_moves = _groups(piece_moves(), bb[0], bb[3] & own, ep is not None)
            ep_square = None
            if ep is not None:
                sq = int(ep) + (40 if white_to_move else 16)
                pawns_own = bb[0] & own
                if any(True for f, bits, _ in groups if pawns_own >> f & 1 and bits >> sq & 1):
                    ep_square = sq
            key = (hash_key(), ep_square)
            repeats = seen.get(key, 0) + 1
            seen[key] = repeats
            if t > 0:
                # Pawns, rooks or queens on the board always leave mating material: skip the count.
                insufficient = not (bb[0] | bb[3] | bb[4]) and C.insufficient_material(*bb[:6], white, (bb[0] | bb[1] | bb[2] | bb[3] | bb[4] | bb[5]) & ~white)
                ended = C._end(not groups, in_check, insufficient, clock, repeats)
                if ended:
                    rec.termination[g] = ended
                    break
            g_pos += [g * (T + 1) + t] * len(groups)
            g_list += chain.from_iterable(groups)
            if t == T:
                break
            if u_row is not None:
                code = C.pick(groups, u_row[t], presorted=True, total=n_moves)
            else:
                code = C._next_code(games, None, g, t, groups, lambda: C.board_after([int(m) for m in games[g, :t]]))
                if code < 0:
                    break
            frm, to, piece = code % 64, (code // 64) % 64, code // 4096
            if (frm, to) in _KING_TO_ROOK and bb[5] >> frm & 1:
                to = _KING_TO_ROOK[(frm, to)]
            move = moves.get((frm, to, piece))
            if move is None:
                move = moves[(frm, to, piece)] = cz.Move(_SQUARES[frm], _SQUARES[to], _PROMO_PIECE.get(piece))
            board.play_unchecked(move)
            white_to_move = not white_to_move
            bb = (int(pieces(_P0)), int(pieces(_P1)), int(pieces(_P2)), int(pieces(_P3)), int(pieces(_P4)), int(pieces(_P5)), int(white_of(_WHITE)))
            in_check = int(board.checkers()) != 0
            clock = board.halfmove_clock
            bits_rows.append(bb)
            checks.append(in_check)
            clocks.append(clock)
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
