"""The board properties every unit (probe class, SAE feature, neuron) is labelled with: one
boolean per position for each square's state and the game's other facts (legal, flipped; for
chess, pieces, castling, en passant, pins), and the activation thresholds a unit is tried at."""

from __future__ import annotations

import numpy as np

from core.games.base import grid_label
from core.interp.shared.board_targets import probe_targets


THRESHOLDS = tuple(round(0.1 * i, 1) for i in range(11))


def board_properties(rep, valid: np.ndarray, game=None) -> tuple[np.ndarray, list[str]]:
    """``bool (N, n_props)`` for the valid positions, and the property names.

    The first ``board_classes(game) * n_squares`` properties are the board itself, class-major
    (property ``c * n_squares + s``: square ``s`` holds class ``c``; exactly one class per square).
    """
    if game is not None and hasattr(game, "board_properties"):
        return game.board_properties(rep, valid)
    size = rep.size
    mte = probe_targets(rep, "mine_theirs_empty")[valid]  # (N, sq)
    parts = [mte == 0, mte == 1, mte == 2, rep.legal_next[valid], rep.flipped[valid]]
    kinds = ["empty", "mine", "theirs", "legal", "flipped"]
    names = [f"{k} {grid_label(s, size)}" for k in kinds for s in range(size * size)]
    return np.concatenate(parts, axis=1), names


def property_sets(game=None) -> dict[str, tuple[np.ndarray, np.ndarray | None]]:
    """Set name -> ``(indices into board_properties, board mask (classes, squares) or None)``: the
    game's own sets, else Othello's (board mine/theirs/empty, blanks masked, legal moves, flipped)."""
    if game is not None and hasattr(game, "board_property_sets"):
        return game.board_property_sets()
    n_sq = game.n_squares if game is not None else 64
    full = np.ones((3, n_sq), dtype=bool)
    blanks = full.copy()
    blanks[0] = False  # class 0: empty
    return {
        "board (mine / theirs / empty)": (np.arange(3 * n_sq), full),
        "board, blanks masked": (np.arange(n_sq, 3 * n_sq), blanks),
        "legal moves": (np.arange(3 * n_sq, 4 * n_sq), None),
        "flipped by the last move": (np.arange(4 * n_sq, 5 * n_sq), None),
    }


def board_classes(game=None) -> int:
    """How many mutually exclusive classes each square has in ``board_properties``."""
    return getattr(game, "board_property_classes", 3)
