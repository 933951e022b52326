"""The sparse index of a unit's activations over a corpus (an SAE feature, an MLP neuron): every
position where it fires, its best board property (F1), its top and quantile examples as boards,
and the search of units by property. The SAE browser and the neuron view both read it."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import torch

from core.games.base import Game
from core.interp.shared.board_properties import THRESHOLDS, board_classes, board_properties


class SparseUnits:
    """What every sparse index of unit activations answers, grouped by unit, largest first: unit
    ``u``'s activations are ``values[ptr[u]:ptr[u + 1]]`` at ``position[ptr[u]:ptr[u + 1]]``. The
    board games' ``FeatureIndex`` and the text models' ``TokenIndex`` differ only in what a
    position is."""

    ptr: np.ndarray  # int64 (units + 1,)
    position: np.ndarray  # int32 (nnz,)
    values: np.ndarray  # float32 (nnz,)

    @property
    def n_positions(self) -> int:
        raise NotImplementedError

    @cached_property
    def fingerprint(self) -> str:
        """A digest of the activations, to key caches by content (a session's own SAE has no
        stable name); computed once per index."""
        digest = hashlib.blake2b(digest_size=16)
        for array in (self.ptr, self.position, self.values):
            digest.update(np.ascontiguousarray(array).tobytes())
        return digest.hexdigest()

    @property
    def d_sae(self) -> int:
        return len(self.ptr) - 1

    def activations(self, feature: int) -> tuple[np.ndarray, np.ndarray]:
        """``(positions, values)`` of one unit, largest value first."""
        self._check(feature)
        lo, hi = self.ptr[feature], self.ptr[feature + 1]
        return self.position[lo:hi], self.values[lo:hi]

    @property
    def density(self) -> np.ndarray:
        return np.diff(self.ptr) / max(self.n_positions, 1)

    @property
    def max_activation(self) -> np.ndarray:
        out = np.zeros(self.d_sae, dtype=np.float32)
        fired = np.diff(self.ptr) > 0
        out[fired] = self.values[self.ptr[:-1][fired]]
        return out

    def _check(self, feature: int) -> None:
        if not 0 <= feature < self.d_sae:
            raise ValueError(f"feature must be in 0..{self.d_sae - 1}, got {feature}")


@dataclass(frozen=True)
class FeatureIndex(SparseUnits):
    """Sparse activations of a set of units over held-out games, grouped by unit (largest first).

    The units are an SAE's features or, with ``neurons.neuron_index``, a layer's MLP neurons
    (kept where they are positive): the browser's views and the property search serve both.

    The activations of feature ``f`` are ``values[ptr[f]:ptr[f + 1]]`` at positions
    ``position[ptr[f]:ptr[f + 1]]``; position ``p`` is game ``game[p]`` after move ``move[p]``.
    """

    size: int
    hook: str
    games: np.ndarray  # int (G, T) squares
    boards: np.ndarray  # int8 (G, T, size, size) board after each move
    game: np.ndarray  # int (N,) game of each position
    move: np.ndarray  # int (N,) move index of each position
    ptr: np.ndarray  # int64 (d_sae + 1,)
    position: np.ndarray  # int32 (nnz,)
    values: np.ndarray  # float32 (nnz,)
    property_names: list[str]
    best_property: np.ndarray  # int (d_sae,) index into property_names; -1 if the feature never fires
    best_f1: np.ndarray  # float32 (d_sae,)
    move_squares: np.ndarray  # int (G, T, 2) squares of each move (from, to; the same square twice for Othello)
    f1: np.ndarray  # float16 (d_sae, n_props): each unit's best F1 for each property (any threshold), for search

    @property
    def n_positions(self) -> int:
        return len(self.game)


@dataclass(frozen=True)
class Example:
    """One position where a feature fires: the board after ``move`` and the game that led there."""

    game: int
    move: int
    value: float
    board: np.ndarray  # int8 (size, size)
    last_move: tuple[int, ...]  # squares of the move just played (one for Othello, from and to for chess)
    moves: tuple[int, ...]  # the game up to and including ``move``


def _best_properties(pos: torch.Tensor, feat: torch.Tensor, val: torch.Tensor, props: np.ndarray, d_sae: int, max_act: torch.Tensor) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Best F1 of "feature fires above t x max" as a predictor of each property, any threshold:
    per feature its best property and F1, and the whole ``(features, properties)`` table.

    Sparse: ``tp[f, p]`` is a sparse (features x positions) matrix times the dense property table.
    """
    n = props.shape[0]
    p = torch.from_numpy(props).float()
    positives = p.sum(0)[None, :]
    table = torch.zeros(d_sae, props.shape[1])
    for t in THRESHOLDS:
        keep = val > t * max_act[feat]
        if not keep.any():
            continue
        fire = torch.sparse_coo_tensor(torch.stack([feat[keep], pos[keep]]), torch.ones(int(keep.sum())), (d_sae, n), check_invariants=False).coalesce()
        tp = torch.sparse.mm(fire, p)  # (d_sae, props)
        fired = torch.bincount(feat[keep], minlength=d_sae).float()[:, None]
        torch.maximum(table, 2 * tp / (fired + positives).clamp(min=1), out=table)
    best_f1, best_prop = table.max(1)
    best_prop = torch.where(best_f1 > 0, best_prop, torch.full_like(best_prop, -1))
    return best_prop.numpy(), best_f1.numpy(), table.half().numpy()


def assemble_index(game: Game, hook: str, games: np.ndarray, rep, valid: np.ndarray, pos: torch.Tensor, feat: torch.Tensor, val: torch.Tensor, n_units: int) -> FeatureIndex:
    """The index of ``n_units`` units from their non-zero ``(position, unit, value)`` triples over
    the valid positions of ``games`` (``rep``: their replay), scored against the board properties."""
    game_idx, move_idx = np.nonzero(valid)
    order = np.lexsort((-val.numpy(), feat.numpy()))
    counts = np.bincount(feat.numpy(), minlength=n_units)
    ptr = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    max_act = torch.zeros(n_units).scatter_reduce(0, feat, val, reduce="amax")
    props, names = board_properties(rep, valid, game)
    best_prop, best_f1, f1 = _best_properties(pos, feat, val, props, n_units, max_act)
    codes = np.unique(games[games >= 0])
    lookup = dict(zip(codes.tolist(), (game.move_squares(int(m)) for m in codes)))
    squares = np.array([[lookup.get(int(m), (-1, -1)) for m in row] for row in games], dtype=np.int64).reshape(*games.shape, 2)
    return FeatureIndex(
        size=game.rows, hook=hook, games=games, boards=rep.boards, game=game_idx, move=move_idx,
        ptr=ptr, position=pos.numpy()[order].astype(np.int32), values=val.numpy()[order].astype(np.float32),
        property_names=names, best_property=best_prop, best_f1=best_f1.astype(np.float32), move_squares=squares, f1=f1,
    )


def search_units(index: FeatureIndex, query: str, k: int = 10) -> tuple[list[tuple[int, str, float]], int]:
    """Which units track a board property: ``(unit, property, F1)`` for the ``k`` units with the
    best F1 on any property the query names, best first, and how many properties it named.

    A query names a property exactly (``mine d3``) or by words that all appear in its name
    (``d3``: every property of d3; ``legal e6``; chess ``white knight``), case aside.
    """
    words = query.lower().split()
    if not words:
        return [], 0
    names = [n.lower() for n in index.property_names]
    exact = [i for i, n in enumerate(names) if n == " ".join(words)]
    props = exact or [i for i, n in enumerate(names) if all(w in n.split() for w in words)]
    if not props:
        return [], 0
    table = index.f1[:, props].astype(np.float32)  # (units, matched properties)
    best = table.argmax(1)
    score = table[np.arange(len(table)), best]
    order = np.argsort(-score, kind="stable")[:k]
    return [(int(u), index.property_names[props[int(best[u])]], float(score[u])) for u in order if score[u] > 0], len(props)


def feature_table(index: FeatureIndex) -> dict[str, np.ndarray]:
    """Columns of the sortable feature table (one row per feature), the features that track a board
    property best first, then by density; features that never fire come last (not first, as in
    feature order, where a dead feature 0 opened the table)."""
    names = np.array(index.property_names + ["—"], dtype=object)
    density = index.density
    order = np.lexsort((-density, -index.best_f1, density == 0))
    return {
        "feature": order,
        "density": density[order],
        "max activation": index.max_activation[order],
        "best property": names[index.best_property][order],
        "F1": index.best_f1[order],
    }


def _example(index: FeatureIndex, position: int, value: float) -> Example:
    g, t = int(index.game[position]), int(index.move[position])
    return Example(
        game=g, move=t, value=float(value), board=index.boards[g, t], last_move=tuple(sorted({int(s) for s in index.move_squares[g, t]})),
        moves=tuple(int(m) for m in index.games[g, : t + 1]),
    )


def top_examples(index: FeatureIndex, feature: int, k: int = 12) -> list[Example]:
    """The ``k`` highest activations at *distinct* positions: random games often share their
    opening, and twenty copies of one position say less than twenty positions."""
    positions, values = index.activations(feature)
    out, seen = [], set()
    for p, v in zip(positions, values):
        example = _example(index, int(p), float(v))
        key = example.moves
        if key in seen:
            continue
        seen.add(key)
        out.append(example)
        if len(out) == k:
            break
    return out


def property_in_examples(index: FeatureIndex, game: Game, examples: list[Example], prop: int) -> tuple[int, list[tuple[str, int]]]:
    """How many of ``examples`` have property ``prop`` (a best-matching property is an F1 over all
    positions, so the top examples can say otherwise), and, for a square's class (``black knight
    c6``), which classes that square holds across them, commonest first: ``(hits, [(name, n)])``."""
    if not examples or prop < 0:
        return 0, []
    rows = np.stack([index.games[e.game] for e in examples])
    valid = np.zeros(rows.shape, dtype=bool)
    valid[np.arange(len(examples)), [e.move for e in examples]] = True
    props, names = board_properties(game.replay(rows), valid, game)  # one row per example, in order
    hits = int(props[:, prop].sum())
    n_sq = game.n_squares
    if prop >= board_classes(game) * n_sq:
        return hits, []
    square = prop % n_sq
    classes = props[:, square : board_classes(game) * n_sq : n_sq]  # (examples, classes)
    counts = classes.sum(0)
    return hits, [(names[c * n_sq + square], int(counts[c])) for c in np.argsort(-counts, kind="stable") if counts[c]]


def quantile_examples(index: FeatureIndex, feature: int, bands: int = 3, per_band: int = 4, seed: int = 0) -> list[tuple[str, list[Example]]]:
    """Random positions from lower activation bands (by fraction of the max), like dashboards do:
    the top examples alone hide what a feature does most of the time."""
    positions, values = index.activations(feature)
    if not len(values):
        return []
    top = values[0]
    rng = np.random.default_rng(seed + feature)
    out = []
    edges = np.linspace(0, 1, bands + 1)
    for lo, hi in zip(edges[-2::-1], edges[:0:-1]):
        inside = np.flatnonzero((values > lo * top) & (values <= hi * top))
        if hi == 1:
            inside = inside[inside >= 20] if len(inside) > 20 else inside  # the top examples are shown already
        # Distinct positions, as for the top examples: random games share openings, and a band
        # drawn by index could show one position four times.
        chosen, seen = [], set()
        for i in rng.permutation(inside):
            example = _example(index, int(positions[i]), float(values[i]))
            if example.moves not in seen:
                seen.add(example.moves)
                chosen.append((int(i), example))
                if len(chosen) == per_band:
                    break
        if chosen:
            out.append((f"{lo:.0%}–{hi:.0%} of max", [e for _, e in sorted(chosen, key=lambda c: c[0])]))
    return out
