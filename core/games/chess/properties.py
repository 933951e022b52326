"""Chess facts beyond the pieces, for every recorded position at once: castling rights, a legal
en passant capture, pinned pieces (Karvonen et al.'s board-state properties).

They are read from a ``Replay``'s arrays (the boards after each move and the legal-move groups),
not by replaying with python-chess: a batch of 300 games is ~30k positions, and python-chess
would cost a Python loop per position. ``tests/test_chess_properties.py`` checks every one against
python-chess on random games.
"""

from __future__ import annotations

import numpy as np

from core.games.chess.records import Replay

PAWN, BISHOP, ROOK, QUEEN, KING = 1, 3, 4, 5, 6
ORTHOGONAL = ((0, 1), (0, -1), (1, 0), (-1, 0))
DIAGONAL = ((1, 1), (1, -1), (-1, 1), (-1, -1))


def castling_rights(rep: Replay) -> np.ndarray:
    """``bool (n, T, 4)``: after move t, White kingside, White queenside, Black kingside, Black
    queenside rights. A right lasts while its king and rook have stood on their first squares
    after every move so far (a king or rook that moves, or a rook that is taken, loses it; a
    castling moves the king)."""
    b = rep.boards.reshape(*rep.boards.shape[:2], 64)
    home = np.stack([
        (b[..., 4] == KING) & (b[..., 7] == ROOK), (b[..., 4] == KING) & (b[..., 0] == ROOK),
        (b[..., 60] == -KING) & (b[..., 63] == -ROOK), (b[..., 60] == -KING) & (b[..., 56] == -ROOK),
    ], axis=-1)
    rights = np.logical_and.accumulate(home, axis=1)
    return rights & (rep.mover != 0)[..., None]


def side_to_move_castling(rep: Replay) -> np.ndarray:
    """``bool (n, T, 2)``: kingside and queenside rights of the side to move after move t."""
    rights = castling_rights(rep)
    white_next = (rep.next_player == 1)[..., None]
    return np.where(white_next, rights[..., :2], rights[..., 2:]) & (rep.next_player != 0)[..., None]


def en_passant_legal(rep: Replay) -> np.ndarray:
    """``bool (n, T)``: after move t the side to move has a legal en passant capture (move t
    pushed a pawn two squares, and a pawn of the other side may legally take it in passing)."""
    n, T = rep.mover.shape
    b = rep.boards.reshape(n, T, 8, 8).astype(np.int8)
    before = np.concatenate([np.broadcast_to(_initial_board(), (n, 1, 8, 8)), b[:, :-1]], axis=1)
    mover = rep.mover[..., None].astype(np.int8)
    # White pushed from rank 2 to 4 (rows 1 -> 3), Black from 7 to 5 (rows 6 -> 4), on one file.
    white = (before[:, :, 1] == PAWN) & (b[:, :, 1] == 0) & (b[:, :, 3] == PAWN) & (before[:, :, 3] == 0) & (before[:, :, 2] == 0) & (mover == 1)
    black = (before[:, :, 6] == -PAWN) & (b[:, :, 6] == 0) & (b[:, :, 4] == -PAWN) & (before[:, :, 4] == 0) & (before[:, :, 5] == 0) & (mover == -1)
    pushed = white | black  # (n, T, 8 files)
    g, t, f = np.nonzero(pushed)
    target = np.where(mover[g, t, 0] == 1, 16 + f, 40 + f)  # the square passed over
    out = np.zeros((n, T), dtype=bool)
    if not len(g):
        return out
    # Legal-move groups of the position after move t (index g * (T + 1) + t + 1): a pawn of the
    # side to move whose destinations hold the passed square takes en passant (it is empty, so
    # no other pawn move goes there).
    wanted = {(int(gi) * (T + 1) + int(ti) + 1): (int(gi), int(ti), int(sq)) for gi, ti, sq in zip(g, t, target)}
    pos = rep.group_pos
    hit = np.isin(pos, np.fromiter(wanted, dtype=np.int64))
    for k in np.nonzero(hit)[0]:
        gi, ti, sq = wanted[int(pos[k])]
        frm = int(rep.group_from[k])
        if abs(int(b[gi, ti, frm // 8, frm % 8])) == PAWN and (int(rep.group_to[k]) >> sq) & 1:
            out[gi, ti] = True
    return out


def _initial_board() -> np.ndarray:
    row = np.array([ROOK, 2, BISHOP, QUEEN, KING, BISHOP, 2, ROOK], dtype=np.int8)
    board = np.zeros((8, 8), dtype=np.int8)
    board[0], board[1], board[6], board[7] = row, PAWN, -PAWN, -row
    return board


def _rays() -> tuple[np.ndarray, np.ndarray]:
    """``squares (64, 8, 7)`` along each direction from each square (-1 past the edge), and
    whether each direction is diagonal ``(8,)``."""
    dirs = ORTHOGONAL + DIAGONAL
    out = np.full((64, 8, 7), -1, dtype=np.int64)
    for s in range(64):
        r0, c0 = divmod(s, 8)
        for d, (dr, dc) in enumerate(dirs):
            for k in range(7):
                r, c = r0 + dr * (k + 1), c0 + dc * (k + 1)
                if not (0 <= r < 8 and 0 <= c < 8):
                    break
                out[s, d, k] = r * 8 + c
    return out, np.array([False] * 4 + [True] * 4)


RAYS, RAY_DIAGONAL = _rays()


def pinned_pieces(boards: np.ndarray) -> np.ndarray:
    """``bool (N, 64)``: the pieces pinned to their own king (either side) on boards ``(N, 64)``
    of signed piece types: the first piece from the king along a line is its own, and the next is
    an enemy rook or queen (along a rank or file) or bishop or queen (along a diagonal)."""
    boards = np.asarray(boards).reshape(-1, 64)
    out = np.zeros(boards.shape, dtype=bool)
    for side in (1, -1):
        has_king = (boards == side * KING).any(1)
        king = np.argmax(boards == side * KING, axis=1)
        rays = RAYS[king]  # (N, 8, 7)
        vals = np.where(rays >= 0, np.take_along_axis(boards[:, None, :].repeat(8, 1), np.maximum(rays, 0), axis=2), 0)
        occupied = vals != 0
        count = np.cumsum(occupied, axis=2)
        first = np.argmax(occupied & (count == 1), axis=2)  # (N, 8)
        second = np.argmax(occupied & (count == 2), axis=2)
        has_two = count[..., -1] >= 2
        v1 = np.take_along_axis(vals, first[..., None], 2)[..., 0] * side  # > 0: own piece
        v2 = np.take_along_axis(vals, second[..., None], 2)[..., 0] * -side  # > 0: enemy piece
        slider = np.where(RAY_DIAGONAL[None, :], (v2 == BISHOP) | (v2 == QUEEN), (v2 == ROOK) | (v2 == QUEEN))
        pin = has_king[:, None] & has_two & (v1 > 0) & slider
        rows, dirs = np.nonzero(pin)
        out[rows, rays[rows, dirs, first[rows, dirs]]] = True
    return out
