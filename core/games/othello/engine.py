"""Vectorised Othello engine for square boards of even size up to 8.

Every game of a batch is held as two 64-bit bitboards (black, white) in numpy ``uint64`` arrays,
so one array operation advances thousands of games at once; nothing loops over squares in Python.
Bit ``r * size + c`` is the square at row ``r``, column ``c`` (DESIGN.md §3: square index =
row * size + col). Sizes above 8 do not fit one 64-bit word and are rejected with a clear error.

Conventions (compatible with the published Othello-GPT):
- board values: +1 black, -1 white, 0 empty; black moves first;
- a side with no legal move passes (no move is recorded); the game ends when neither side can move;
- a game is a row of square indices, padded with -1 after it ends (or after the last known move).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from core.games.base import MoveError as BaseMoveError

BLACK, WHITE, EMPTY = 1, -1, 0
_DIRECTIONS = [(-1, -1), (-1, 0), (-1, 1), (0, -1), (0, 1), (1, -1), (1, 0), (1, 1)]
MAX_SIZE = 8


class MoveError(BaseMoveError):
    """A move ``replay`` cannot accept; ``game`` and ``move`` index the offending entry."""


def check_size(size: int) -> None:
    """Raise ``ValueError`` unless ``size`` is an even board size the engine supports."""
    if not isinstance(size, (int, np.integer)) or size < 4 or size % 2 or size > MAX_SIZE:
        raise ValueError(f"board size must be an even number from 4 to {MAX_SIZE}, got {size!r}")


@dataclass(frozen=True)
class _Geometry:
    """Bit masks for one board size: the board itself and, per direction, the legal targets."""

    size: int
    full: np.uint64
    shifts: tuple[tuple[int, np.uint64], ...]  # (signed shift in bits, mask applied after it)
    bit_values: np.ndarray  # uint64 (size*size,): 1 << i


@lru_cache(maxsize=None)
def _geometry(size: int) -> _Geometry:
    check_size(size)
    n_sq = size * size
    full = np.uint64((1 << n_sq) - 1)
    col0 = sum(1 << (r * size) for r in range(size))
    col_last = sum(1 << (r * size + size - 1) for r in range(size))
    shifts = []
    for dr, dc in _DIRECTIONS:
        mask = int(full)
        if dc == 1:  # moving right: anything landing in column 0 wrapped around
            mask &= ~col0
        if dc == -1:
            mask &= ~col_last
        shifts.append((dr * size + dc, np.uint64(mask)))
    bit_values = np.left_shift(np.uint64(1), np.arange(n_sq, dtype=np.uint64))
    return _Geometry(size, full, tuple(shifts), bit_values)


def _shift(x: np.ndarray, amount: int, mask: np.uint64) -> np.ndarray:
    if amount > 0:
        return np.left_shift(x, np.uint64(amount)) & mask
    return np.right_shift(x, np.uint64(-amount)) & mask


def _legal_bits(own: np.ndarray, opp: np.ndarray, geo: _Geometry) -> np.ndarray:
    """Bitboard of empty squares where ``own`` may play: they flank a run of ``opp`` pieces."""
    empty = ~(own | opp) & geo.full
    legal = np.zeros_like(own)
    for amount, mask in geo.shifts:
        run = _shift(own, amount, mask) & opp
        for _ in range(geo.size - 3):
            run |= _shift(run, amount, mask) & opp
        legal |= _shift(run, amount, mask) & empty
    return legal


def _flip_bits(move: np.ndarray, own: np.ndarray, opp: np.ndarray, geo: _Geometry) -> np.ndarray:
    """Bitboard of ``opp`` pieces captured by ``own`` playing the one-bit ``move``."""
    flips = np.zeros_like(own)
    for amount, mask in geo.shifts:
        run = _shift(move, amount, mask) & opp
        for _ in range(geo.size - 3):
            run |= _shift(run, amount, mask) & opp
        closed = (_shift(run, amount, mask) & own) != 0
        flips |= np.where(closed, run, np.uint64(0))
    return flips


def _unpack(bits: np.ndarray, geo: _Geometry) -> np.ndarray:
    """``uint64 (...)`` -> ``bool (..., size*size)`` (bit i -> entry i)."""
    as_bytes = np.ascontiguousarray(bits, dtype="<u8").view(np.uint8).reshape(*bits.shape, 8)
    return np.unpackbits(as_bytes, axis=-1, bitorder="little")[..., : geo.size * geo.size].view(bool)


def _start_position(n: int, geo: _Geometry) -> tuple[np.ndarray, np.ndarray]:
    s = geo.size
    h = s // 2
    # Standard start: white on the main diagonal of the centre, black on the other one.
    white = (1 << ((h - 1) * s + h - 1)) | (1 << (h * s + h))
    black = (1 << ((h - 1) * s + h)) | (1 << (h * s + h - 1))
    return np.full(n, black, dtype=np.uint64), np.full(n, white, dtype=np.uint64)


def initial_board(size: int = 8) -> np.ndarray:
    """The starting position as an ``int8 (size, size)`` board."""
    geo = _geometry(size)
    black, white = _start_position(1, geo)
    return _to_board(black, white, geo)[0]


def _to_board(black: np.ndarray, white: np.ndarray, geo: _Geometry) -> np.ndarray:
    board = _unpack(black, geo).astype(np.int8) - _unpack(white, geo).astype(np.int8)
    return board.reshape(*black.shape, geo.size, geo.size)


def _pack(squares: np.ndarray, geo: _Geometry) -> np.ndarray:
    """``bool (..., size*size)`` -> ``uint64 (...)`` (entry i -> bit i)."""
    return np.bitwise_or.reduce(np.where(squares, geo.bit_values, np.uint64(0)), axis=-1)


def legal_moves(boards: np.ndarray, player: np.ndarray | int) -> np.ndarray:
    """Legal squares for ``player`` (+1 black / -1 white) on arbitrary boards.

    ``boards int8 (..., size, size)`` -> ``bool (..., size*size)``. Used for boards that no game
    reached, e.g. a board edited by an intervention.
    """
    boards = np.asarray(boards)
    size = boards.shape[-1]
    geo = _geometry(size)
    flat = boards.reshape(*boards.shape[:-2], size * size)
    player = np.broadcast_to(np.asarray(player, dtype=np.int8), flat.shape[:-1])
    own = _pack(flat == player[..., None], geo)
    opp = _pack(flat == -player[..., None], geo)
    return _unpack(np.atleast_1d(_legal_bits(own, opp, geo)), geo).reshape(flat.shape)


class _Batch:
    """Mutable state of a batch of games; the single place the rules are applied."""

    def __init__(self, n: int, geo: _Geometry):
        self.geo = geo
        self.black, self.white = _start_position(n, geo)
        self.to_move = np.full(n, BLACK, dtype=np.int8)  # 0 once the game is over
        self.legal = self._legal_for(self.to_move)

    def _own_opp(self, side: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        is_black = side == BLACK
        return np.where(is_black, self.black, self.white), np.where(is_black, self.white, self.black)

    def _legal_for(self, side: np.ndarray) -> np.ndarray:
        own, opp = self._own_opp(side)
        return np.where(side != 0, _legal_bits(own, opp, self.geo), np.uint64(0))

    def play(self, move_bits: np.ndarray, active: np.ndarray) -> np.ndarray:
        """Play one move in every ``active`` game (caller checked legality); return flipped bits.

        Afterwards ``to_move``/``legal`` describe the next side to move, passes resolved.
        """
        mover = np.where(active, self.to_move, 0).astype(np.int8)
        own, opp = self._own_opp(mover)
        flips = np.where(active, _flip_bits(move_bits, own, opp, self.geo), np.uint64(0))
        own = own | flips | np.where(active, move_bits, np.uint64(0))
        opp = opp & ~flips
        is_black = mover == BLACK
        self.black = np.where(active, np.where(is_black, own, opp), self.black)
        self.white = np.where(active, np.where(is_black, opp, own), self.white)
        # The opponent moves next; if it cannot, the mover goes again; if neither can, game over.
        nxt = np.where(active, -mover, self.to_move).astype(np.int8)
        legal = self._legal_for(nxt)
        stuck = active & (legal == 0)
        if stuck.any():
            nxt = np.where(stuck, mover, nxt).astype(np.int8)
            legal = np.where(stuck, self._legal_for(nxt), legal)
            over = stuck & (legal == 0)
            nxt = np.where(over, 0, nxt).astype(np.int8)
        self.to_move = nxt
        self.legal = legal
        return flips


def random_games(n: int, size: int = 8, seed: int = 0) -> np.ndarray:
    """``n`` games of uniformly random legal moves: ``int (n, size*size - 4)``, -1 after the end.

    Each move is drawn uniformly from the legal moves of the side to move (the "synthetic" data
    of the published Othello-GPT). Same ``seed``, same games.
    """
    geo = _geometry(size)
    n_moves = size * size - 4
    rng = np.random.default_rng(seed)
    # Uniform choice among legal squares: the legal square with the largest random key.
    return _play_random(n, geo, lambda t, legal: np.where(legal, rng.random(legal.shape, dtype=np.float32), np.float32(-1)).argmax(axis=1), n_moves)


def games_from_uniforms(uniforms: np.ndarray, size: int = 8) -> np.ndarray:
    """Random games driven by one number in [0, 1) per game and move: ``uniforms (n, size*size - 4)``.

    Move t of game g is the ``floor(u * n_legal)``-th legal square of ``uniforms[g, t]`` (squares in
    index order), so a game depends on its own row only: the trainer seeds each row by the game's
    place in the global batch, and any split of a batch over ranks or workers gives the same games.
    """
    geo = _geometry(size)
    n_moves = size * size - 4
    uniforms = np.asarray(uniforms, dtype=np.float64)
    if uniforms.ndim != 2 or uniforms.shape[1] < n_moves:
        raise ValueError(f"uniforms must be (n_games, >= {n_moves}), got {uniforms.shape}")

    def pick(t: int, legal: np.ndarray) -> np.ndarray:
        count = legal.sum(axis=1)
        k = np.minimum((uniforms[:, t] * count).astype(np.int64), np.maximum(count - 1, 0))
        return (np.cumsum(legal, axis=1) > k[:, None]).argmax(axis=1)

    return _play_random(len(uniforms), geo, pick, n_moves)


def _play_random(n: int, geo: _Geometry, pick, n_moves: int) -> np.ndarray:
    """Play ``n`` games where ``pick(t, legal (n, squares)) -> square (n,)`` chooses each move."""
    games = np.full((n, n_moves), -1, dtype=np.int16)
    batch = _Batch(n, geo)
    for t in range(n_moves):
        active = batch.to_move != 0
        if not active.any():
            break
        choice = pick(t, _unpack(batch.legal, geo))
        games[:, t] = np.where(active, choice, -1)
        batch.play(np.where(active, geo.bit_values[choice], np.uint64(0)), active)
    return games


@dataclass
class Replay:
    """Everything the engine knows about a batch of (possibly partial) games.

    Shapes: ``n`` games, ``T`` = moves per row of the input. Entries after a game's last move
    repeat the final state (``boards``) or are zero/False (``mover``, ``legal_next``, ``flipped``).
    """

    size: int
    boards: np.ndarray  # int8 (n, T, size, size): board after move t
    mover: np.ndarray  # int8 (n, T): +1/-1, who played move t; 0 after the end
    next_player: np.ndarray  # int8 (n, T): who moves after move t (passes resolved); 0 = game over
    legal_next: np.ndarray  # bool (n, T, size*size): legal moves of next_player after move t
    flipped: np.ndarray  # bool (n, T, size*size): pieces flipped by move t
    lengths: np.ndarray  # int (n,): number of moves in each game
    start_legal: np.ndarray  # bool (size*size,): legal moves before the first move

    @property
    def n_games(self) -> int:
        return self.boards.shape[0]


def replay(games: np.ndarray, size: int = 8) -> Replay:
    """Replay games of square indices (rows padded with -1) and record every state.

    Raises ``ValueError`` naming the game and the move if a move is illegal, off the board, or
    follows a -1 pad.
    """
    geo = _geometry(size)
    games = np.asarray(games)
    if games.ndim == 1:
        games = games[None, :]
    if games.ndim != 2:
        raise ValueError(f"games must be a 2-d array (n_games, n_moves), got shape {games.shape}")
    n, T = games.shape
    n_sq = size * size
    if ((games < -1) | (games >= n_sq)).any():
        g, t = np.argwhere((games < -1) | (games >= n_sq))[0]
        raise MoveError(int(g), int(t), f"{games[g, t]} is not a square of a {size}x{size} board")
    played = games >= 0
    after_pad = played & ~np.cumprod(played, axis=1).astype(bool)
    if after_pad.any():
        g, t = np.argwhere(after_pad)[0]
        raise MoveError(int(g), int(t), f"move {square_to_label(int(games[g, t]), size)} follows the end of the game (-1)")

    # Record bitboards per step and unpack them all at once at the end: unpacking is the cost.
    black = np.empty((n, T), dtype=np.uint64)
    white = np.empty((n, T), dtype=np.uint64)
    legal_bits = np.empty((n, T), dtype=np.uint64)
    flip_bits = np.empty((n, T), dtype=np.uint64)
    mover = np.zeros((n, T), dtype=np.int8)
    next_player = np.zeros((n, T), dtype=np.int8)
    batch = _Batch(n, geo)
    start_legal = _unpack(batch.legal[:1], geo)[0]
    for t in range(T):
        active = played[:, t]
        squares = np.where(active, games[:, t], 0)
        move_bits = np.where(active, geo.bit_values[squares], np.uint64(0))
        bad = active & ((batch.legal & move_bits) == 0)
        if bad.any():
            g = int(np.argmax(bad))
            who = {BLACK: "black", WHITE: "white", 0: "nobody (the game is over)"}[int(batch.to_move[g])]
            raise MoveError(g, t, f"{square_to_label(int(games[g, t]), size)} is not legal for {who}")
        mover[:, t] = np.where(active, batch.to_move, 0)
        flip_bits[:, t] = batch.play(move_bits, active)
        black[:, t], white[:, t] = batch.black, batch.white
        next_player[:, t] = np.where(active, batch.to_move, 0)
        legal_bits[:, t] = np.where(active, batch.legal, np.uint64(0))
    boards = _to_board(black, white, geo)
    return Replay(size, boards, mover, next_player, _unpack(legal_bits, geo), _unpack(flip_bits, geo), played.sum(axis=1), start_legal)


# ----------------------------------------------------------------------------------------------
# Square index <-> model token <-> label. The only place these conversions live.


def _centre(size: int) -> set[int]:
    h = size // 2
    return {(h - 1) * size + h - 1, (h - 1) * size + h, h * size + h - 1, h * size + h}


@lru_cache(maxsize=None)
def _token_tables(size: int) -> tuple[np.ndarray, np.ndarray]:
    """(square -> token, token -> square); centre squares map to token 0 (pad), never used."""
    check_size(size)
    centre = _centre(size)
    sq_to_tok = np.zeros(size * size, dtype=np.int64)
    tok_to_sq = np.full(size * size - 3, -1, dtype=np.int64)
    tok = 1
    for sq in range(size * size):
        if sq in centre:
            continue
        sq_to_tok[sq] = tok
        tok_to_sq[tok] = sq
        tok += 1
    return sq_to_tok, tok_to_sq


def vocab_size(size: int) -> int:
    """Model vocabulary: pad token 0 plus one token per non-centre square (8x8: 61)."""
    return size * size - 3


def context_length(size: int) -> int:
    """Model context: the longest game minus its last move, which is never an input (8x8: 59)."""
    return size * size - 5


def squares_to_tokens(squares: np.ndarray, size: int = 8) -> np.ndarray:
    """Square indices (any shape, -1 = pad) to model tokens (0 = pad)."""
    sq_to_tok, _ = _token_tables(size)
    squares = np.asarray(squares)
    return np.where(squares >= 0, sq_to_tok[np.clip(squares, 0, None)], 0)


def tokens_to_squares(tokens: np.ndarray, size: int = 8) -> np.ndarray:
    """Model tokens (any shape, 0 = pad) to square indices (-1 = pad)."""
    _, tok_to_sq = _token_tables(size)
    return tok_to_sq[np.asarray(tokens)]


def square_to_token(square: int, size: int = 8) -> int:
    if not 0 <= square < size * size or square in _centre(size):
        raise ValueError(f"square {square} has no token on a {size}x{size} board")
    return int(_token_tables(size)[0][square])


def token_to_square(token: int, size: int = 8) -> int:
    if not 1 <= token < vocab_size(size):
        raise ValueError(f"token {token} is not a move token (1..{vocab_size(size) - 1})")
    return int(_token_tables(size)[1][token])


def square_to_label(square: int, size: int = 8) -> str:
    """Square index to the UI label: column letter a.. then row number 1.. (``19 -> "d3"``)."""
    if not 0 <= square < size * size:
        raise ValueError(f"square {square} is off a {size}x{size} board")
    row, col = divmod(int(square), size)
    return f"{chr(ord('a') + col)}{row + 1}"


def label_to_square(label: str, size: int = 8) -> int:
    """UI label (``"d3"``, case-insensitive) to square index."""
    text = label.strip().lower()
    if len(text) < 2 or not text.isascii() or not text[0].isalpha() or not text[1:].isdigit():
        raise ValueError(f"{label!r} is not a square label like 'd3'")
    col, row = ord(text[0]) - ord("a"), int(text[1:]) - 1
    if not (0 <= col < size and 0 <= row < size):
        raise ValueError(f"{label!r} is off a {size}x{size} board")
    return row * size + col


def published_to_square(label: str, size: int = 8) -> int:
    """Published Othello-GPT label (row letter, 0-based column digit: ``"A0".."H7"``) to square."""
    text = label.strip().upper()
    if len(text) != 2 or not text.isascii() or not text[0].isalpha() or not text[1].isdigit():
        raise ValueError(f"{label!r} is not a published-style square like 'C4'")
    row, col = ord(text[0]) - ord("A"), int(text[1])
    if not (0 <= row < size and 0 <= col < size):
        raise ValueError(f"{label!r} is off a {size}x{size} board")
    return row * size + col


def parse_moves(text: str, size: int = 8, notation: str = "auto") -> list[int]:
    """Parse a move string into square indices (legality is checked later, by ``replay``).

    Accepts ``"d3 c5 f6"``, ``"d3c5f6"``, commas, and the published ``"C3 E4"`` style (row letter,
    0-based column). ``notation``: ``"label"``, ``"published"`` or ``"auto"`` (published if any
    column digit is 0, which labels never contain; otherwise labels).
    """
    if notation not in ("auto", "label", "published"):
        raise ValueError(f"unknown notation {notation!r}: use 'auto', 'label' or 'published'")
    compact = "".join(text.replace(",", " ").split())
    if not compact:
        return []
    pieces, i = [], 0
    while i < len(compact):
        j = i + 1
        while j < len(compact) and compact[j] in "0123456789":
            j += 1
        piece = compact[i:j]
        if not ("a" <= piece[0].lower() <= "z") or len(piece) < 2:
            raise ValueError(f"cannot read a move at {compact[i:i + 4]!r}: moves look like 'd3'")
        pieces.append(piece)
        i = j
    if notation == "auto":
        notation = "published" if any(p[1:] == "0" for p in pieces) else "label"
    convert = published_to_square if notation == "published" else label_to_square
    return [convert(p, size) for p in pieces]


def format_moves(squares: list[int] | np.ndarray, size: int = 8, sep: str = " ") -> str:
    """Square indices to a label string (``[19, 34] -> "d3 c5"``); -1 pads are dropped."""
    return sep.join(square_to_label(int(s), size) for s in squares if s >= 0)
