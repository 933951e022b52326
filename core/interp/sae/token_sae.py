"""SAEs on token sequences: features at each token, the model with and without the SAE spliced in,
the metrics on held-out windows, and a feature index over a token shard.

Tokens in, tensors out: a text model's prompt or a corpus shard. The splice replaces the hook's
activation at every position with the SAE's reconstruction inside a scoped hook (the shared model
is never left hooked). Metrics follow ``sae_metrics``'s definitions; cross-entropy is always
against the token that really comes next (targets are tokens, never logits).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from core.interp.sae.metrics import summarise
from core.interp.shared.text_run import check_tokens
from core.interp.shared.unit_index import SparseUnits
from core.models.handle import ModelHandle


@dataclass
class SpliceComparison:
    clean_logits: torch.Tensor  # (pos, d_vocab)
    spliced_logits: torch.Tensor  # (pos, d_vocab)
    clean_loss: np.ndarray  # (pos,) nan after the last token
    spliced_loss: np.ndarray
    features: torch.Tensor  # (pos, d_sae) the SAE's features at every token

    def top_k(self, k: int = 5) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """``(clean ids, clean probs, spliced ids, spliced probs)``, each ``(pos, k)``."""
        both = torch.stack([self.clean_logits, self.spliced_logits]).softmax(-1).topk(k, dim=-1)
        return both.indices[0].numpy(), both.values[0].numpy(), both.indices[1].numpy(), both.values[1].numpy()


def _per_token_loss(logits: torch.Tensor, tokens: torch.Tensor) -> np.ndarray:
    out = np.full(len(tokens), np.nan)
    if len(tokens) > 1:
        out[:-1] = F.cross_entropy(logits[:-1].float(), tokens[1:], reduction="none").numpy()
    return out


def splice_comparison(handle: ModelHandle, sae, hook: str, tokens: torch.Tensor) -> SpliceComparison:
    """The model's logits at every token with and without the SAE in place of ``hook``, the loss
    of the real next token under each, and the features: one forward pass of two rows, the second
    with its activation replaced by the reconstruction (the SAE encodes once)."""
    tokens = check_tokens(tokens, handle)
    kept = {}

    def hook_fn(act: torch.Tensor, hook) -> torch.Tensor:
        feats = sae.encode(act[1].to(sae.W_dec.device, sae.W_dec.dtype))
        kept["features"] = feats
        out = act.clone()
        out[1] = sae.decode(feats).to(act.device, act.dtype)
        return out

    with torch.inference_mode():
        logits = handle.run_with_hooks(tokens[None].expand(2, -1), [(hook, hook_fn)]).float()
    clean, spliced = logits[0], logits[1]
    return SpliceComparison(clean, spliced, _per_token_loss(clean, tokens), _per_token_loss(spliced, tokens), kept["features"].cpu())


def _mean_ce(logits: torch.Tensor, windows: torch.Tensor) -> float:
    return float(F.cross_entropy(logits[:, :-1].float().reshape(-1, logits.shape[-1]), windows[:, 1:].reshape(-1)))


@torch.no_grad()
def window_sae_metrics(handle: ModelHandle, sae, hook: str, windows: torch.Tensor) -> dict:
    """FVU, L0, MSE, dead and dense fractions, and cross-entropy clean / with the SAE / zero- and
    mean-ablated with the CE recovered, over ``windows (n, pos)`` of real text."""
    x = handle.activations(windows, [hook])[hook]
    flat = x.reshape(-1, x.shape[-1])
    feats = sae.encode(flat)
    recon = sae.decode(feats)
    mean = flat.mean(0)

    def replaced(fn) -> float:
        def hook_fn(act: torch.Tensor, hook) -> torch.Tensor:
            return fn(act.reshape(-1, act.shape[-1])).reshape(act.shape).to(act.dtype)

        return _mean_ce(handle.run_with_hooks(windows, [(hook, hook_fn)]), windows)

    ce_clean = _mean_ce(handle.forward(windows), windows)
    ce_sae = replaced(lambda a: sae.decode(sae.encode(a)))
    ce_zero = replaced(torch.zeros_like)
    ce_mean = replaced(lambda a: mean.expand_as(a))
    return {**summarise(flat, feats, recon, ce_clean, ce_sae, ce_zero, ce_mean), "positions": int(len(flat)), "windows": int(len(windows))}


# -- a feature index over a token shard -----------------------------------------------------------


@dataclass(frozen=True)
class TokenIndex(SparseUnits):
    """Sparse activations of a set of units over the windows of a token shard, grouped by unit
    (largest first): unit ``u``'s activations are ``values[ptr[u]:ptr[u+1]]`` at flat positions
    ``position[...]`` (window ``position // width``, token ``position % width``)."""

    hook: str
    windows: np.ndarray  # int (W, width) token ids
    ptr: np.ndarray  # int64 (units + 1,)
    position: np.ndarray  # int32 (nnz,)
    values: np.ndarray  # float32 (nnz,)

    @property
    def width(self) -> int:
        return self.windows.shape[1]

    @property
    def n_positions(self) -> int:
        return self.windows.size

    def token_counts(self, unit: int, k: int = 10) -> list[tuple[int, int]]:
        """The ``k`` tokens the unit fires on most often, ``(token, firings)``."""
        positions, _ = self.activations(unit)
        toks = self.windows.reshape(-1)[positions]
        ids, counts = np.unique(toks, return_counts=True)
        order = np.argsort(-counts, kind="stable")[:k]
        return [(int(ids[i]), int(counts[i])) for i in order]

    def units_on_token(self, token: int, k: int = 10) -> list[tuple[int, float, float]]:
        """Which units fire on ``token``: ``(unit, share of the token's occurrences it fires on,
        mean activation there)``, most reliable first ("which features fire on this token?")."""
        flat = self.windows.reshape(-1)
        where = flat[self.position] == token
        occurrences = int((flat == token).sum())
        if not occurrences or not where.any():
            return []
        unit_of = np.repeat(np.arange(self.d_sae), np.diff(self.ptr))[where]
        vals = self.values[where]
        counts = np.bincount(unit_of, minlength=self.d_sae)
        sums = np.bincount(unit_of, weights=vals, minlength=self.d_sae)
        order = np.lexsort((-sums, -counts))[:k]
        return [(int(u), counts[u] / occurrences, sums[u] / max(counts[u], 1)) for u in order if counts[u] > 0]


def top_contexts(index: TokenIndex, unit: int, k: int = 20, radius: int = 8) -> list[tuple[int, int, float]]:
    """The ``k`` highest activations at *distinct* contexts: ``(window, token, value)``; two
    firings whose surrounding ``radius`` tokens are the same count once."""
    positions, values = index.activations(unit)
    out, seen = [], set()
    for p, v in zip(positions, values):
        w, t = divmod(int(p), index.width)
        key = tuple(index.windows[w, max(0, t - radius) : t + 1].tolist())
        if key in seen:
            continue
        seen.add(key)
        out.append((w, t, float(v)))
        if len(out) == k:
            break
    return out


def band_contexts(index: TokenIndex, unit: int, bands: int = 3, per_band: int = 5, seed: int = 0) -> list[tuple[str, list[tuple[int, int, float]]]]:
    """Random firings from ``bands`` equal slices of the activation range below the top."""
    positions, values = index.activations(unit)
    if not len(values):
        return []
    top = float(values[0])
    rng = np.random.default_rng(seed + unit)
    out = []
    for b in range(bands, 0, -1):
        lo, hi = top * (b - 1) / bands, top * b / bands
        inside = np.nonzero((values > lo) & (values <= hi))[0]
        if not len(inside):
            continue
        pick = np.sort(rng.choice(inside, size=min(per_band, len(inside)), replace=False))
        out.append((f"{lo:.2f}–{hi:.2f}", [(*divmod(int(positions[i]), index.width), float(values[i])) for i in pick]))
    return out


def build_token_index(handle: ModelHandle, sae, hook: str, windows: np.ndarray, batch: int = 64, progress=None) -> TokenIndex:
    """Encode every token of ``windows`` once; keep the non-zero activations grouped by feature."""
    pos_parts, feat_parts, val_parts = [], [], []
    width = windows.shape[1]
    for start in range(0, len(windows), batch):
        acts = handle.activations(torch.from_numpy(windows[start : start + batch]), [hook])[hook]
        with torch.inference_mode():
            feats = sae.encode(acts.reshape(-1, acts.shape[-1]))
        rows, cols = torch.nonzero(feats > 0, as_tuple=True)
        pos_parts.append(rows + start * width)
        feat_parts.append(cols)
        val_parts.append(feats[rows, cols].float())
        if progress:
            progress(f"encoding {min(start + batch, len(windows)):,}/{len(windows):,} windows", min(1.0, (start + batch) / len(windows)))
    pos, feat, val = torch.cat(pos_parts), torch.cat(feat_parts), torch.cat(val_parts)
    d_sae = int(sae.cfg.d_sae)
    order = np.lexsort((-val.numpy(), feat.numpy()))
    ptr = np.concatenate([[0], np.cumsum(np.bincount(feat.numpy(), minlength=d_sae))]).astype(np.int64)
    return TokenIndex(hook, windows, ptr, pos.numpy()[order].astype(np.int32), val.numpy()[order].astype(np.float32))
