"""Board-game dictionary metrics (Karvonen et al. 2024): do features track known board properties?

Board state properties (BSPs) are binary facts the engine knows at every position: each square
empty / mine / theirs (mine = the player who just moved), each square a legal next move, each
square flipped by the latest move; for chess, the piece on each square, check, castling rights, a
legal en passant capture and a pinned piece. A feature "fires" at threshold ``t`` when its
activation exceeds ``t`` times its maximum over the data (t = 0, 0.1, ..., 1.0, as published).

Each game names the paper's *property sets* (``property_sets``): the board (one class per square),
the board with the blank squares masked, for chess also with the initial position masked (the
(class, square) entries of the starting board: pieces that have not moved dominate early
positions), legal moves, and the single facts. Coverage is reported per set; board
reconstruction per board set (a masked entry is neither predicted nor expected).

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

from core.interp.shared.board_properties import THRESHOLDS

PRECISION = 0.95
MIN_FIRES = 5


def _fires(acts: torch.Tensor, t: float, max_act: torch.Tensor) -> torch.Tensor:
    return (acts > t * max_act) & (acts > 0)


SPARSE_BELOW = 0.02  # the share of true entries under which ``co_occurrences`` goes sparse (at 5 % sparse was slower)


def co_occurrences(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``a.T @ b`` for boolean ``a (n, i)`` and ``b (n, j)``: how often each pair is true together.

    A float32 product counts exactly while the counts stay below 2**24 (float64 beyond). Not
    ``torch._int_mm``: where the CPU has int8 matrix units (AMX, VNNI) it is ~4x faster, but where
    it has none (this AMD EPYC, for one) torch falls back to a plain loop ~60x slower than the
    float product, which turned a page's seconds into many minutes.
    """
    dtype = torch.float32 if a.shape[0] < 2**24 else torch.float64
    if a.numel() and int(torch.count_nonzero(a)) < SPARSE_BELOW * a.numel():
        # Units fire on a few positions each (an SAE feature on 0.05-1.5 % of them): a sparse
        # product reads only those, 1.2-7x faster than the dense one below 2 % (measured here).
        return torch.sparse.mm(a.T.to_sparse().to(dtype), b.to(dtype)).float()
    return (a.to(dtype).T @ b.to(dtype)).float()


def _f1_table(fire: torch.Tensor, props: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per (unit, property): F1 and precision of "unit fires" as a predictor of the property."""
    tp = co_occurrences(fire, props)  # (units, props)
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
        # Only units with enough firings can be kept: the product skips the rest (at high
        # thresholds most units), and the table is the same.
        enough = fire_train.sum(0) >= min_fires
        keep = torch.zeros(acts.shape[1], p.shape[1], dtype=torch.bool)
        if enough.any():
            _, precision = _f1_table(fire_train[:, enough], p[:cut])
            keep[enough] = precision >= PRECISION
        if keep.any():
            yield t, keep, _fires(acts[cut:], t, max_act)


def _predicted(fire_test: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
    """``bool (positions, props)``: a property is predicted where any unit kept for it fires. The
    product reads only the kept units and the properties some unit is kept for (a few hundred of
    thousands of units): the rest is false either way."""
    units, props = keep.any(1), keep.any(0)
    predicted = torch.zeros(fire_test.shape[0], keep.shape[1], dtype=torch.bool)
    predicted[:, props] = co_occurrences(fire_test[:, units].T, keep[units][:, props]) > 0
    return predicted


def board_reconstruction(acts: torch.Tensor, props: np.ndarray, split: float = 0.5) -> dict:
    """Best (over thresholds) mean F1 of properties predicted from high-precision units."""
    cut = int(len(acts) * split)
    p = torch.from_numpy(props)
    best = {"board_reconstruction": 0.0, "threshold": None, "units_used": 0}
    for t, keep, fire_test in _labelled_units(acts, p, cut, MIN_FIRES):
        predicted = _predicted(fire_test, keep)
        truth = p[cut:]
        tp = (predicted & truth).sum(0).float()
        f1 = 2 * tp / (predicted.sum(0) + truth.sum(0)).clamp(min=1).float()
        present = truth.any(0)
        score = float(f1[present].mean())
        if score > best["board_reconstruction"]:
            best = {"board_reconstruction": score, "threshold": t, "units_used": int(keep.any(1).sum())}
    return best


def board_reconstruction_paper(acts: torch.Tensor, props: np.ndarray, n_classes: int, n_squares: int, split: float = 0.5, min_fires: int = 10,
                               masks: dict[str, np.ndarray] | None = None) -> dict:
    """Board reconstruction as Karvonen et al. 2024 define it, on the board's square classes.

    On the first part of the positions a unit *labels* a square class when, at threshold ``t``,
    its precision for it is >= 0.95 over >= ``min_fires`` firings. On the held-out part, each square
    gets the classes labelled by the units that fire there; a square is a true positive when that
    set is exactly its true class, a false positive when it holds any wrong class (even beside the
    right one), a false negative when it is empty. Score: F1 over every square of every held-out
    board, at the best threshold.

    ``masks``: name -> ``bool (n_classes, n_squares)``, the entries a masked variant scores (blank
    squares masked, the initial position masked): predictions and truths outside it are dropped
    before the same square rule, so a square whose true class is masked counts only when a unit
    claims a kept class there (a false positive). Their scores are in ``"sets"``.
    """
    cut = int(len(acts) * split)
    p = torch.from_numpy(props[:, : n_classes * n_squares])
    truth = p[cut:].reshape(-1, n_classes, n_squares)
    masks = {name: torch.from_numpy(m) for name, m in (masks or {}).items()}
    best = {"board_reconstruction": 0.0, "threshold": None, "units_used": 0}
    best_sets = dict.fromkeys(masks, 0.0)
    for t, keep, fire_test in _labelled_units(acts, p, cut, min_fires):
        predicted = _predicted(fire_test, keep).reshape(-1, n_classes, n_squares)
        score = _square_f1(predicted, truth)
        if score > best["board_reconstruction"]:
            best = {"board_reconstruction": score, "threshold": t, "units_used": int(keep.any(1).sum())}
        for name, mask in masks.items():
            best_sets[name] = max(best_sets[name], _square_f1(predicted & mask, truth & mask))
    return {**best, "sets": best_sets} if masks else best


def _square_f1(predicted: torch.Tensor, truth: torch.Tensor) -> float:
    """The paper's square rule on ``(boards, classes, squares)``: a true positive when the
    predicted classes are exactly the true one, a false positive when any is wrong, a false
    negative when a square with a (kept) true class gets none."""
    wrong = (predicted & ~truth).any(1)
    right = (predicted & truth).any(1)
    tp = int((right & ~wrong).sum())
    fp = int(wrong.sum())
    fn = int((truth.any(1) & ~predicted.any(1)).sum())
    return 2 * tp / max(2 * tp + fp + fn, 1)
