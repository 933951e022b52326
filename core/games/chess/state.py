"""One chess position as the pages hold it (``ChessState``), and the names of the classes a probe
or a property reads on a chess board."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import chess
import numpy as np

from core.games.chess import rules as C
from core.games.base import GameState


PIECE_NAMES = {0: "empty", **{v * sign: f"{colour} {chess.piece_name(v)}" for v in range(1, 7) for sign, colour in ((1, "white"), (-1, "black"))}}
PIECE_CLASSES = tuple(PIECE_NAMES[v] for v in range(-6, 7))  # probe class = board value + 6
RELATIVE_CLASSES = ("empty",) + tuple(f"mine {chess.piece_name(t)}" for t in range(1, 7)) + tuple(f"theirs {chess.piece_name(t)}" for t in range(1, 7))
FACTS = ("side to move in check", "castling: side to move kingside", "castling: side to move queenside", "castling: side to move either side",
         "legal en passant", "a pinned piece (either side)")  # one property each, after the board and the legal destinations
MAX_MOVES = 512  # longest game a state may hold (a context of 1023 characters is ~150 moves)


@dataclass(frozen=True)
class ChessState(GameState):
    moves: tuple[int, ...]
    board: np.ndarray  # int8 (8, 8): signed piece types, row = rank
    to_move: int  # +1 white, -1 black, 0 game over
    legal_moves: tuple[int, ...]
    legal: np.ndarray  # bool (64,): squares a legal move starts on
    termination: str  # "" while the game goes on
    in_check: bool

    @property
    def is_over(self) -> bool:
        return self.to_move == 0

    @property
    def size(self) -> int:
        return 8

    @property
    def mover(self) -> int:
        """Who played the last move (+1 white, -1 black; 0 before the first)."""
        if not self.moves:
            return 0
        return C.WHITE if len(self.moves) % 2 == 1 else C.BLACK

    @property
    def last_squares(self) -> tuple[int, ...]:
        if not self.moves:
            return ()
        f, t, _ = C.move_parts(self.moves[-1])
        return int(f), int(t)

    @cached_property
    def king_in_check(self) -> int | None:
        if not self.in_check:
            return None
        king = 6 * (1 if len(self.moves) % 2 == 0 else -1)
        return int(np.flatnonzero(self.board.reshape(-1) == king)[0])

    def status(self) -> str:
        side = "White" if len(self.moves) % 2 == 0 else "Black"
        if self.termination == "checkmate":
            winner = "black" if side == "White" else "white"
            return f"Game over: checkmate, {winner} wins."
        if self.is_over:
            return f"Game over: draw by {self.termination}."
        return f"{side} to move{' (check)' if self.in_check else ''}. Move {len(self.moves) // 2 + 1}."
