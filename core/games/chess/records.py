"""What every chess engine here shares: move codes, the batched ``Replay`` records and how a
position is recorded, the end-of-game rules, and the python-chess engine the others are checked
against.

``rules`` (the game's rules and text, and which engine plays a batch), ``fast``
(cozy-chess, one position at a time) and ``lockstep`` (numpy, a whole batch at once) import
this module; none of them imports another at load time.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import chess
import numpy as np

from core.games.base import MoveError as BaseMoveError

WHITE, BLACK = 1, -1


N_SQUARES = 64


PIECE_LETTERS = " PNBRQK"  # index = python-chess piece type


PROMOTIONS = (chess.QUEEN, chess.ROOK, chess.BISHOP, chess.KNIGHT)


TERMINATIONS = ("", "checkmate", "stalemate", "insufficient material", "fifty-move rule", "threefold repetition")


# The bitboards kept per position: six piece kinds and the white pieces (black = the rest).
_BOARD_FIELDS = 7


class MoveError(BaseMoveError):
    """A move ``replay`` cannot accept; ``game`` and ``move`` index the offending entry."""


def encode_move(move: chess.Move) -> int:
    return move.from_square + 64 * move.to_square + 4096 * (move.promotion or 0)


def decode_move(code: int) -> chess.Move:
    code = int(code)
    if not 0 <= code < 4096 * 6:
        raise ValueError(f"{code} is not a chess move code")
    promotion = code // 4096
    if promotion not in (0, *PROMOTIONS):
        raise ValueError(f"{code} is not a chess move code (promotion {promotion})")
    return chess.Move(code % 64, (code // 64) % 64, promotion or None)


def move_parts(codes: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Move ints (any shape) -> (from square, to square, promotion piece type or 0)."""
    codes = np.asarray(codes)
    return codes % 64, (codes // 64) % 64, codes // 4096


def square_to_label(square: int) -> str:
    if not 0 <= int(square) < 64:
        raise ValueError(f"square {square} is off the board")
    return chess.square_name(int(square))


def uci(code: int) -> str:
    return decode_move(code).uci()


@dataclass
class Replay:
    """Everything recorded about a batch of (possibly partial) games.

    ``n`` games, ``T`` = moves per row. Entries after a game's last move repeat the final board
    and are 0 / False elsewhere. Position ``g * (T + 1) + t`` is game ``g`` before its move ``t``
    (``t = T``: after the last move of the row). Legal moves are kept as *groups*, one per piece
    that can move: ``group_to[k]`` is the bitboard of the squares the piece on ``group_from[k]``
    may go to in position ``group_pos[k]``; a promoting pawn's group stands for four moves each.
    Array code turns groups into counts and masks without a Python loop per move.
    """

    boards: np.ndarray  # int8 (n, T, 8, 8): board after move t (signed piece types)
    mover: np.ndarray  # int8 (n, T): +1 white / -1 black, who played move t; 0 after the end
    next_player: np.ndarray  # int8 (n, T): who moves after move t; 0 = game over
    lengths: np.ndarray  # int (n,)
    termination: np.ndarray  # int8 (n,): index into TERMINATIONS; 0 = not over
    check: np.ndarray  # bool (n, T): the side to move after move t is in check
    halfmove_clock: np.ndarray  # int16 (n, T)
    group_pos: np.ndarray  # int64 (G,)
    group_from: np.ndarray  # int64 (G,)
    group_to: np.ndarray  # uint64 (G,)
    group_promo: np.ndarray  # bool (G,)

    @property
    def n_games(self) -> int:
        return self.boards.shape[0]

    @property
    def size(self) -> int:
        return 8

    def group_targets(self) -> tuple[np.ndarray, np.ndarray]:
        """``(group index, to-square)`` of every (group, destination) pair, in canonical order."""
        return np.nonzero(unpack_bits(self.group_to))

    @property
    def legal_pos(self) -> np.ndarray:
        return self._flat[0]

    @property
    def legal_moves(self) -> np.ndarray:
        return self._flat[1]

    @cached_property
    def _flat(self) -> tuple[np.ndarray, np.ndarray]:
        """One row per legal move: (position, move int)."""
        g, t = self.group_targets()
        promo = self.group_promo[g]
        reps = np.where(promo, len(PROMOTIONS), 1)
        g, t = np.repeat(g, reps), np.repeat(t, reps)
        piece = np.zeros(len(g), dtype=np.int64)
        starts = np.cumsum(reps) - reps
        within = np.arange(len(g)) - np.repeat(starts, reps)
        piece[np.repeat(promo, reps)] = np.asarray(sorted(PROMOTIONS))[within[np.repeat(promo, reps)]]
        return self.group_pos[g], self.group_from[g] + 64 * t + 4096 * piece

    def legal_lists(self, game: int) -> list[list[int]]:
        """Per position of one game (before move 0 .. after move T-1): its legal move ints."""
        T = self.boards.shape[1]
        lo, hi = game * (T + 1), (game + 1) * (T + 1)
        pos, moves = self._flat
        sel = (pos >= lo) & (pos < hi)
        out: list[list[int]] = [[] for _ in range(T + 1)]
        for p, m in zip(pos[sel] - lo, moves[sel]):
            out[int(p)].append(int(m))
        return out


def unpack_bits(bits: np.ndarray) -> np.ndarray:
    """``uint64 (...)`` -> ``bool (..., 64)`` (bit i -> entry i)."""
    as_bytes = np.ascontiguousarray(bits, dtype="<u8").view(np.uint8).reshape(*np.shape(bits), 8)
    return np.unpackbits(as_bytes, axis=-1, bitorder="little").view(bool)


def _unpack_boards(bits: np.ndarray) -> np.ndarray:
    """``uint64 (..., 7)`` bitboards -> ``int8 (..., 8, 8)`` signed piece types.

    Works on the unpacked 0/1 bytes in place of a bool -> int cast and a reduction over the
    piece axis (the records' slowest array step before: ~0.1 s for 200 games)."""
    as_bytes = np.ascontiguousarray(bits, dtype="<u8").view(np.uint8).reshape(*bits.shape, 8)
    planes = np.unpackbits(as_bytes, axis=-1, bitorder="little").view(np.int8)  # (..., 7, 64) of 0/1
    piece = planes[..., 0, :].copy()
    for kind in range(1, 6):
        piece += planes[..., kind, :] * np.int8(kind + 1)
    piece *= planes[..., 6, :] * np.int8(2) - np.int8(1)  # +1 white, -1 black
    return piece.reshape(*bits.shape[:-1], 8, 8)


_DARK = 0xAA55AA55AA55AA55


_LIGHT = ~_DARK & 0xFFFFFFFFFFFFFFFF


def insufficient_material(pawns: int, knights: int, bishops: int, rooks: int, queens: int, kings: int, white: int, black: int) -> bool:
    """python-chess's rule (``Board.is_insufficient_material``) on plain bitboards."""

    def side(own: int, other: int) -> bool:
        if own & (pawns | rooks | queens):
            return False
        if own & knights:
            return own.bit_count() <= 2 and not (other & ~kings & ~queens)
        if own & bishops:
            same_colour = not (bishops & _DARK) or not (bishops & _LIGHT)
            return same_colour and not pawns and not knights
        return True

    return side(white, black) and side(black, white)


def pick(groups: list[tuple[int, int, bool]], u: float, presorted: bool = False, total: int | None = None) -> int:
    """The move at fraction ``u`` of the legal moves in canonical order (from-square, then
    to-square, then promotion piece type): the same move whatever engine listed the groups.
    ``total``: the number of legal moves, when the caller counted them already."""
    if total is None:
        total = sum(bits.bit_count() * (4 if promo else 1) for _, bits, promo in groups)
    k = int(u * total)
    for frm, bits, promo in groups if presorted else sorted(groups):
        c = bits.bit_count() * (4 if promo else 1)
        if k >= c:
            k -= c
            continue
        step = 4 if promo else 1
        for _ in range(k // step):
            bits &= bits - 1
        to = (bits & -bits).bit_length() - 1
        piece = sorted(PROMOTIONS)[k % step] if promo else 0
        return frm + 64 * to + 4096 * piece
    raise ValueError("no legal move to pick")


def _bitboards(board: chess.Board) -> tuple[int, ...]:
    return (board.pawns, board.knights, board.bishops, board.rooks, board.queens, board.kings, board.occupied_co[chess.WHITE])


class _Recorder:
    """Collects per-position records of a batch (shared by both engines).

    Legal-move groups are kept as one flat list ``(from, destinations, promotes)`` after another:
    numpy reads a flat list of ints about three times faster than a list of tuples.
    """

    def __init__(self, n: int, T: int):
        self.T = T
        self.bits = np.zeros((n, T, _BOARD_FIELDS), dtype=np.uint64)
        self.mover = np.zeros((n, T), dtype=np.int8)
        self.next_player = np.zeros((n, T), dtype=np.int8)
        self.check = np.zeros((n, T), dtype=bool)
        self.clock = np.zeros((n, T), dtype=np.int16)
        self.lengths = np.zeros(n, dtype=np.int64)
        self.termination = np.zeros(n, dtype=np.int8)
        self.played = np.full((n, T), -1, dtype=np.int32)
        self.g_pos: list[int] = []
        self.groups: list[int] = []  # from, destinations, promotes (0/1), from, ...

    def legal(self, position: int, groups: list[tuple[int, int, bool]]) -> None:
        self.g_pos += [position] * len(groups)
        for group in groups:
            self.groups += group

    def finish(self, start: tuple[int, ...], groups: tuple[np.ndarray, ...] | None = None) -> Replay:
        """The records as a ``Replay``; ``groups`` = ``(position, from, destinations, promotes)``
        arrays when the engine made them as arrays, in place of the flat list."""
        for g, t in enumerate(self.lengths):
            if t > 0:
                if self.termination[g]:
                    self.next_player[g, t - 1] = 0
                self.bits[g, t:] = self.bits[g, t - 1]
                self.clock[g, t:] = self.clock[g, t - 1]
            else:
                self.bits[g, :] = start
        if groups is None:
            flat = np.fromiter(self.groups, dtype=np.uint64, count=len(self.groups)).reshape(-1, 3)
            groups = (np.asarray(self.g_pos, dtype=np.int64), flat[:, 0].astype(np.int64), flat[:, 1], flat[:, 2].astype(bool))
        return Replay(
            boards=_unpack_boards(self.bits),
            mover=self.mover,
            next_player=self.next_player,
            lengths=self.lengths,
            termination=self.termination,
            check=self.check,
            halfmove_clock=self.clock,
            group_pos=groups[0],
            group_from=groups[1],
            group_to=groups[2],
            group_promo=groups[3],
        )


def _groups_python_chess(board: chess.Board) -> list[tuple[int, int, bool]]:
    by_from: dict[int, list] = {}
    for m in board.generate_legal_moves():
        entry = by_from.setdefault(m.from_square, [0, False])
        entry[0] |= 1 << m.to_square
        entry[1] = entry[1] or m.promotion is not None
    return sorted((f, bits, promo) for f, (bits, promo) in by_from.items())


def _run_python_chess(n: int, T: int, games: np.ndarray | None, uniforms: np.ndarray | None) -> tuple[np.ndarray, Replay]:
    """The reference engine: python-chess's board, one position at a time."""
    rec = _Recorder(n, T)
    for g in range(n):
        board = chess.Board()
        seen: dict = {}
        t = 0
        while True:
            groups = _groups_python_chess(board)
            key = board._transposition_key()
            seen[key] = seen.get(key, 0) + 1
            if t > 0:
                ended = _end(not groups, board.is_check(), insufficient_material(*_bitboards(board)[:6], board.occupied_co[chess.WHITE], board.occupied_co[chess.BLACK]), board.halfmove_clock, seen[key])
                if ended:
                    rec.termination[g] = ended
                    break
            rec.legal(g * (T + 1) + t, groups)
            if t == T:
                break
            code = _next_code(games, uniforms, g, t, groups, board)
            if code < 0:
                break
            rec.mover[g, t] = WHITE if board.turn else BLACK
            board.push(chess.Move(code % 64, (code // 64) % 64, (code // 4096) or None))
            rec.played[g, t] = code
            rec.bits[g, t] = _bitboards(board)
            rec.check[g, t] = board.is_check()
            rec.clock[g, t] = board.halfmove_clock
            rec.next_player[g, t] = WHITE if board.turn else BLACK
            t += 1
        rec.lengths[g] = t
        _check_after_end(games, g, t, T, rec.termination[g])
    return rec.played, rec.finish(_bitboards(chess.Board()))


def _end(no_moves: bool, in_check: bool, insufficient: bool, halfmove_clock: int, repeats: int) -> int:
    """Why a position ends the game (an index into TERMINATIONS), 0 if it goes on."""
    if no_moves:
        return 1 if in_check else 2
    if insufficient:
        return 3
    if halfmove_clock >= 100:
        return 4
    if repeats >= 3:
        return 5
    return 0


def _next_code(games, uniforms, g: int, t: int, groups, board_for_errors) -> int:
    """The move to play: the game's own (checked) or a random pick; -1 at a pad."""
    if games is None:
        return pick(groups, float(uniforms[g, t]))
    code = int(games[g, t])
    if code < 0:
        return -1
    f, to, promo = code % 64, (code // 64) % 64, code // 4096
    for frm, bits, is_promo in groups:
        if frm == f and bits >> to & 1 and ((promo in PROMOTIONS) if is_promo else promo == 0) and 0 <= code < 4096 * 6:
            return code
    board = board_for_errors() if callable(board_for_errors) else board_for_errors
    raise MoveError(g, t, _why_illegal(board, code))


def _check_after_end(games, g: int, t: int, T: int, termination: int) -> None:
    if games is not None and termination and t < T and games[g, t] >= 0:
        raise MoveError(g, t, f"{_safe_uci(int(games[g, t]))} follows the end of the game ({TERMINATIONS[termination]})")


def _check_pads(games: np.ndarray | None) -> None:
    if games is None:
        return
    pads = games < 0
    after_pad = ~pads & ~np.cumprod(~pads, axis=1).astype(bool)
    if after_pad.any():
        g, t = np.argwhere(after_pad)[0]
        raise MoveError(int(g), int(t), f"move {_safe_uci(int(games[g, t]))} follows the end of the game (-1)")


def _safe_uci(code: int) -> str:
    try:
        return uci(code)
    except ValueError:
        return str(code)


def _why_illegal(board: chess.Board, code: int) -> str:
    try:
        move = decode_move(code)
    except ValueError as exc:
        return str(exc)
    side = "white" if board.turn else "black"
    piece = board.piece_at(move.from_square)
    if piece is None:
        return f"{move.uci()}: there is no piece on {chess.square_name(move.from_square)}"
    if piece.color != board.turn:
        return f"{move.uci()}: the piece on {chess.square_name(move.from_square)} is not {side}'s ({side} to move)"
    if board.is_pseudo_legal(move):
        return f"{move.uci()} would leave the {side} king in check"
    if move.promotion is None and piece.piece_type == chess.PAWN and chess.square_rank(move.to_square) in (0, 7):
        return f"{move.uci()}: a pawn reaching the last rank must promote (add q, r, b or n)"
    return f"{move.uci()} is not a legal move for the {chess.piece_name(piece.piece_type)} on {chess.square_name(move.from_square)}"


def board_after(moves: tuple[int, ...] | list[int]) -> chess.Board:
    board = chess.Board()
    for code in moves:
        board.push(decode_move(code))
    return board

