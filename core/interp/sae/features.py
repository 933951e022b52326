"""What the SAE feature browser shows about each feature, computed once per (model, SAE).

Browsing must be instant, so one pass over held-out games encodes every position and keeps only the
non-zero feature activations (an SAE is sparse: ~L0 per position), grouped by feature and sorted by
value. A feature's top-activating positions, its quantile samples and its activation histogram are
then slices of that table, not forward passes. The same pass scores every feature against the
engine's board properties (best F1 over the Karvonen et al. thresholds, as in ``board_metrics``).

Per-feature weights views use the decoder direction written into the residual stream: for an SAE on
``mlp.hook_post`` (neuron space) that is ``W_dec @ W_out``; for residual and ``*_out`` hooks it is
``W_dec`` itself.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import torch

from core.games.base import Game
from core.games.registry import as_game
from core.interp.sae.board_metrics import THRESHOLDS, board_classes, board_properties
from core.interp.shared.predictions import game_tokens
from core.interp.probes.linear_probes import collect
from core.models.handle import ModelHandle, block_of, resume_layer

BROWSER_SEED = 3_000_051  # held-out games for the browser (not the SAE's training or metric games)


@dataclass(frozen=True)
class FeatureIndex:
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
        """``(positions, values)`` of one feature, largest value first."""
        self._check(feature)
        lo, hi = self.ptr[feature], self.ptr[feature + 1]
        return self.position[lo:hi], self.values[lo:hi]

    @property
    def density(self) -> np.ndarray:
        return np.diff(self.ptr) / max(self.n_positions, 1)

    @property
    def max_activation(self) -> np.ndarray:
        counts = np.diff(self.ptr)
        out = np.zeros(self.d_sae, dtype=np.float32)
        fired = counts > 0
        out[fired] = self.values[self.ptr[:-1][fired]]
        return out

    def _check(self, feature: int) -> None:
        if not 0 <= feature < self.d_sae:
            raise ValueError(f"feature must be in 0..{self.d_sae - 1}, got {feature}")


@dataclass(frozen=True)
class Example:
    """One position where a feature fires: the board after ``move`` and the game that led there."""

    game: int
    move: int
    value: float
    board: np.ndarray  # int8 (size, size)
    last_move: tuple[int, ...]  # squares of the move just played (one for Othello, from and to for chess)
    moves: tuple[int, ...]  # the game up to and including ``move``


def residual_directions(handle: ModelHandle, sae, hook: str) -> torch.Tensor:
    """``(d_sae, d_model)``: what each feature's decoder direction writes into the residual stream."""
    w_dec = sae.W_dec.detach().float()
    if hook.endswith("mlp.hook_post"):
        return w_dec @ handle.model.blocks[block_of(hook)].mlp.W_out.detach().float()
    if w_dec.shape[1] != handle.cfg.d_model:
        raise ValueError(f"an SAE on {hook} (width {w_dec.shape[1]}) has no residual-stream direction")
    return w_dec


def _encode(sae, acts: torch.Tensor, chunk: int = 8192) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Non-zero ``(position, feature, value)`` triples of ``sae.encode`` over ``acts``."""
    pos, feat, val = [], [], []
    with torch.inference_mode():
        for start in range(0, len(acts), chunk):
            f = sae.encode(acts[start : start + chunk]).float()
            p, k = torch.nonzero(f > 0, as_tuple=True)
            pos.append(p + start)
            feat.append(k)
            val.append(f[p, k])
    return torch.cat(pos), torch.cat(feat), torch.cat(val)


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


def index_games(game: Game) -> int:
    """Games for ~30k indexed positions: 500 Othello games; ~230 chess games (a move there is at
    least two tokens, so a full context holds half as many positions)."""
    per_game = game.n_ctx if game.square_moves else game.n_ctx // 2
    return min(500, max(50, 30_000 // max(per_game, 1)))


def build_index(handle: ModelHandle, sae, hook: str, n_games: int | None = None, seed: int = BROWSER_SEED, progress=None, games: np.ndarray | None = None) -> FeatureIndex:
    """Encode ``n_games`` fresh games once (default ``index_games``), or ``games`` (a corpus's);
    keep the non-zero activations grouped by feature."""
    game = handle.game
    if games is None:
        games = game.random_games(n_games or index_games(game), seed=seed)
    games = games[:, : game.n_ctx]
    data = collect(handle, games, [hook], progress=progress)
    if progress:
        progress("encoding with the SAE", 0.9)
    pos, feat, val = _encode(sae, data.acts[hook])
    if progress:
        progress("matching features to board properties", 0.95)
    return assemble_index(game, hook, games, data.replay, data.valid, pos, feat, val, int(sae.cfg.d_sae))


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


def logit_effects(handle: ModelHandle, directions: torch.Tensor, feature: int) -> np.ndarray:
    """The decoder direction read directly through the unembedding, per square ``(size*size,)``
    (the direct path only; later layers may change it). Centre squares have no token: 0."""
    game = handle.game
    with torch.inference_mode():
        per_token = (directions[feature] @ handle.model.W_U.float()).numpy()
    token_square = game.token_square()
    named = np.flatnonzero(token_square >= 0)
    out = np.zeros(game.n_squares, dtype=np.float32)
    out[token_square[named]] = per_token[named] - per_token[named].mean()
    return out


def logit_effects_tokens(handle: ModelHandle, directions: torch.Tensor, feature: int) -> np.ndarray:
    """The decoder direction read through the unembedding, per token ``(d_vocab,)``, centred
    (for games whose tokens are not squares)."""
    with torch.inference_mode():
        per_token = (directions[feature] @ handle.model.W_U.float().cpu()).numpy()
    return per_token - per_token.mean()


def decoder_neighbours(sae, feature: int, k: int = 6) -> list[tuple[int, float]]:
    """Features whose decoder directions are closest to this one's: ``(feature, cosine)``.
    Near-duplicates here are a sign of feature splitting."""
    w = torch.nn.functional.normalize(sae.W_dec.detach().float(), dim=-1)
    cos = w @ w[feature]
    cos[feature] = -2.0
    values, index = cos.topk(min(k, len(cos) - 1))
    return [(int(i), float(v)) for i, v in zip(index, values)]


def extreme_squares(values: np.ndarray, size: Game | int, k: int = 4) -> tuple[list[tuple[str, float]], list[tuple[str, float]]]:
    """The ``k`` squares with the largest and the smallest values: ``(label, value)`` lists."""
    order = np.argsort(values)
    label = as_game(size).square_label
    return [(label(s), float(values[s])) for s in order[::-1][:k]], [(label(s), float(values[s])) for s in order[:k]]


def probe_cosines(direction: torch.Tensor, probe_weight: torch.Tensor) -> dict[str, np.ndarray]:
    """Cosine of one residual direction with each square's probe directions.

    ``probe_weight (d_model, size, size, 3)`` of a mine/theirs/empty probe. Directions: "mine −
    theirs" (the published one used for interventions) and "empty − occupied".
    """
    w = probe_weight.float().reshape(probe_weight.shape[0], -1, probe_weight.shape[-1])
    dirs = {"mine − theirs": w[..., 1] - w[..., 2], "empty − occupied": w[..., 0] - (w[..., 1] + w[..., 2]) / 2}
    d = direction.float()
    return {name: (torch.nn.functional.cosine_similarity(v, d[:, None], dim=0)).numpy() for name, v in dirs.items()}


def class_cosines(direction: torch.Tensor, probe_weight: torch.Tensor, classes: list[str], k: int = 2) -> dict[str, np.ndarray]:
    """Cosine per square of one residual direction with a class probe's directions
    ``w_class − mean over classes`` (e.g. chess: "white knight"), for the ``k`` classes the
    direction aligns with most strongly (largest |cosine| on any square)."""
    w = probe_weight.float().reshape(probe_weight.shape[0], -1, probe_weight.shape[-1])  # (d, squares, C)
    dirs = w - w.mean(-1, keepdim=True)
    cos = torch.nn.functional.cosine_similarity(dirs, direction.float()[:, None, None], dim=0)  # (squares, C)
    order = cos.abs().amax(0).argsort(descending=True)[:k]
    return {classes[int(c)]: cos[:, c].numpy() for c in order}


def probe_hook_for(hook: str, n_layers: int) -> str | None:
    """The residual-stream probe hook that reads what ``hook`` writes (same block's resid_post;
    for resid_pre, the previous block's)."""
    layer = block_of(hook)
    if layer is None or layer < 0:
        return None
    if hook.endswith("hook_resid_pre"):
        return f"blocks.{layer - 1}.hook_resid_post" if layer > 0 else None
    return f"blocks.{min(layer, n_layers - 1)}.hook_resid_post"


def features_now(handle: ModelHandle, sae, hook: str, moves: tuple[int, ...], k: int = 10) -> list[tuple[int, float]]:
    """The ``k`` most active features at the latest position of a game: ``(feature, value)``."""
    if not moves:
        return []
    tokens = game_tokens(moves, handle.game)
    act = handle.activations(tokens, [hook])[hook][0, -1].float()
    with torch.inference_mode():
        f = sae.encode(act[None])[0].float()
    values, features = f.topk(min(k, len(f)))
    return [(int(i), float(v)) for i, v in zip(features, values) if v > 0]


def _reconstruct(sae, act: torch.Tensor) -> torch.Tensor:
    """The SAE's reconstruction of ``act (..., d_in)``, in ``act``'s dtype and device (the SAE may
    live elsewhere: the CPU)."""
    flat = act.reshape(-1, act.shape[-1]).float().to(sae.device)
    with torch.inference_mode():
        return sae.decode(sae.encode(flat)).reshape(act.shape).to(act.device, act.dtype)


def spliced_next_tokens(handle: ModelHandle, sae, hook: str, moves: tuple[int, ...]) -> np.ndarray:
    """Next-token probabilities ``(d_vocab,)`` at the latest position with the SAE's
    reconstruction replacing the hook's activation at every position."""
    tokens = game_tokens(moves, handle.game)
    return handle.run_with_hooks(tokens, [(hook, lambda act, hook: _reconstruct(sae, act))])[0, -1].float().softmax(-1).numpy()


@dataclass
class SpliceNow:
    """The SAE page's "now" panel at the latest position of a game."""

    features: list[tuple[int, float]]  # the most active features, ``(feature, value)``, value > 0
    clean: np.ndarray  # (d_vocab,) next-token probabilities
    spliced: np.ndarray  # (d_vocab,) the same with the SAE's reconstruction at ``hook`` (every position)


def splice_now(handle: ModelHandle, sae, hook: str, moves: tuple[int, ...], k: int = 10) -> SpliceNow | None:
    """``features_now``, the next-token distribution and ``spliced_next_tokens`` from one pass and
    a part of one: the clean pass keeps the hook's activations, and where the hook is a residual
    stream between blocks the spliced pass starts there from their reconstruction (the blocks
    below it compute the same with and without the splice). None before the first move."""
    if not moves:
        return None
    tokens = game_tokens(moves, handle.game)
    logits, acts = handle.forward_keeping(tokens, hook)
    with torch.inference_mode():
        f = sae.encode(acts[0, -1].float()[None].to(sae.device))[0].float().cpu()
    values, features = f.topk(min(k, len(f)))
    layer = resume_layer(hook) if handle.cfg.positional_embedding_type != "shortformer" else None
    if layer is None:
        spliced = spliced_next_tokens(handle, sae, hook, moves)
    else:
        spliced = handle.forward_from(acts, layer, lambda x: _reconstruct(sae, x))[0, -1].float().softmax(-1).numpy()
    return SpliceNow([(int(i), float(v)) for i, v in zip(features, values) if v > 0], logits[0, -1].float().softmax(-1).numpy(), spliced)


def spliced_probs(handle: ModelHandle, sae, hook: str, moves: tuple[int, ...]) -> np.ndarray:
    """Next-token probabilities per square ``(n_squares,)`` at the latest position with the SAE's
    reconstruction replacing the hook's activation (the seed notebook's check; the clean
    distribution, from the same input, is ``predictions.predict``'s, which the app already caches)."""
    return on_squares(handle.game, spliced_next_tokens(handle, sae, hook, moves))


def on_squares(game: Game, token_probs: np.ndarray) -> np.ndarray:
    """``(n_squares,)``: the probabilities of the tokens that name a square, on their squares."""
    token_square = game.token_square()
    named = np.flatnonzero(token_square >= 0)
    out = np.zeros(game.n_squares, dtype=np.float32)
    out[token_square[named]] = token_probs[named]
    return out
