"""Activation patching in batches: many patched runs in one forward pass, from the patched layer up.

``transformer_lens.patching`` runs one full forward per patch site (3 x layers x positions for the
block sweep). Here every row of a batch patches a different site, and a sweep over sites at layer
``l`` starts at layer ``l`` from the cached base residual stream (``start_at_layer``), so earlier
layers are never recomputed; the block sweep also skips the positions before the patched one
(causal attention leaves them as in the base run; their keys and values come from its cache).
Results equal TransformerLens's, site for site.

Directions: *denoising* patches clean activations into the corrupted run (how much of the clean
behaviour does this site restore?); *noising* patches corrupted activations into the clean run
(``act_patch_block_every(model, clean_tokens, corrupted_tokens, metric)``).

``metric(logits (batch, pos, d_vocab)) -> (batch,)``: one value per row.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Callable, Iterator

import numpy as np
import torch

from core.games.base import Game, MoveError
from core.games.registry import as_game
from core.models.handle import ModelHandle

Metric = Callable[[torch.Tensor], torch.Tensor]
BLOCK_KINDS = ("resid_pre", "attn_out", "mlp_out")
HEAD_KINDS = ("z", "q", "k", "v", "pattern")  # TransformerLens's order: output, query, key, value, pattern
MAX_ROWS = 256


@contextmanager
def _exclusive(model) -> Iterator:
    """The raw HookedTransformer, held exclusively when it is a shared handle."""
    if isinstance(model, ModelHandle):
        with model.session() as m:
            yield m
    else:
        try:
            yield model
        finally:
            model.reset_hooks(including_permanent=False)


def _hook_name(kind: str, layer: int) -> str:
    if kind in BLOCK_KINDS:
        return f"blocks.{layer}.hook_{kind}"
    return f"blocks.{layer}.attn.hook_{kind}"


def _check(corrupted_tokens: torch.Tensor, clean_tokens: torch.Tensor) -> None:
    if corrupted_tokens.shape != clean_tokens.shape:
        raise ValueError(f"clean and corrupted tokens differ in shape: {tuple(clean_tokens.shape)} vs {tuple(corrupted_tokens.shape)}")
    if corrupted_tokens.dim() != 2 or corrupted_tokens.shape[0] != 1:
        raise ValueError("patch one game at a time: tokens of shape (1, pos)")


def _copy_hooks(entries: dict[str, list[tuple[int, tuple, tuple]]], source_cache) -> list:
    """Forward hooks that copy, for each ``(row, dst, src)`` entry of a hook, the source run's
    activation at ``src`` into batch row ``row`` at ``dst``."""

    def make_hook(rows: list[tuple[int, tuple, tuple]]):
        def hook(act: torch.Tensor, hook) -> torch.Tensor:
            src_act = source_cache[hook.name][0]
            for row, dst, src in rows:
                act[(row,) + dst] = src_act[src]
            return act

        return hook

    return [(name, make_hook(rows)) for name, rows in entries.items()]


def _group_changed(sites: list[tuple[int, str, tuple]], base_cache, source_cache, out: torch.Tensor, base_value: float, group_key) -> dict:
    """Sites grouped by ``group_key(site)``; a site whose source and base activations are equal
    (e.g. before the first move where the games differ: attention is causal) cannot change
    anything, so it gets ``base_value`` in ``out`` and no patched run."""
    groups: dict = {}
    for i, (layer, name, index) in enumerate(sites):
        if torch.equal(base_cache[name][0][index], source_cache[name][0][index]):
            out[i] = base_value
        else:
            groups.setdefault(group_key(layer, index), []).append(i)
    return groups


def _sweep(model, base_cache, source_cache, sites: list[tuple[int, str, tuple]], metric: Metric, max_rows: int = MAX_ROWS) -> torch.Tensor:
    """Metric of the base run with each site patched from the source run -> ``(n_sites,)``.

    A site is ``(layer, hook_name, index)``; ``index`` selects, after the batch dimension, the part
    of the activation to copy. Sites are grouped by layer so each group starts at its layer.
    """
    out = torch.empty(len(sites))
    base_value = float(metric(_base_logits(model, base_cache)).float().reshape(-1)[0])
    by_layer = _group_changed(sites, base_cache, source_cache, out, base_value, lambda layer, index: layer)
    for layer, ids in sorted(by_layer.items()):
        start = base_cache[f"blocks.{layer}.hook_resid_pre"]  # (1, pos, d_model)
        for lo in range(0, len(ids), max_rows):
            chunk = ids[lo : lo + max_rows]
            entries: dict[str, list] = {}
            for row, i in enumerate(chunk):
                _, name, index = sites[i]
                entries.setdefault(name, []).append((row, index, index))
            with model.hooks(fwd_hooks=_copy_hooks(entries, source_cache)):
                logits = model(start.expand(len(chunk), -1, -1).clone(), start_at_layer=layer)
            out[chunk] = metric(logits).float().reshape(len(chunk))
    return out


def _sweep_suffix(model, base_cache, source_cache, sites: list[tuple[int, str, tuple]], metric: Metric, bucket: int = 8, max_rows: int = MAX_ROWS) -> torch.Tensor:
    """Like ``_sweep`` for sites at one position each (``index = (p,)``), recomputing only what a
    patch can change.

    Attention is causal, so a patch at position ``p`` leaves every earlier position as in the base
    run: each group of sites runs from its layer on the positions from ``start <= p`` onwards, with
    the earlier positions' keys and values taken from the base run's cache (``start`` = ``p``
    rounded down to ``bucket``, so nearby positions share one batch). The logits of the earlier
    positions are the base run's. Exactly the same result, a fraction of the work.
    """
    from transformer_lens.cache.key_value_cache_entry import TransformerLensKeyValueCacheEntry as KVEntry

    out = torch.empty(len(sites))
    base_logits = _base_logits(model, base_cache)
    base_value = float(metric(base_logits).float().reshape(-1)[0])
    reads = getattr(metric, "reads_last", None)  # how many final positions the metric reads, when it says
    groups = _group_changed(sites, base_cache, source_cache, out, base_value, lambda layer, index: (layer, index[0] - index[0] % bucket))
    for (layer, start), ids in sorted(groups.items()):
        for lo in range(0, len(ids), max_rows):
            chunk = ids[lo : lo + max_rows]
            rows = len(chunk)
            entries: dict[str, list] = {}
            for row, i in enumerate(chunk):
                _, name, (p,) = sites[i]
                entries.setdefault(name, []).append((row, (p - start,), (p,)))
            resid = base_cache[f"blocks.{layer}.hook_resid_pre"][:, start:].expand(rows, -1, -1).clone()
            with model.hooks(fwd_hooks=_copy_hooks(entries, source_cache)):
                for j in range(layer, model.cfg.n_layers):
                    entry = None
                    if start > 0:
                        keys = base_cache[f"blocks.{j}.attn.hook_k"][:, :start].expand(rows, -1, -1, -1)
                        values = base_cache[f"blocks.{j}.attn.hook_v"][:, :start].expand(rows, -1, -1, -1)
                        entry = KVEntry(past_keys=keys, past_values=values, frozen=True)
                    resid = model.blocks[j](resid, past_kv_cache_entry=entry)
                if reads and resid.shape[1] >= reads:  # the metric reads only the last positions: unembed only those
                    logits = model.unembed(model.ln_final(resid[:, -reads:]))
                else:
                    logits = torch.cat([base_logits[:, :start].expand(rows, -1, -1), model.unembed(model.ln_final(resid))], dim=1)
            out[chunk] = metric(logits).float().reshape(rows)
    return out


def _base_logits(model, base_cache) -> torch.Tensor:
    return model(base_cache["blocks.0.hook_resid_pre"], start_at_layer=0)


def _caches(model, corrupted_tokens: torch.Tensor, clean_tokens: torch.Tensor, names: set[str]):
    keep = names | {f"blocks.{layer}.hook_resid_pre" for layer in range(model.cfg.n_layers)}
    _, corrupted = model.run_with_cache(corrupted_tokens, names_filter=lambda n: n in keep)
    _, clean = model.run_with_cache(clean_tokens, names_filter=lambda n: n in keep)
    return corrupted, clean


def sweep_work(n_layers: int, n_heads: int, n_pos: int, first_changed: int, bucket: int = 8) -> tuple[int, int]:
    """What the exact sweep (``act_patch_block_every`` then ``act_patch_head_all_pos_every``) will
    compute for two games that first differ at position ``first_changed``: ``(token-blocks,
    block calls)``, a token-block being one position of one row through one block, a block call
    one batched call of one block. Each sweep first runs three whole passes of one row (the two
    games' cached passes and the base pass). Sites before the first difference are equal in both
    runs and are not run; a block site runs its group's rows from its bucket's start on, from its
    layer up; a head site runs every position from its layer up. Sites that happen to be equal
    later on are counted as run: the count is an upper bound, exact for games that differ from
    there on.

    It prices a sweep before it runs: forward passes of the game alone price it badly, since the
    sweep's batches are larger and shorter (measured: 18x too high on othello8, 4x too low on chess)."""
    tokens, calls = 2 * 3 * n_pos * n_layers, 2 * 3 * n_layers  # the reference passes of both sweeps
    if first_changed >= n_pos:
        return tokens, calls
    for layer in range(n_layers):
        depth = n_layers - layer
        for start in range(first_changed - first_changed % bucket, n_pos, bucket):
            rows = 3 * (min(start + bucket, n_pos) - max(start, first_changed))
            chunks = -(-rows // MAX_ROWS)
            tokens += rows * (n_pos - start) * depth
            calls += chunks * depth
        tokens += 5 * n_heads * n_pos * depth
        calls += -(-5 * n_heads // MAX_ROWS) * depth
    return tokens, calls


@torch.inference_mode()
def act_patch_block_every(model, corrupted_tokens: torch.Tensor, clean_tokens: torch.Tensor, metric: Metric) -> torch.Tensor:
    """``(3, n_layers, n_pos)``: metric with each of resid_pre / attn_out / mlp_out at each layer and
    position patched from the clean run into the corrupted run.

    Same result as ``transformer_lens.patching.get_act_patch_block_every(model, corrupted_tokens,
    clean_cache, metric)``; ``model`` is a ``HookedTransformer`` or a ``ModelHandle``.
    """
    _check(corrupted_tokens, clean_tokens)
    with _exclusive(model) as m:
        n_layers, n_pos = m.cfg.n_layers, corrupted_tokens.shape[1]
        names = {_hook_name(k, layer) for k in BLOCK_KINDS for layer in range(n_layers)}
        names |= {f"blocks.{layer}.attn.hook_{kv}" for layer in range(n_layers) for kv in ("k", "v")}
        corrupted, clean = _caches(m, corrupted_tokens, clean_tokens, names)
        sites = [(layer, _hook_name(k, layer), (p,)) for k in BLOCK_KINDS for layer in range(n_layers) for p in range(n_pos)]
        return _sweep_suffix(m, corrupted, clean, sites, metric).reshape(3, n_layers, n_pos)


@torch.inference_mode()
def act_patch_head_all_pos_every(model, corrupted_tokens: torch.Tensor, clean_tokens: torch.Tensor, metric: Metric) -> torch.Tensor:
    """``(5, n_layers, n_heads)``: each head's output (z), query, key, value and pattern patched at
    every position at once; as ``get_act_patch_attn_head_all_pos_every``."""
    _check(corrupted_tokens, clean_tokens)
    with _exclusive(model) as m:
        n_layers, n_heads = m.cfg.n_layers, m.cfg.n_heads
        names = {_hook_name(k, layer) for k in HEAD_KINDS for layer in range(n_layers)}
        corrupted, clean = _caches(m, corrupted_tokens, clean_tokens, names)
        sites = []
        for k in HEAD_KINDS:
            for layer in range(n_layers):
                for h in range(n_heads):
                    index = (h,) if k == "pattern" else (slice(None), h)  # pattern: (head, q, k); others: (pos, head, d)
                    sites.append((layer, _hook_name(k, layer), index))
        return _sweep(m, corrupted, clean, sites, metric).reshape(5, n_layers, n_heads)


@torch.inference_mode()
def act_patch_head_out_by_pos(model, corrupted_tokens: torch.Tensor, clean_tokens: torch.Tensor, metric: Metric) -> torch.Tensor:
    """``(n_layers, n_pos, n_heads)``: each head's output at each position; as
    ``get_act_patch_attn_head_out_by_pos``."""
    _check(corrupted_tokens, clean_tokens)
    with _exclusive(model) as m:
        n_layers, n_heads, n_pos = m.cfg.n_layers, m.cfg.n_heads, corrupted_tokens.shape[1]
        names = {_hook_name("z", layer) for layer in range(n_layers)}
        corrupted, clean = _caches(m, corrupted_tokens, clean_tokens, names)
        sites = [(layer, _hook_name("z", layer), (p, h)) for layer in range(n_layers) for p in range(n_pos) for h in range(n_heads)]
        return _sweep(m, corrupted, clean, sites, metric).reshape(n_layers, n_pos, n_heads)


@torch.inference_mode()
def run_metric(model, tokens: torch.Tensor, metric: Metric) -> float:
    with _exclusive(model) as m:
        return float(metric(m(tokens)).reshape(-1)[0])


def normalise(patched: torch.Tensor, clean_value: float, corrupted_value: float) -> torch.Tensor:
    """(patched - corrupted) / (clean - corrupted): 1 = the site restores the clean behaviour."""
    span = clean_value - corrupted_value
    if abs(span) < 1e-9:
        raise ValueError("the metric is the same on the clean and corrupted games: nothing to explain")
    return (patched - corrupted_value) / span


SMALL_GAP = 0.5  # logits or nats: below this the clean/corrupted difference is within a site's noise
SMALL_SHARE = 0.25  # or below this share of the metric's own size


def small_gap_warning(clean_value: float, corrupted_value: float) -> str:
    """A sentence when the clean and corrupted metrics are too close to normalise by ("" when
    they are not): normalised scores divide by their gap, so a small gap turns small effects
    into large scores. Small means under ``SMALL_GAP`` or under ``SMALL_SHARE`` of the larger
    metric's size."""
    gap = abs(clean_value - corrupted_value)
    if gap >= max(SMALL_GAP, SMALL_SHARE * max(abs(clean_value), abs(corrupted_value))):
        return ""
    return (f"The clean and corrupted runs differ by only {gap:.2f} on this metric ({clean_value:.2f} vs {corrupted_value:.2f}): normalised scores divide by that gap, "
            "so small effects look large. Choose a target with a larger difference, or read the raw metric (switch Normalise off).")


def attribution_patch_block_every(model, corrupted_tokens: torch.Tensor, clean_tokens: torch.Tensor, metric: Metric, clean_cache: dict | None = None) -> torch.Tensor:
    """The gradient approximation of ``act_patch_block_every``: two forwards and one backward
    (one forward and one backward when ``clean_cache`` already holds the clean run's block
    activations, e.g. a row of ``run_pair``'s cache).

    Patched metric at a site ~ corrupted metric + (clean - corrupted activation) . d metric / d activation,
    the gradient taken on the corrupted run.
    """
    _check(corrupted_tokens, clean_tokens)
    with _exclusive(model) as m:
        n_layers = m.cfg.n_layers
        names = [_hook_name(k, layer) for k in BLOCK_KINDS for layer in range(n_layers)]
        if clean_cache is not None:
            clean = clean_cache
        else:
            with torch.inference_mode():
                _, clean = m.run_with_cache(clean_tokens, names_filter=lambda n: n in set(names))
        acts: dict[str, torch.Tensor] = {}

        def keep(act: torch.Tensor, hook) -> torch.Tensor:
            if hook.name == "blocks.0.hook_resid_pre":
                act = act.detach().requires_grad_(True)  # the graph starts here: weights are frozen
            act.retain_grad()
            acts[hook.name] = act
            return act

        with torch.enable_grad(), m.hooks(fwd_hooks=[(n, keep) for n in names]):
            value = metric(m(corrupted_tokens)).sum()
            value.backward()
        rows = []
        for name in names:
            delta = clean[name][0] - acts[name][0].detach()
            rows.append((delta * acts[name].grad[0]).sum(-1))
        approx = float(value.detach()) + torch.stack(rows)
        return approx.reshape(3, n_layers, -1).detach()


# -- games for the patching lab ---------------------------------------------------------------------


METRIC_KINDS = ("logit", "log-prob", "logit difference", "whole-move log-prob")


def next_move_metric(kind: str, tok: int, other_tok: int = 0, tail: tuple[int, ...] = ()) -> Metric:
    """The lab's metrics of the next move. ``logit`` / ``log-prob`` of token ``tok``, or ``logit
    difference`` ``tok`` minus ``other_tok``, read at the last position; ``whole-move log-prob``:
    the sum of the log-probabilities of the tokens of ``tail`` (a move written after the game, its
    last token the one that ends it), each read at the position that predicts it, for tokens that
    end with all of ``tail`` but its last token (``with_tail``)."""
    if kind not in METRIC_KINDS:
        raise ValueError(f"unknown metric {kind!r}; choose from {', '.join(METRIC_KINDS)}")
    if kind == "whole-move log-prob" and not tail:
        raise ValueError("a whole-move metric needs the move's tokens")
    index = torch.tensor(tail, dtype=torch.long)

    def metric(logits: torch.Tensor) -> torch.Tensor:
        """Reads only the last ``metric.reads_last`` positions (a sweep may pass just those)."""
        if kind == "whole-move log-prob":
            logp = logits[:, -len(tail) :].log_softmax(-1)
            return logp[:, torch.arange(len(tail)), index].sum(-1)
        last = logits[:, -1]
        if kind == "logit":
            return last[:, tok]
        if kind == "log-prob":
            return last.log_softmax(-1)[:, tok]
        return last[:, tok] - last[:, other_tok]

    metric.reads_last = len(tail) if kind == "whole-move log-prob" else 1
    return metric


def with_tail(tokens: torch.Tensor, tail: tuple[int, ...]) -> torch.Tensor:
    """``tokens (1, pos)`` followed by all of ``tail`` but its last token (what a whole-move
    metric reads); unchanged when there is no tail."""
    if not tail:
        return tokens
    return torch.cat([tokens, torch.tensor([tail[:-1]], dtype=tokens.dtype)], dim=1)


def corrupt_game(moves: tuple[int, ...], index: int, replacement: int, size: Game | int) -> tuple[tuple[int, ...], tuple[int, ...], int]:
    """Replace move ``index`` by ``replacement`` and replay the later moves while they stay legal.

    Returns ``(clean, corrupted, dropped)``: both games cut to the same length (the corrupted game
    stops at the first later move that became illegal) and how many clean moves were dropped.
    """
    if not 0 <= index < len(moves):
        raise ValueError(f"move index {index} is outside the game (1..{len(moves)})")
    game = as_game(size)
    if replacement not in game.state(moves[:index]).legal_moves or replacement == moves[index]:
        raise ValueError(f"{game.move_label(replacement)} is not a legal alternative to move {index + 1}")
    if game.move_token_counts(moves[: index + 1])[index] != game.move_token_counts(tuple(moves[:index]) + (replacement,))[index]:
        raise ValueError(f"{game.move_label(replacement)} has another number of tokens than move {index + 1}: the two games would not line up")
    corrupted = list(moves[:index]) + [replacement] + list(moves[index + 1 :])
    try:
        game.replay(np.array([corrupted]))
    except MoveError as exc:  # the first later move the change made illegal
        corrupted = corrupted[: exc.move]
    # Later moves must also keep their number of tokens (PGN: "Nf3" may become "Nf3+" or "Nxf3").
    if len(corrupted) > index + 1:
        changed = np.flatnonzero(game.move_token_counts(moves[: len(corrupted)]) != game.move_token_counts(corrupted))
        if len(changed):
            corrupted = corrupted[: int(changed[0])]
    n = len(corrupted)
    return tuple(moves[:n]), tuple(corrupted), len(moves) - n


def why_cut(moves: tuple[int, ...], corrupted: tuple[int, ...], size: Game | int) -> str:
    """Why ``corrupt_game`` stopped the corrupted game before the end of ``moves`` ("" if it did not)."""
    if len(corrupted) >= len(moves):
        return ""
    game = as_game(size)
    n = len(corrupted)
    label = game.move_text(moves[:n], moves[n])
    if moves[n] not in game.state(corrupted).legal_moves:
        return f"move {n + 1} ({label}) is illegal after the change"
    return f"move {n + 1} ({label}) is written with another number of tokens after the change, so the two games would no longer line up"


def run_pair(model, clean_tokens: torch.Tensor, corrupted_tokens: torch.Tensor) -> tuple[torch.Tensor, dict]:
    """Both games in one forward pass: ``(logits (2, pos, d_vocab), cache)`` with the MLP
    activations and final LayerNorm scale that ``neuron_diff_dla`` reads and the block sites that
    attribution patching reads (row 0 clean, row 1 corrupted; the two games must have the same
    length, as the lab's do)."""
    _check(clean_tokens, corrupted_tokens)
    with _exclusive(model) as m, torch.inference_mode():
        blocks = {_hook_name(k, layer) for k in BLOCK_KINDS for layer in range(m.cfg.n_layers)}  # for attribution patching
        names = {f"blocks.{layer}.mlp.hook_post" for layer in range(m.cfg.n_layers)} | {"ln_final.hook_scale"} | blocks
        logits, cache = m.run_with_cache(torch.cat([clean_tokens, corrupted_tokens]), names_filter=lambda n: n in names)
        return logits, dict(cache.items())


def neuron_diff_dla(model, clean_tokens: torch.Tensor, corrupted_tokens: torch.Tensor, token: int, position: int = -1, pair: tuple[torch.Tensor, dict] | None = None) -> torch.Tensor:
    """``(n_layers, d_mlp)``: (clean - corrupted activation) x the neuron's direct effect on ``token``.

    The direct effect is read through the final LayerNorm scale of the clean run, as in the chess
    seed's "DLA of diffed neurons". ``pair``: ``run_pair``'s result for these games, if already run.
    """
    _, cache = pair if pair is not None else run_pair(model, clean_tokens, corrupted_tokens)
    with _exclusive(model) as m, torch.inference_mode():
        scale = cache["ln_final.hook_scale"][0, position] if "ln_final.hook_scale" in cache else torch.ones(1)
        w_ln = m.ln_final.w if hasattr(m.ln_final, "w") else torch.ones(m.cfg.d_model)
        readout = w_ln * m.W_U[:, token]  # (d_model,)
        rows = []
        for layer in range(m.cfg.n_layers):
            w_out = m.blocks[layer].mlp.W_out  # (d_mlp, d_model)
            direct = ((w_out - w_out.mean(-1, keepdim=True)) / scale) @ readout
            post = cache[f"blocks.{layer}.mlp.hook_post"]
            rows.append((post[0, position] - post[1, position]) * direct)
        return torch.stack(rows).float()


@torch.inference_mode()
def patched_logits(model, base_tokens: torch.Tensor, source_tokens: torch.Tensor, kind: str, layer: int, position: int, read_at: int = -1) -> torch.Tensor:
    """Logits ``(d_vocab,)`` at ``read_at`` (default the last position) of the base run with one
    block site patched from the source run.

    One forward pass of both games as a batch of two: at the site, the base row takes the source
    row's activation (rows do not mix before it), so no separate source run is needed.
    """
    _check(base_tokens, source_tokens)
    with _exclusive(model) as m:

        def hook(act: torch.Tensor, hook) -> torch.Tensor:
            act[1, position] = act[0, position]
            return act

        with m.hooks(fwd_hooks=[(_hook_name(kind, layer), hook)]):
            return m(torch.cat([source_tokens, base_tokens]))[1, read_at].float()
