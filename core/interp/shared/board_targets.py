"""What a probe or a unit is scored against at every position: the board's classes for each
target (mine / theirs / empty, pieces, ...), which positions count, and a position's true classes."""

from __future__ import annotations

import numpy as np

from core.games.base import Game
from core.games.registry import as_game

# target -> class names (index = class id). "mine" = the player who made the latest move.
TARGETS: dict[str, tuple[str, ...]] = {
    "mine_theirs_empty": ("empty", "mine", "theirs"),
    "black_white_empty": ("empty", "black", "white"),
    "empty": ("occupied", "empty"),
    "legal_next": ("not legal", "legal"),
    "flipped": ("not flipped", "flipped"),
}

TARGET_HELP = {
    "mine_theirs_empty": "each square as empty / the last mover's / the opponent's (the published world-model probe)",
    "black_white_empty": "each square as empty / black / white (control: colour rather than player-relative)",
    "empty": "whether each square is empty",
    "legal_next": "whether each square is a legal next move",
    "flipped": "whether the latest move flipped the piece on each square",
}


def targets_for(game: Game | None) -> dict[str, tuple[str, ...]]:
    """The probe targets a game offers (name -> class names): its own, or Othello's ``TARGETS``."""
    return getattr(game, "probe_targets", TARGETS) if game is not None else TARGETS


def target_help(game: Game | None) -> dict[str, str]:
    return getattr(game, "probe_help", TARGET_HELP) if game is not None else TARGET_HELP


def probe_targets(rep, target: str, game: Game | None = None) -> np.ndarray:
    """``int64 (n, T, n_squares)`` class per square after each move (see ``targets_for``)."""
    if game is not None and hasattr(game, "probe_classes"):
        return game.probe_classes(rep, target)
    if target not in TARGETS:
        raise ValueError(f"unknown probe target {target!r}; choose from {', '.join(TARGETS)}")
    n, T = rep.mover.shape
    boards = rep.boards.reshape(n, T, -1)
    if target == "mine_theirs_empty":
        rel = boards * rep.mover[:, :, None]
        return np.where(rel == 0, 0, np.where(rel > 0, 1, 2)).astype(np.int64)
    if target == "black_white_empty":
        return np.where(boards == 0, 0, np.where(boards > 0, 1, 2)).astype(np.int64)
    if target == "empty":
        return (boards == 0).astype(np.int64)
    if target == "legal_next":
        return rep.legal_next.astype(np.int64)
    return rep.flipped.astype(np.int64)


def valid_positions(rep) -> np.ndarray:
    """``bool (n, T)``: positions holding a move (not padding after the game ended)."""
    return np.arange(rep.mover.shape[1])[None, :] < rep.lengths[:, None]


def true_classes(moves: tuple[int, ...], size: Game | int, target: str) -> np.ndarray:
    """The engine's answer ``(rows, cols)`` for ``target`` after the last of ``moves``."""
    game = as_game(size)
    moves = game.fit_moves(moves)
    rep = game.replay(np.array([moves]))
    return probe_targets(rep, target, game)[0, -1].reshape(game.rows, game.cols)
