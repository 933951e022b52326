"""The SAN of every legal move of a position at once, equal to python-chess's ``Board.san``.

``Board.san`` plays each move and takes it back to learn whether it checks, and lists the legal
moves again for every piece move to disambiguate it: ~30 µs a move, which made writing a random
game's PGN characters (every legal move's SAN at every ply, for the trainer's targets) take
~35 ms a game. Here the disambiguation comes from one pass over the legal moves, and whether a
move checks from bitboards (which of the mover's pieces attack the other king once the move is
made); only a checking move is played, to tell ``+`` from ``#``. Tests compare every SAN with
python-chess over many random games.
"""

from __future__ import annotations

import chess

_FILES = chess.FILE_NAMES
_RANKS = chess.RANK_NAMES
_NAMES = chess.SQUARE_NAMES
_LETTER = {chess.KNIGHT: "N", chess.BISHOP: "B", chess.ROOK: "R", chess.QUEEN: "Q", chess.KING: "K"}
_PROMO = {chess.KNIGHT: "=N", chess.BISHOP: "=B", chess.ROOK: "=R", chess.QUEEN: "=Q"}
_BB = chess.BB_SQUARES
# Castling (standard chess): the king's move -> the rook's (from, to).
_CASTLE_ROOK = {(4, 6): (7, 5), (4, 2): (0, 3), (60, 62): (63, 61), (60, 58): (56, 59)}


def _rook_attacks(sq: int, occ: int) -> int:
    return chess.BB_RANK_ATTACKS[sq][chess.BB_RANK_MASKS[sq] & occ] | chess.BB_FILE_ATTACKS[sq][chess.BB_FILE_MASKS[sq] & occ]


def _bishop_attacks(sq: int, occ: int) -> int:
    return chess.BB_DIAG_ATTACKS[sq][chess.BB_DIAG_MASKS[sq] & occ]


def legal_sans(board: chess.Board) -> list[tuple[chess.Move, str]]:
    """``[(move, san)]`` for every legal move of ``board`` (standard chess), in python-chess's order."""
    legal = list(board.legal_moves)
    turn = board.turn
    king = board.king(not turn)
    occ = board.occupied
    theirs = board.occupied_co[not turn]
    kinds = [board.piece_type_at(m.from_square) for m in legal]
    # Disambiguation: the other legal moves of the same piece kind to the same square.
    sources: dict[tuple[int, int], int] = {}
    for m, kind in zip(legal, kinds):
        if kind != chess.PAWN and kind != chess.KING:
            key = (kind, m.to_square)
            sources[key] = sources.get(key, 0) | _BB[m.from_square]
    pawns, knights, bishops, rooks, queens = (board.pieces_mask(t, turn) for t in (chess.PAWN, chess.KNIGHT, chess.BISHOP, chess.ROOK, chess.QUEEN))
    # The squares from which a knight or a pawn of the mover would attack the other king.
    knight_hits = chess.BB_KNIGHT_ATTACKS[king]
    pawn_hits = chess.BB_PAWN_ATTACKS[not turn][king]
    ep = board.ep_square
    out = []
    for m, kind in zip(legal, kinds):
        f, t = m.from_square, m.to_square
        bf, bt = _BB[f], _BB[t]
        capture = bool(theirs & bt)
        after = (occ & ~bf) | bt
        if kind == chess.KING and (f, t) in _CASTLE_ROOK:
            rf, rt = _CASTLE_ROOK[(f, t)]
            san = "O-O" if t > f else "O-O-O"
            after = (after & ~_BB[rf]) | _BB[rt]
            checks = bool(_rook_attacks(king, after) & (((rooks & ~_BB[rf]) | _BB[rt]) | queens))
        else:
            if kind == chess.PAWN:
                if t == ep and not capture and (f - t) % 8:
                    capture = True
                    after &= ~_BB[t - 8 if turn else t + 8]
                san = (_FILES[f & 7] + "x" + _NAMES[t]) if capture else _NAMES[t]
                if m.promotion:
                    san += _PROMO[m.promotion]
            else:
                san = _LETTER[kind]
                if kind != chess.KING:
                    others = sources[(kind, t)] & ~bf
                    if others:
                        file_clash = others & chess.BB_FILES[f & 7]
                        if others & chess.BB_RANKS[f >> 3] or not file_clash:
                            san += _FILES[f & 7]
                        if file_clash:
                            san += _RANKS[f >> 3]
                san += ("x" + _NAMES[t]) if capture else _NAMES[t]
            placed = m.promotion or kind
            keep = ~bf
            p_ = (pawns & keep) | (bt if placed == chess.PAWN else 0)
            n_ = (knights & keep) | (bt if placed == chess.KNIGHT else 0)
            b_ = (bishops & keep) | (bt if placed == chess.BISHOP else 0)
            r_ = (rooks & keep) | (bt if placed == chess.ROOK else 0)
            q_ = (queens & keep) | (bt if placed == chess.QUEEN else 0)
            checks = bool(
                (knight_hits & n_)
                or (pawn_hits & p_)
                or (_rook_attacks(king, after) & (r_ | q_))
                or (_bishop_attacks(king, after) & (b_ | q_))
            )
        if checks:
            board.push(m)
            try:
                san += "+" if any(board.generate_legal_moves()) else "#"
            finally:
                board.pop()
        out.append((m, san))
    return out
