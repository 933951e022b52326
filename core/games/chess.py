"""Chess rules for BoardLens: python-chess underneath, batched records on top.

python-chess (``chess.Board``) decides every rule: legal moves, castling, en passant, promotion,
check. What this module adds is speed and shape: a batch of games is played or replayed once, and
each position is recorded as a few 64-bit bitboards (python ints) that numpy unpacks for all
positions at once at the end, instead of building a board array per position in Python. Legal move
lists are kept flat (one row per legal move, with the index of its position), so the trainer can
turn them into next-token masks with array operations.

Conventions:
- square index = python-chess's (``chess.SQUARES``: a1 = 0, b1 = 1, ..., h8 = 63); drawn with rank 1
  at the bottom, so row = rank and column = file, exactly as Othello's row * size + col;
- board values: 0 empty, +1..+6 white pawn, knight, bishop, rook, queen, king (python-chess piece
  types), -1..-6 the black pieces; the 13 classes of a probe are ``value + 6``;
- a move is one int: ``from + 64 * to + 4096 * promotion`` (promotion = python-chess piece type 2..5,
  0 for none); a game is a row of move ints padded with -1;
- a game ends at checkmate, stalemate, insufficient material, the fifty-move rule (100 half-moves
  without capture or pawn move) or the third occurrence of a position (threefold repetition):
  a random player is taken to claim every draw it can, the moment it can.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

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


# -- moves as ints -------------------------------------------------------------------------------


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


# -- records ----------------------------------------------------------------------------------


@dataclass
class Replay:
    """Everything recorded about a batch of (possibly partial) games.

    ``n`` games, ``T`` = moves per row. Entries after a game's last move repeat the final board
    and are 0 / False elsewhere. Legal moves are flat: ``legal_moves[k]`` is a legal move of
    position ``legal_pos[k]``, where position ``g * (T + 1) + t`` is game ``g`` before its move ``t``
    (``t = T``: after the last move of the row).
    """

    boards: np.ndarray  # int8 (n, T, 8, 8): board after move t (signed piece types)
    mover: np.ndarray  # int8 (n, T): +1 white / -1 black, who played move t; 0 after the end
    next_player: np.ndarray  # int8 (n, T): who moves after move t; 0 = game over (or row ended there)
    lengths: np.ndarray  # int (n,)
    termination: np.ndarray  # int8 (n,): index into TERMINATIONS; 0 = not over
    check: np.ndarray  # bool (n, T): the side to move after move t is in check
    legal_pos: np.ndarray  # int64 (K,)
    legal_moves: np.ndarray  # int64 (K,)
    halfmove_clock: np.ndarray  # int16 (n, T)

    @property
    def n_games(self) -> int:
        return self.boards.shape[0]

    @property
    def size(self) -> int:
        return 8

    def legal_lists(self, game: int) -> list[list[int]]:
        """Per position of one game (before move 0 .. after move T-1): its legal move ints."""
        T = self.boards.shape[1]
        lo, hi = game * (T + 1), (game + 1) * (T + 1)
        sel = (self.legal_pos >= lo) & (self.legal_pos < hi)
        out: list[list[int]] = [[] for _ in range(T + 1)]
        for p, m in zip(self.legal_pos[sel] - lo, self.legal_moves[sel]):
            out[int(p)].append(int(m))
        return out

    def legal_from(self) -> np.ndarray:
        """``bool (n, T + 1, 64)``: squares a legal move starts from, per position."""
        n, T = self.boards.shape[:2]
        out = np.zeros((n * (T + 1), 64), dtype=bool)
        out[self.legal_pos, self.legal_moves % 64] = True
        return out.reshape(n, T + 1, 64)


def _unpack_boards(bits: np.ndarray) -> np.ndarray:
    """``uint64 (..., 7)`` bitboards -> ``int8 (..., 8, 8)`` signed piece types."""
    as_bytes = np.ascontiguousarray(bits, dtype="<u8").view(np.uint8).reshape(*bits.shape, 8)
    planes = np.unpackbits(as_bytes, axis=-1, bitorder="little").astype(np.int8)  # (..., 7, 64)
    kinds = planes[..., :6, :]
    piece = (kinds * np.arange(1, 7, dtype=np.int8)[:, None]).sum(axis=-2, dtype=np.int8)
    sign = np.where(planes[..., 6, :] == 1, 1, -1).astype(np.int8)
    return (piece * sign).reshape(*bits.shape[:-1], 8, 8)


def _bitboards(board: chess.Board) -> tuple[int, ...]:
    return (board.pawns, board.knights, board.bishops, board.rooks, board.queens, board.kings, board.occupied_co[chess.WHITE])


def _termination(board: chess.Board, has_moves: bool, seen: dict, key) -> int:
    """Why the game is over in ``board`` (an index into TERMINATIONS), 0 if it goes on."""
    if not has_moves:
        return 1 if board.is_check() else 2
    if board.is_insufficient_material():
        return 3
    if board.halfmove_clock >= 100:
        return 4
    if seen.get(key, 0) >= 3:
        return 5
    return 0


def _run(n: int, max_moves: int, games: np.ndarray | None, uniforms: np.ndarray | None) -> tuple[np.ndarray, Replay]:
    """Play (``uniforms`` given) or replay (``games`` given) ``n`` games of at most ``max_moves``."""
    T = max_moves
    bits = np.zeros((n, T, _BOARD_FIELDS), dtype=np.uint64)
    mover = np.zeros((n, T), dtype=np.int8)
    next_player = np.zeros((n, T), dtype=np.int8)
    check = np.zeros((n, T), dtype=bool)
    clock = np.zeros((n, T), dtype=np.int16)
    lengths = np.zeros(n, dtype=np.int64)
    termination = np.zeros(n, dtype=np.int8)
    played = np.full((n, T), -1, dtype=np.int32)
    legal_pos: list[int] = []
    legal_moves: list[int] = []
    start = _bitboards(chess.Board())
    for g in range(n):
        board = chess.Board()
        seen: dict = {}
        key = board._transposition_key()
        seen[key] = 1
        pos_base = g * (T + 1)
        t = 0
        while True:
            moves = [m.from_square + 64 * m.to_square + 4096 * (m.promotion or 0) for m in board.generate_legal_moves()]
            ended = _termination(board, bool(moves), seen, key) if t > 0 else 0
            if ended:
                termination[g] = ended
                break
            legal_pos.extend([pos_base + t] * len(moves))
            legal_moves.extend(moves)
            if t == T:
                break
            if games is not None:
                code = int(games[g, t])
                if code < 0:
                    break
                if code not in moves:
                    raise MoveError(g, t, _why_illegal(board, code))
            else:
                code = moves[int(uniforms[g, t] * len(moves))]
            move = chess.Move(code % 64, (code // 64) % 64, (code // 4096) or None)
            mover[g, t] = WHITE if board.turn else BLACK
            board.push(move)
            played[g, t] = code
            bits[g, t] = _bitboards(board)
            check[g, t] = board.is_check()
            clock[g, t] = board.halfmove_clock
            next_player[g, t] = WHITE if board.turn else BLACK
            key = board._transposition_key()
            seen[key] = seen.get(key, 0) + 1
            t += 1
        lengths[g] = t
        if games is not None and termination[g] and t < T and games[g, t] >= 0:
            raise MoveError(g, t, f"{_safe_uci(int(games[g, t]))} follows the end of the game ({TERMINATIONS[termination[g]]})")
        if t > 0:
            if termination[g]:
                next_player[g, t - 1] = 0
            bits[g, t:] = bits[g, t - 1]
            clock[g, t:] = clock[g, t - 1]
        else:
            bits[g, :] = start
    if games is not None:
        pads = games < 0
        after_pad = ~pads & ~np.cumprod(~pads, axis=1).astype(bool)
        if after_pad.any():
            g, t = np.argwhere(after_pad)[0]
            raise MoveError(int(g), int(t), f"move {_safe_uci(int(games[g, t]))} follows the end of the game (-1)")
    rep = Replay(
        boards=_unpack_boards(bits),
        mover=mover,
        next_player=next_player,
        lengths=lengths,
        termination=termination,
        check=check,
        legal_pos=np.asarray(legal_pos, dtype=np.int64),
        legal_moves=np.asarray(legal_moves, dtype=np.int64),
        halfmove_clock=clock,
    )
    return played, rep


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


def random_games(n: int, max_moves: int = 128, seed: int = 0) -> np.ndarray:
    """``n`` games of uniformly random legal moves: ``int32 (n, max_moves)``, -1 after the end.

    Row ``i`` depends only on ``(seed, i)``: the same seed gives the same games in any batch size.
    """
    uniforms = np.random.default_rng(seed).random((n, max_moves))
    games, _ = _run(n, max_moves, None, uniforms)
    return games


def random_games_with_replay(n: int, max_moves: int = 128, seed: int = 0) -> tuple[np.ndarray, Replay]:
    """Like ``random_games``, with the records of playing them (no second pass)."""
    uniforms = np.random.default_rng(seed).random((n, max_moves))
    return _run(n, max_moves, None, uniforms)


def replay(games: np.ndarray) -> Replay:
    """Replay games of move ints (rows padded with -1) and record every position.

    Raises ``MoveError`` naming the game and move if a move is illegal or follows the end.
    """
    games = np.asarray(games)
    if games.ndim == 1:
        games = games[None, :]
    if games.ndim != 2:
        raise ValueError(f"games must be a 2-d array (n_games, n_moves), got shape {games.shape}")
    _, rep = _run(games.shape[0], games.shape[1], games.astype(np.int64), None)
    return rep


# -- text --------------------------------------------------------------------------------------

_UCI = re.compile(r"([a-h][1-8])([a-h][1-8])([qrbnQRBN](?![1-8]))?")
_MOVE_NUMBER = re.compile(r"^\d+\.+")
_RESULTS = {"1-0", "0-1", "1/2-1/2", "*", "½-½"}


def parse_moves(text: str, prefix: tuple[int, ...] = ()) -> list[int]:
    """Read moves after ``prefix``: UCI (``e2e4 e7e5``, ``e2e4e7e5``, ``e7e8q``), SAN (``Nf3``),
    or a PGN move list (``1. e4 e5 2. Nf3``; comments, NAGs and the result are skipped).

    Raises ``ValueError`` with the move number and the reason for the first move that cannot be
    read or played.
    """
    board = board_after(prefix)
    text = re.sub(r"\{[^}]*\}|\([^)]*\)|\$\d+", " ", text.replace(",", " ").replace(";", " "))
    out: list[int] = []
    for word in text.split():
        word = _MOVE_NUMBER.sub("", word)
        if not word or word in _RESULTS:
            continue
        for piece in _split_word(word):
            number = len(prefix) + len(out) + 1
            try:
                move = _read_move(board, piece)
            except ValueError as exc:
                raise ValueError(f"move {number} ({piece!r}): {exc}") from None
            out.append(encode_move(move))
            board.push(move)
    return out


def _split_word(word: str) -> list[str]:
    """``e2e4e7e5`` -> ``["e2e4", "e7e5"]``; anything else stays one word (SAN)."""
    if re.fullmatch(r"(?:[a-h][1-8][a-h][1-8][qrbnQRBN]?)+", word):
        return [m.group(0) for m in _UCI.finditer(word)]
    return [word]


def _read_move(board: chess.Board, word: str) -> chess.Move:
    if board.is_game_over(claim_draw=False) or _claimed(board):
        raise ValueError("the game is already over")
    if _UCI.fullmatch(word):
        move = chess.Move.from_uci(word.lower())
        if move not in board.legal_moves:
            raise ValueError(_why_illegal(board, encode_move(move)))
        return move
    try:
        return board.parse_san(word)
    except chess.IllegalMoveError:
        raise ValueError(f"{word} is not legal here ({'white' if board.turn else 'black'} to move)") from None
    except chess.AmbiguousMoveError:
        raise ValueError(f"{word} is ambiguous: say which piece (e.g. Nbd2) or use UCI (b1d2)") from None
    except (chess.InvalidMoveError, ValueError):
        raise ValueError(f"{word} is not a move: use UCI like e2e4 or SAN like Nf3") from None


def _claimed(board: chess.Board) -> bool:
    """Draws this module ends a game at that python-chess leaves to a claim."""
    return board.halfmove_clock >= 100 or board.is_repetition(3)


def board_after(moves: tuple[int, ...] | list[int]) -> chess.Board:
    board = chess.Board()
    for code in moves:
        board.push(decode_move(code))
    return board


def san_moves(moves: tuple[int, ...] | list[int]) -> list[str]:
    board = chess.Board()
    out = []
    for code in moves:
        move = decode_move(code)
        out.append(board.san(move))
        board.push(move)
    return out


def format_pgn(moves: tuple[int, ...] | list[int]) -> str:
    """``1. e4 e5 2. Nf3`` for the moves."""
    parts = []
    for i, san in enumerate(san_moves(moves)):
        parts.append(f"{i // 2 + 1}. {san}" if i % 2 == 0 else san)
    return " ".join(parts)
