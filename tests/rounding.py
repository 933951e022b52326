"""How far a float32 forward pass may be from the exact (float64) one, argued from float32 rounding
rather than from what one CPU happened to give.

Two float32 implementations of the same network (TransformerLens's pass, our fused or prefix
passes) differ only in the order and the kernels of their sums: AVX2 and AVX-512 machines block
their matrix products and their fused attention differently, so the single worst log-probability
of one pass can be several times that of another on one CPU and not on the next (measured on an
AVX2-only CPU: the fused pass's worst error 2.8 x TransformerLens's, its RMS error 1.13 x). Two
statistics of the error against the float64 model are therefore checked, each with its argument:

* **RMS over every value** (thousands of them): a sum of many independent roundings, set by how
  many roundings of what size the computation makes, not by which of them happen to line up. Two
  passes doing the same arithmetic in a different order have RMS errors within a small factor of
  each other on any CPU; ``RMS_FACTOR`` allows 1.5.
* **The worst value**, against a first-order rounding bound: a float32 matrix product of length
  ``n`` is the exact product of operands each changed by a relative ``lambda * sqrt(n) * u`` at
  most, with probability ``1 - 2 exp(-lambda^2 / 2)`` (Higham and Mary's probabilistic rounding
  analysis, 2019; ``u = 2**-24``). The float64 model with every weight changed by a relative ``u``
  (random signs) measures how far one such rounding moves the outputs; ``LAMBDA * sqrt(n)`` times
  that is the bound, ``n`` the longest sum in the pass. ``LAMBDA = 4``: the chance that one product
  exceeds it is below 1e-3, and a real error (a wrong mask, a missing bias, a position off by one)
  moves log-probabilities by 1e-2 or more, far above it.
"""

from __future__ import annotations

import copy
import math
from typing import Callable

import torch

U = 2.0**-24  # float32's unit roundoff
RMS_FACTOR = 1.5
LAMBDA = 4.0


def float64_copy(model):
    """The model in float64: the exact answer float32 passes are measured against."""
    exact = copy.deepcopy(model).double()
    exact.cfg.dtype = torch.float64
    return exact


def one_rounding_effect(exact_model, run: Callable[[object], torch.Tensor], seed: int = 0) -> float:
    """Largest change of ``run(model)`` when every weight of the float64 model is multiplied by
    ``1 ± u`` (random signs): what one float32 rounding of every operand does to the outputs."""
    moved = copy.deepcopy(exact_model)
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in moved.parameters():
            p.mul_(1 + U * (2 * torch.randint(0, 2, p.shape, generator=gen, dtype=torch.float64) - 1))
    with torch.inference_mode():
        return (run(moved) - run(exact_model)).abs().max().item()


def longest_sum(cfg, positions: int) -> int:
    """The longest sum of a forward pass: a matrix product over d_model or d_mlp, or attention's
    mix over the positions."""
    return max(cfg.d_model, cfg.d_mlp or 0, cfg.d_head * cfg.n_heads, positions)


def assert_as_exact(label: str, ours: torch.Tensor, peer: torch.Tensor, truth: torch.Tensor, effect: float, n: int) -> None:
    """``ours`` (a float32 pass) is as close to the float64 ``truth`` as the float32 ``peer``
    (RMS over every value) and within the rounding bound of the worst value (module docstring)."""
    err, peer_err = ours.double() - truth, peer.double() - truth
    rms, peer_rms = err.pow(2).mean().sqrt().item(), peer_err.pow(2).mean().sqrt().item()
    worst, bound = err.abs().max().item(), LAMBDA * math.sqrt(n) * effect
    assert rms <= RMS_FACTOR * peer_rms + U, f"{label}: RMS error {rms:.3g} against the peer's {peer_rms:.3g}"
    assert worst <= bound, f"{label}: worst error {worst:.3g} over the rounding bound {bound:.3g} (peer's worst {peer_err.abs().max().item():.3g})"


def pair_bound(model, run: Callable[[object], torch.Tensor], positions: int) -> float:
    """The most two float32 evaluations of ``run(model)`` by different kernels (ours and a peer's,
    or one path and another of ours) may differ: each is within ``LAMBDA * sqrt(n)`` one-rounding
    effects of the float64 value (module docstring), so together within twice that. ``run`` maps
    a model to the compared quantity (logits, a metric); for a quantity computed from patched or
    edited runs of the model, the same quantity of its plain run stands in: the same layers, the
    same sums."""
    n = longest_sum(model.cfg, positions)
    return 2 * LAMBDA * math.sqrt(n) * one_rounding_effect(float64_copy(model), run)


def metric_bound(model, tokens: torch.Tensor, metric: Callable[[torch.Tensor], torch.Tensor]) -> float:
    """How far two patching sweeps (ours and TransformerLens's) may differ on one site: both are
    the metric of a float32 forward of the same patched game, batched differently (ours runs many
    sites as rows of one pass, TransformerLens one site per pass), so within ``pair_bound`` of the
    metric of the plain forward. A wrong site or position moves a metric by 1e-2 or more."""
    return pair_bound(model, lambda m: metric(m(tokens)), tokens.shape[-1])


def forward_bound(model, tokens: torch.Tensor) -> float:
    """How far two float32 implementations of the model's forward (ours and a reference's, or a
    loaded copy and the trainer's) may differ on any logit: ``pair_bound`` of the logits. A wrong
    weight layout, a missing bias or a transposed matrix moves logits by 1e-2 or more."""
    return pair_bound(model, lambda m: m(tokens), tokens.shape[-1])


def parts_bound(parts: torch.Tensor, dim: int = 0) -> float:
    """How far a float32 sum of ``parts`` along ``dim`` may be from another float32 evaluation of
    the same total (one that adds the parts in another order or before a product, as the model's
    residual stream does before its unembedding): each of the two is within
    ``LAMBDA * sqrt(k) * u * sum |part|`` of the exact total, ``k`` the number of parts."""
    k = parts.shape[dim]
    return 2 * LAMBDA * math.sqrt(k) * U * parts.abs().sum(dim).max().item()


def product_bound(x: torch.Tensor, w: torch.Tensor) -> float:
    """How far two float32 evaluations of ``x @ w`` (an SAE's encoder or decoder, a probe) may
    differ: each entry of either is within ``LAMBDA * sqrt(n) * u * (|x| @ |w|)`` of the exact
    product (Higham and Mary; ``n`` the inner length)."""
    n = x.shape[-1]
    return 2 * LAMBDA * math.sqrt(n) * U * (x.double().abs() @ w.double().abs()).max().item()


def activations_bound(model, tokens: torch.Tensor, names: list[str]) -> float:
    """``pair_bound`` of the activations ``names`` of a forward of ``tokens`` (residual streams,
    neurons): how far a fast path's activations may be from TransformerLens's cached ones."""
    def acts(m) -> torch.Tensor:
        _, cache = m.run_with_cache(tokens, names_filter=lambda n: n in names)
        return torch.cat([cache[n].flatten() for n in names])
    return pair_bound(model, acts, tokens.shape[-1])
