"""One interactive game: the state after a list of moves, and why a move is or is not legal."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from core.games.othello import engine as othello
from core.games.base import GameState as BaseState
from core.games.base import IllegalMoveError

__all__ = ["GameState", "IllegalMoveError", "game_state", "explain_illegal", "play"]


@dataclass(frozen=True)
class GameState(BaseState):
    size: int
    moves: tuple[int, ...]
    board: np.ndarray  # int8 (size, size)
    to_move: int  # +1 black, -1 white, 0 game over
    legal: np.ndarray  # bool (size*size,) legal squares for ``to_move``
    passed: int  # the side that had to pass just before ``to_move`` moves (0 if none)
    replay: othello.Replay | None  # engine record of the moves (None before the first move)

    @property
    def is_over(self) -> bool:
        return self.to_move == 0

    @property
    def legal_moves(self) -> tuple[int, ...]:
        return tuple(int(s) for s in np.flatnonzero(self.legal))

    @property
    def last_squares(self) -> tuple[int, ...]:
        return (self.moves[-1],) if self.moves else ()

    @property
    def mover(self) -> int:
        """Who played the last move (+1 black, -1 white; 0 before the first)."""
        if not self.moves:
            return 0
        return int(self.replay.mover[0, len(self.moves) - 1])

    @property
    def score(self) -> tuple[int, int]:
        """(black pieces, white pieces)."""
        return int((self.board == othello.BLACK).sum()), int((self.board == othello.WHITE).sum())

    def status(self) -> str:
        black, white = self.score
        if self.is_over:
            if black == white:
                result = "draw"
            else:
                result = ("black" if black > white else "white") + " wins"
            return f"Game over: black {black} – white {white} ({result})."
        side = "Black" if self.to_move == othello.BLACK else "White"
        note = f" ({'black' if self.passed == othello.BLACK else 'white'} has no legal move and passes)" if self.passed else ""
        return f"{side} to move{note}. Black {black} – white {white}."


def game_state(moves: list[int] | tuple[int, ...], size: int = 8) -> GameState:
    """State after ``moves`` (square indices). Raises ``IllegalMoveError`` naming the bad move."""
    moves = tuple(int(m) for m in moves)
    if len(moves) > size * size - 4:
        raise IllegalMoveError(f"a {size}x{size} game has at most {size * size - 4} moves, got {len(moves)}")
    if not moves:
        return GameState(size, (), othello.initial_board(size), othello.BLACK, _start_legal(size), 0, None)
    try:
        rep = othello.replay(np.array([moves]), size)
    except othello.MoveError as exc:
        prefix = game_state(moves[: exc.move], size)
        raise IllegalMoveError(f"move {exc.move + 1}: {explain_illegal(prefix, moves[exc.move])}") from exc
    t = len(moves) - 1
    to_move = int(rep.next_player[0, t])
    mover = int(rep.mover[0, t])
    passed = -to_move if to_move != 0 and to_move == mover else 0
    return GameState(size, moves, rep.boards[0, t], to_move, rep.legal_next[0, t], passed, rep)


def _start_legal(size: int) -> np.ndarray:
    return othello.replay(np.full((1, 1), -1), size).start_legal


def explain_illegal(state: GameState, square: int) -> str:
    """Why ``square`` cannot be played in ``state`` (or that it can)."""
    size = state.size
    if not 0 <= square < size * size:
        return f"square {square} is off the {size}x{size} board"
    label = othello.square_to_label(square, size)
    if state.is_over:
        return f"{label}: the game is over"
    if state.legal[square]:
        return f"{label} is legal"
    side = "black" if state.to_move == othello.BLACK else "white"
    if state.board.flat[square] != 0:
        return f"{label} is already occupied"
    legal = othello.format_moves(np.flatnonzero(state.legal), size, ", ")
    return f"{label} does not outflank any piece, so {side} cannot play there (legal: {legal})"


def play(state: GameState, square: int) -> GameState:
    """The state after the side to move plays ``square``."""
    if not (0 <= square < state.size**2) or state.is_over or not state.legal[square]:
        raise IllegalMoveError(explain_illegal(state, square))
    return game_state(state.moves + (square,), state.size)
