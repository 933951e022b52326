"""Board-game dictionary metrics (Karvonen et al. 2024): do features track known board properties?

Board state properties (BSPs) are binary facts the engine knows at every position: each square
empty / mine / theirs (mine = the player who just moved), each square a legal next move, each
square flipped by the latest move. A feature "fires" at threshold ``t`` when its activation exceeds
``t`` times its maximum over the data (t = 0, 0.1, ..., 0.9).

* **Coverage**: for each BSP the best F1 of any single feature at any threshold; averaged over BSPs.
* **Board reconstruction**: on one half of the positions, keep for each threshold the
  (feature, BSP) pairs where the feature predicts the BSP with precision >= 95 %; on the other half,
  predict a BSP when any of its kept features fires. Score: mean F1 over BSPs, best threshold.

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


def board_properties(rep, valid: np.ndarray) -> tuple[np.ndarray, list[str]]:
    """``bool (N, n_props)`` for the valid positions, and the property names."""
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


def board_reconstruction(acts: torch.Tensor, props: np.ndarray, split: float = 0.5) -> dict:
    """Best (over thresholds) mean F1 of properties predicted from high-precision units."""
    n = len(acts)
    cut = int(n * split)
    p = torch.from_numpy(props)
    max_act = acts[:cut].max(0).values.clamp(min=1e-9)
    best = {"board_reconstruction": 0.0, "threshold": None, "units_used": 0}
    for t in THRESHOLDS:
        fire_train = _fires(acts[:cut], t, max_act)
        _, precision = _f1_table(fire_train, p[:cut])
        keep = (precision >= PRECISION) & (fire_train.sum(0)[:, None] >= MIN_FIRES)
        if not keep.any():
            continue
        predicted = (_fires(acts[cut:], t, max_act).float() @ keep.float()) > 0
        truth = p[cut:]
        tp = (predicted & truth).sum(0).float()
        f1 = 2 * tp / (predicted.sum(0) + truth.sum(0)).clamp(min=1).float()
        present = truth.any(0)
        score = float(f1[present].mean())
        if score > best["board_reconstruction"]:
            best = {"board_reconstruction": score, "threshold": t, "units_used": int(keep.any(1).sum())}
    return best
