"""The attribution graph of one input: direct effects between transcoder features, error terms,
input tokens and targets in the *local* replacement model.

In the local replacement every MLP's output is its transcoder's features' decoded output, plus
the error term (the MLP's true output minus the transcoder's), plus the skip connection; with
attention patterns and LayerNorm scales frozen at the real run, everything from the residual
stream to a feature's pre-activation or a target's value is linear, so each node's input is
exactly a sum of direct effects from earlier nodes plus constant terms (biases, positional
embeddings). An edge s → t is ``⟨vector s writes, gradient of t's input at that point⟩``, the
gradient taken through the frozen paths only (the skip connection included), as circuit-tracer
computes it (Ameisen et al. 2025).

The gradients come from a backward pass written out for the frozen model (``frozen_backward``)
rather than autograd over copies of the input: with the patterns and scales fixed, the pass
through a block is two matrix products per head and a centring, so a batch of 512 targets costs
about what one forward pass of 512 positions would, and the shared model is never hooked. The
constant terms come out of the same pass, so every row states its bias and ``edges + bias``
equals the node's input in the real run (a test checks it).

The node order is circuit-tracer's: features (sorted by layer, position, feature), error nodes
(``layer × n_pos + pos``), token nodes (one per position), targets. Features and errors before
``first`` are not nodes: their effects count as constants (how long inputs stay bounded, and how
circuit-tracer treats its first position).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import torch

from core.interp.circuits.frozen import FrozenRun, frozen_backward, real_run
from core.interp.circuits.targets import Target
from core.models.handle import ModelHandle


@dataclass
class AttributionGraph:
    tokens: np.ndarray  # (n_pos,) the input
    first: int  # first position whose features and errors are nodes
    n_layers: int
    features: np.ndarray  # (n_features, 3) int: layer, position, feature id
    activations: np.ndarray  # (n_features,)
    targets: list[Target]
    target_values: np.ndarray  # (n_targets,) each target's input in the real run
    edges: torch.Tensor  # (n_features + n_targets, n_nodes): rows of the features, then of the targets
    bias: np.ndarray  # (n_features + n_targets,) each row's constant terms
    error_norms: np.ndarray  # (n_layers, n_pos) size of each error term
    seconds: float = 0.0
    start: int = 0  # first position with any node (tokens before it are constants too)
    extra: dict = field(default_factory=dict)

    @property
    def n_pos(self) -> int:
        return len(self.tokens)

    @property
    def n_features(self) -> int:
        return len(self.features)

    @property
    def n_nodes(self) -> int:
        return self.n_features + (self.n_layers + 1) * self.n_pos + len(self.targets)

    def error_index(self, layer: int, pos: int) -> int:
        return self.n_features + layer * self.n_pos + pos

    def token_index(self, pos: int) -> int:
        return self.n_features + self.n_layers * self.n_pos + pos

    def target_index(self, i: int) -> int:
        return self.n_features + (self.n_layers + 1) * self.n_pos + i

    def adjacency(self) -> torch.Tensor:
        """The full ``(n_nodes, n_nodes)`` matrix ``A[target, source]`` (error and token rows zero)."""
        full = torch.zeros(self.n_nodes, self.n_nodes, dtype=self.edges.dtype)
        full[: self.n_features] = self.edges[: self.n_features]
        full[self.target_index(0) :] = self.edges[self.n_features :]
        return full

    def kind(self, node: int) -> str:
        if node < self.n_features:
            return "feature"
        if node < self.token_index(0):
            return "error"
        return "token" if node < self.target_index(0) else "target"

    def row_inputs(self) -> np.ndarray:
        """What each row's edges and bias add up to: a feature's pre-activation, a target's value."""
        return self.edges.sum(1).numpy() + self.bias


def active_features(run: FrozenRun, transcoders: dict[int, object], first: int) -> tuple[np.ndarray, np.ndarray, list[torch.Tensor]]:
    """(features (n, 3): layer, position, id; activations; per-layer error vectors (n_pos, d)),
    zero before ``first``."""
    rows, values, errors = [], [], []
    with torch.no_grad():
        for layer, x in enumerate(run.mlp_in):
            tc = transcoders[layer]
            acts = tc.encode(x).float()
            acts[:first] = 0
            pos, feat = torch.nonzero(acts, as_tuple=True)
            rows.append(np.stack([np.full(len(pos), layer), pos.numpy(), feat.numpy()], axis=1))
            values.append(acts[pos, feat].numpy())
            error = run.constants[layer] - acts @ tc.W_dec.float() - tc.b_dec.float()
            error[:first] = 0
            errors.append(error)
    return np.concatenate(rows).astype(np.int64), np.concatenate(values).astype(np.float32), errors


def count_active(handle: ModelHandle, tokens: torch.Tensor, transcoders: dict[int, object]) -> np.ndarray:
    """Active transcoder features per position (summed over layers): what choosing ``first`` needs."""
    run = real_run(handle, torch.as_tensor(tokens, dtype=torch.int64), transcoders)
    with torch.no_grad():
        return sum((transcoders[layer].encode(x) > 0).sum(-1).numpy() for layer, x in enumerate(run.mlp_in))


class _Sources:
    """Everything that writes into the residual stream, laid out for fast edge reading: per layer
    a ``(n_pos, K, d)`` block of active features' ``activation × decoder row`` (padded to the
    position with most, ``K``) and the column each slot is."""

    def __init__(self, feats: np.ndarray, acts: np.ndarray, transcoders: dict[int, object], errors: list[torch.Tensor], embeds: torch.Tensor, n_layers: int, n_pos: int):
        self.errors, self.embeds, self.n_pos = errors, embeds, n_pos
        self.error_start = len(feats)
        self.token_start = len(feats) + n_layers * n_pos
        d = embeds.shape[-1]
        self.blocks: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None] = []
        for layer in range(n_layers):
            idx = np.nonzero(feats[:, 0] == layer)[0]
            if not len(idx):
                self.blocks.append(None)
                continue
            pos = feats[idx, 1]
            counts = np.bincount(pos, minlength=n_pos)
            slot = np.arange(len(idx)) - np.concatenate([[0], np.cumsum(counts)])[pos]  # rank within its position
            k = int(counts.max())
            dec = torch.zeros(n_pos, k, d)
            cols = torch.full((n_pos, k), -1, dtype=torch.int64)
            w = transcoders[layer].W_dec.detach().float()[torch.as_tensor(feats[idx, 2])] * torch.from_numpy(acts[idx])[:, None]
            dec[pos, slot] = w
            cols[pos, slot] = torch.as_tensor(idx)
            self.blocks.append((dec, cols, cols >= 0))

    @torch.no_grad()
    def write(self, block: torch.Tensor, grad_mlp_out: list[torch.Tensor | None], grad_embed: torch.Tensor, a: int) -> None:
        """Edges of a batch of rows from the gradients at each MLP's output and at the embedding,
        over positions ``a`` to ``a + width``."""
        n = a + grad_embed.shape[1]
        for layer, g in enumerate(grad_mlp_out):
            if g is None:
                continue
            if self.blocks[layer] is not None:
                dec, cols, valid = self.blocks[layer]
                scores = torch.bmm(g.transpose(0, 1), dec[a:n].transpose(1, 2)).permute(1, 0, 2)  # (rows, pos, K)
                keep = valid[a:n]
                block[:, cols[a:n][keep]] = scores[:, keep]
            start = self.error_start + layer * self.n_pos
            block[:, start + a : start + n] = torch.einsum("bpd,pd->bp", g, self.errors[layer][a:n])
        block[:, self.token_start + a : self.token_start + n] = torch.einsum("bpd,pd->bp", grad_embed, self.embeds[a:n])


def attribute(handle: ModelHandle, tokens: torch.Tensor, transcoders: dict[int, object], targets: list[Target], first: int = 0, batch_size: int = 128, start: int = 0) -> AttributionGraph:
    """The unpruned attribution graph of ``tokens (n_pos,)`` to ``targets``: feature and error
    nodes from position ``first``, token nodes from ``start`` (``start <= first``; what comes
    before counts as constants)."""
    t0 = time.perf_counter()
    tokens = torch.as_tensor(tokens, dtype=torch.int64).cpu()
    n_layers, n_pos = handle.cfg.n_layers, len(tokens)
    if not 0 <= start <= first < n_pos:
        raise ValueError(f"need 0 <= start <= first < {n_pos}, got start {start}, first {first}")
    if any(not start <= p < n_pos for t in targets for _, p, _ in t.parts):
        raise ValueError("a target reads a position outside the attributed window")
    run = real_run(handle, tokens, transcoders, first, start)
    feats, acts, errors = active_features(run, transcoders, first)
    n_f = len(feats)
    sources = _Sources(feats, acts, transcoders, errors, run.embed, n_layers, n_pos)
    n_nodes = n_f + (n_layers + 1) * n_pos + len(targets)
    rows = torch.zeros(n_f + len(targets), n_nodes)
    bias = np.zeros(n_f + len(targets), dtype=np.float32)
    # every row: (layer it reads, last position it reads, injection parts); targets after the features
    encoders = {layer: transcoders[layer].W_enc.detach().float().T for layer in range(n_layers)}  # (d_transcoder, d): one row per feature
    jobs = [(int(layer), int(pos), [(f"mlp_in.{layer}", int(pos), encoders[int(layer)][int(f)])]) for layer, pos, f in feats]
    for t in targets:
        jobs.append((t.depth(n_layers), max(p for _, p, _ in t.parts), t.parts))
    order = sorted(range(len(jobs)), key=lambda i: (jobs[i][0], jobs[i][1]))
    for begin in range(0, len(order), batch_size):
        chunk = order[begin : begin + batch_size]
        last = max(jobs[i][1] for i in chunk) + 1
        back = frozen_backward(run, [jobs[i][2] for i in chunk], last)
        block = torch.zeros(len(chunk), n_nodes)
        sources.write(block, back.grad_mlp_out, back.grad_embed, start)
        rows[torch.as_tensor(chunk)] = block
        bias[np.array(chunk)] = back.bias
    for layer in range(n_layers):
        idx = np.nonzero(feats[:, 0] == layer)[0]
        bias[idx] += transcoders[layer].b_enc.detach().float().numpy()[feats[idx, 2]]
    values = np.array([run.target_value(t) for t in targets], dtype=np.float32)
    error_norms = torch.stack([e.norm(dim=-1) for e in errors]).numpy()
    return AttributionGraph(tokens.numpy(), first, n_layers, feats, acts, list(targets), values, rows, bias, error_norms, time.perf_counter() - t0, start)
