"""The skill probe (Karvonen 2024): does the residual stream say how strong a player is?

A games file with ratings (PGN ``WhiteElo``) gives each game a label: the bin of White's rating
(bins at the quantiles of the file's ratings, so each holds about as many games). A linear probe
per layer reads that bin from the residual stream at every position where a move ends, trained on
four games in five and scored on the fifth (whole games are held out: positions of one game never
sit on both sides). Beside it, the same probe on a randomly initialised copy of the model (what
the moves alone give a linear read-out, without training) and the majority bin's share (chance).

A model can only read skill from the moves: how often a side takes material when it can, whether
its moves look like its opponent's. On a file where skill is real and known (a random mover
against a capture-greedy one, ``core.sample_games``), a model trained on random games still sees
the greedy side's captures.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from core.game_corpus import HELD_OUT_EVERY, held_out
from core.interp.probes.linear_probes import fit_probe
from core.interp.shared.activations import collect, resid_hooks
from core.models.handle import ModelHandle

Progress = Callable[[str, float], None]
MAX_BINS = 4


def rating_bins(ratings: np.ndarray, n_bins: int = MAX_BINS) -> tuple[np.ndarray, list[str]]:
    """``(bin per game (-1 where the rating is missing), bin labels)``: at most ``n_bins`` bins at
    the quantiles of the known ratings (fewer when there are fewer distinct ratings)."""
    known = ratings[np.isfinite(ratings)]
    if len(known) == 0:
        return np.full(len(ratings), -1), []
    distinct = np.unique(known)
    if len(distinct) <= n_bins:
        edges = (distinct[:-1] + distinct[1:]) / 2  # one bin per rating
    else:
        edges = np.unique(np.quantile(known, np.linspace(0, 1, n_bins + 1)[1:-1]))
    labels = np.where(np.isfinite(ratings), np.searchsorted(edges, np.nan_to_num(ratings), side="right"), -1)
    bounds = [float(known.min()), *edges.tolist(), float(known.max())]
    if len(distinct) <= n_bins:
        names = [f"{r:g}" for r in distinct]
    else:
        names = [f"{bounds[i]:g}–{bounds[i + 1]:g}" for i in range(len(bounds) - 1)]
    return labels.astype(np.int64), names


def _split(n_games: int) -> tuple[np.ndarray, np.ndarray]:
    held = held_out(n_games)
    return np.nonzero(~held)[0], np.nonzero(held)[0]


def _layer_accuracies(handle: ModelHandle, games: np.ndarray, labels: np.ndarray, hooks: list[str], n_bins: int, progress: Progress | None, what: str) -> tuple[list[float], int, int, float]:
    """Held-out accuracy per hook, training and held-out positions, and the majority bin's share
    of the held-out positions."""
    train_idx, test_idx = _split(len(games))
    data = {}
    for part, idx in (("train", train_idx), ("test", test_idx)):
        d = collect(handle, games[idx], hooks, progress=(lambda text, f: progress(f"{what}, {part} games: {text}", f)) if progress else None)
        rows = np.nonzero(d.valid)[0]  # the game of each activation row (rows follow the valid positions in order)
        data[part] = (d.acts, torch.from_numpy(labels[idx][rows])[:, None])
    accuracy = []
    for hook in hooks:
        w, b = fit_probe(data["train"][0][hook], data["train"][1], n_bins)
        pred = (torch.einsum("nd,dsc->nsc", data["test"][0][hook], w) + b).argmax(-1)
        accuracy.append(float((pred == data["test"][1]).float().mean()))
    test_labels = data["test"][1][:, 0]
    chance = float(torch.bincount(test_labels, minlength=n_bins).max() / max(len(test_labels), 1))
    return accuracy, int(len(data["train"][1])), int(len(test_labels)), chance


@torch.no_grad()
def skill_probe(handle: ModelHandle, games: np.ndarray, white_ratings: np.ndarray, random_handle: ModelHandle | None = None,
                hooks: list[str] | None = None, n_bins: int = MAX_BINS, progress: Progress | None = None) -> dict:
    """Accuracy by layer of a probe of White's rating bin, beside the random-init model and chance.

    ``games``: ``(n, T)`` moves; ``white_ratings``: ``(n,)`` (nan where unknown: those games are
    left out). Raises ``ValueError`` when the ratings cannot make two bins or too few games have one.
    """
    labels, names = rating_bins(np.asarray(white_ratings, dtype=float), n_bins)
    keep = labels >= 0
    games, labels = np.asarray(games)[keep], labels[keep]
    if len(names) < 2:
        raise ValueError("the games need at least two different White ratings (WhiteElo) for a skill probe")
    if len(games) < 2 * HELD_OUT_EVERY:
        raise ValueError(f"{len(games)} rated game(s): a skill probe needs at least {2 * HELD_OUT_EVERY}")
    hooks = hooks or resid_hooks(handle.cfg.n_layers)
    accuracy, n_train, n_test, chance = _layer_accuracies(handle, games, labels, hooks, len(names), progress, "trained model")
    random_accuracy = _layer_accuracies(random_handle, games, labels, hooks, len(names), progress, "random-init model")[0] if random_handle is not None else None
    out = {
        "hooks": hooks, "accuracy": accuracy, "bins": names, "games": int(len(games)),
        "train_positions": n_train, "test_positions": n_test, "test_games": int(len(_split(len(games))[1])),
        "chance": chance,  # the majority bin's share of the held-out positions
    }
    if random_accuracy is not None:
        out["random_accuracy"] = random_accuracy
    if progress:
        progress("skill probes done", 1.0)
    return out
