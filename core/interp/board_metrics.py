"""Board-game dictionary metrics (Karvonen et al. 2024): do features track known board properties?

Board state properties (BSPs) are binary facts the engine knows at every position: each square
empty / mine / theirs (mine = the player who just moved), each square a legal next move, each
square flipped by the latest move. A feature "fires" at threshold ``t`` when its activation exceeds
``t`` times its maximum over the data (t = 0, 0.1, ..., 0.9).

* **Coverage**: for each BSP the best F1 of any single feature at any threshold; averaged over BSPs.
* **Mean property F1** (``board_reconstruction``, BoardLens's first score): on one half of the
  positions, keep for each threshold the (feature, BSP) pairs where the feature predicts the BSP with
  precision >= 95 %; on the other half, predict a BSP when any of its kept features fires. Score:
  mean F1 over BSPs, best threshold.
* **Board reconstruction as published** (``board_reconstruction_paper``): the same labelling (>= 10
  firings), the board rebuilt square by square, F1 over all squares of all held-out boards.

The same code scores SAE features, MLP neurons, or anything else shaped ``(positions, units)``.
"""

from __future__ import annotations

import numpy as np
import torch

from core.games.base import grid_label
from core.interp.probes import probe_targets

THRESHOLDS = tuple(round(0.1 * i, 1) for i in range(10))
PRECISION = 0.95
MIN_FIRES = 5


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


def _fires(acts: torch.Tensor, t: float, max_act: torch.Tensor) -> torch.Tensor:
    return (acts > t * max_act) & (acts > 0)


def _f1_table(fire: torch.Tensor, props: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per (unit, property): F1 and precision of "unit fires" as a predictor of the property."""
    tp = fire.float().T @ props.float()  # (units, props)
    fired = fire.float().sum(0)[:, None]
    positives = props.float().sum(0)[None, :]
    f1 = 2 * tp / (fired + positives).clamp(min=1)
    precision = tp / fired.clamp(min=1)
    return f1, precision


def coverage(acts: torch.Tensor, props: np.ndarray) -> dict:
    """Mean over properties of the best single-unit F1 (any threshold); also per property."""
    p = torch.from_numpy(props)
    max_act = acts.max(0).values.clamp(min=1e-9)
    best = torch.zeros(p.shape[1])
    for t in THRESHOLDS:
        f1, _ = _f1_table(_fires(acts, t, max_act), p)
        best = torch.maximum(best, f1.max(0).values)
    present = p.any(0)
    return {"coverage": float(best[present].mean()), "best_f1": best.tolist()}


def _labelled_units(acts: torch.Tensor, p: torch.Tensor, cut: int, min_fires: int):
    """For each threshold: ``(t, keep, fire_test)`` where ``keep[u, prop]`` marks the units that
    predict a property with precision >= 95 % over >= ``min_fires`` firings on the first ``cut``
    positions, and ``fire_test`` is where each unit fires on the rest."""
    max_act = acts[:cut].max(0).values.clamp(min=1e-9)
    for t in THRESHOLDS:
        fire_train = _fires(acts[:cut], t, max_act)
        _, precision = _f1_table(fire_train, p[:cut])
        keep = (precision >= PRECISION) & (fire_train.sum(0)[:, None] >= min_fires)
        if keep.any():
            yield t, keep, _fires(acts[cut:], t, max_act)


def board_reconstruction(acts: torch.Tensor, props: np.ndarray, split: float = 0.5) -> dict:
    """Best (over thresholds) mean F1 of properties predicted from high-precision units."""
    cut = int(len(acts) * split)
    p = torch.from_numpy(props)
    best = {"board_reconstruction": 0.0, "threshold": None, "units_used": 0}
    for t, keep, fire_test in _labelled_units(acts, p, cut, MIN_FIRES):
        predicted = (fire_test.float() @ keep.float()) > 0
        truth = p[cut:]
        tp = (predicted & truth).sum(0).float()
        f1 = 2 * tp / (predicted.sum(0) + truth.sum(0)).clamp(min=1).float()
        present = truth.any(0)
        score = float(f1[present].mean())
        if score > best["board_reconstruction"]:
            best = {"board_reconstruction": score, "threshold": t, "units_used": int(keep.any(1).sum())}
    return best


def board_classes(game=None) -> int:
    """How many mutually exclusive classes each square has in ``board_properties``."""
    return getattr(game, "board_property_classes", 3)


def board_reconstruction_paper(acts: torch.Tensor, props: np.ndarray, n_classes: int, n_squares: int, split: float = 0.5, min_fires: int = 10) -> dict:
    """Board reconstruction as Karvonen et al. 2024 define it, on the board's square classes.

    On the first part of the positions a unit *labels* a square class when, at threshold ``t``,
    its precision for it is >= 0.95 over >= ``min_fires`` firings. On the held-out part, each square
    gets the classes labelled by the units that fire there; a square is a true positive when that
    set is exactly its true class, a false positive when it holds any wrong class (even beside the
    right one), a false negative when it is empty. Score: F1 over every square of every held-out
    board, at the best threshold.
    """
    cut = int(len(acts) * split)
    p = torch.from_numpy(props[:, : n_classes * n_squares])
    truth = p[cut:].reshape(-1, n_classes, n_squares)
    best = {"board_reconstruction": 0.0, "threshold": None, "units_used": 0}
    for t, keep, fire_test in _labelled_units(acts, p, cut, min_fires):
        predicted = ((fire_test.float() @ keep.float()) > 0).reshape(-1, n_classes, n_squares)
        wrong = (predicted & ~truth).any(1)
        right = (predicted & truth).any(1)
        tp = int((right & ~wrong).sum())
        fp = int(wrong.sum())
        fn = int((~predicted.any(1)).sum())
        score = 2 * tp / max(2 * tp + fp + fn, 1)
        if score > best["board_reconstruction"]:
            best = {"board_reconstruction": score, "threshold": t, "units_used": int(keep.any(1).sum())}
    return best
