"""The local replacement model's backward pass, written out.

With attention patterns and LayerNorm scales frozen at the real run and each MLP replaced by
``skip(x) + constant`` (the constant: its transcoder's decoded features plus its error term),
the map from anything written into the residual stream to a feature's pre-activation or a
target is linear. Its transpose through block ``L`` is:

- MLP: the gradient at the MLP's output is the residual gradient ``G``; it reaches the residual
  stream before the MLP through the skip connection and the frozen LayerNorm:
  ``G += centre(G W_skip + injections at L's transcoder input) / σ₂``;
- attention: per head, back through ``W_O``, the frozen pattern (transposed), ``W_V`` and
  LayerNorm 1's weight: ``G += centre(Σ_h Aₕᵀ G W_Oₕᵀ W_Vₕᵀ ⊙ w₁) / σ₁``.

A window can start late (``start``): positions before it are no nodes at all, their values
are constants, and the pass never visits them (information only moves to later positions, so
nothing after the window's start depends on them except through those constants). That keeps
long inputs cheap: the cost grows with the window, not the game.

Each constant the forward pass adds (positional embeddings, attention's output bias and its
value bias through the pattern — a pattern's rows sum to 1 —, transcoder decoder biases, the
features and errors before the first attributed position, the final LayerNorm's bias) is dotted
with the gradient where it is added: that is each row's bias. This supports the architecture
our models and the published board-game checkpoints share (LayerNorm, learned positional
embeddings, attention then MLP); ``real_run`` refuses others with a clear message.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from core.models.handle import ModelHandle


@dataclass
class FrozenRun:
    """What the real run leaves for the frozen one (float32 on the CPU)."""

    mlp_in: list[torch.Tensor]  # per layer (n_pos, d): each transcoder's input
    constants: list[torch.Tensor]  # per layer (n_pos, d): MLP output minus the skip connection
    resid_post: list[torch.Tensor]
    unembed_in: torch.Tensor  # (n_pos, d)
    embed: torch.Tensor  # (n_pos, d): the token embeddings
    logits: torch.Tensor  # (n_pos, d_vocab)
    sigma1: list[torch.Tensor]  # per layer (n_pos, 1)
    sigma2: list[torch.Tensor]
    sigma_final: torch.Tensor
    patterns: list[torch.Tensor]  # per layer (n_heads, n_pos, n_pos)
    weights: dict  # per-layer and global weights
    first: int  # features and errors before it are constants
    start: int = 0  # the window: positions before it are constants and never visited

    def site(self, name: str) -> torch.Tensor:
        if name == "final":
            return self.unembed_in
        kind, layer = name.split(".")
        return (self.mlp_in if kind == "mlp_in" else self.resid_post)[int(layer)]

    def target_value(self, target) -> float:
        """A target's input in the real run: the sum of its parts' dot products."""
        return float(sum(float(self.site(site)[pos] @ vec) for site, pos, vec in target.parts))


def _check_architecture(cfg) -> None:
    problems = []
    if cfg.normalization_type not in ("LN", "LNPre"):
        problems.append(f"normalization {cfg.normalization_type}")
    if cfg.positional_embedding_type != "standard":
        problems.append(f"{cfg.positional_embedding_type} positional embeddings")
    if cfg.parallel_attn_mlp or cfg.attn_only:
        problems.append("parallel or attention-only blocks")
    if getattr(cfg, "n_key_value_heads", None):
        problems.append("grouped-query attention")
    if problems:
        raise ValueError("attribution graphs need LayerNorm, learned positional embeddings and attention-then-MLP blocks; this model has " + ", ".join(problems))


@torch.no_grad()
def real_run(handle: ModelHandle, tokens: torch.Tensor, transcoders: dict[int, object], first: int = 0, start: int = 0) -> FrozenRun:
    """One forward pass of ``tokens (n_pos,)`` keeping what the frozen pass needs, for a window
    from ``start`` (``start <= first``)."""
    cfg = handle.cfg
    _check_architecture(cfg)
    n = cfg.n_layers
    per_layer = ("ln1.hook_scale", "ln2.hook_scale", "attn.hook_pattern", "attn.hook_v", "ln2.hook_normalized", "hook_mlp_out", "hook_resid_post")
    names = {"hook_embed", "ln_final.hook_scale", "unembed.hook_in"} | {f"blocks.{layer}.{h}" for layer in range(n) for h in per_layer}
    logits, cache = handle.run_with_cache(tokens[None].to(handle.device), names_filter=lambda name: name in names)
    got = {k: v[0].detach().float().cpu().clone() for k, v in cache.items()}
    model = handle.model

    def w(t):
        return t.detach().float().cpu()

    def norm_weights(ln, d):
        has = cfg.normalization_type == "LN"
        return (w(ln.w) if has else torch.ones(d)), (w(ln.b) if has else torch.zeros(d))

    d = cfg.d_model
    layers = []
    for layer in range(n):
        block = model.blocks[layer]
        w1, b1 = norm_weights(block.ln1, d)
        W_V, b_V, W_O, b_O = w(block.attn.W_V), w(block.attn.b_V), w(block.attn.W_O), w(block.attn.b_O)  # (heads, d, d_head), (heads, d_head, d)
        # what attention adds at each query whatever the window's values: its output bias, the
        # value bias (and LayerNorm 1's bias) weighted by the pattern's mass inside the window,
        # and the values read from before the window
        pattern = got[f"blocks.{layer}.attn.hook_pattern"]  # (heads, q, k)
        inside = pattern[:, :, start:].sum(-1)  # (heads, q)
        value_bias = (b1 @ W_V) + b_V  # (heads, d_head)
        before = torch.einsum("hqk,khe->qhe", pattern[:, :, :start], got[f"blocks.{layer}.attn.hook_v"][:start])
        attn_const = torch.einsum("qhe,hed->qd", inside[..., None].transpose(0, 1) * value_bias[None] + before, W_O) + b_O  # (q, d)
        tc = transcoders[layer]
        layers.append({"w1": w1, "W_V_flat": W_V.permute(0, 2, 1).reshape(-1, d), "W_O_flat": W_O.reshape(-1, d), "attn_const": attn_const, "W_skip": w(tc.W_skip), "b_dec": w(tc.b_dec)})
    wf, bf = norm_weights(model.ln_final, d)
    mlp_in = [got[f"blocks.{layer}.ln2.hook_normalized"] for layer in range(n)]
    constants = [got[f"blocks.{layer}.hook_mlp_out"] - mlp_in[layer] @ layers[layer]["W_skip"].T for layer in range(n)]
    n_pos = len(tokens)
    return FrozenRun(
        mlp_in=mlp_in, constants=constants, resid_post=[got[f"blocks.{layer}.hook_resid_post"] for layer in range(n)],
        unembed_in=got["unembed.hook_in"], embed=got["hook_embed"], logits=logits[0].detach().float().cpu(),
        sigma1=[got[f"blocks.{layer}.ln1.hook_scale"] for layer in range(n)], sigma2=[got[f"blocks.{layer}.ln2.hook_scale"] for layer in range(n)],
        sigma_final=got["ln_final.hook_scale"], patterns=[got[f"blocks.{layer}.attn.hook_pattern"] for layer in range(n)],
        weights={"layers": layers, "w_final": wf, "b_final": bf, "W_pos": w(model.W_pos)[:n_pos]}, first=first, start=start,
    )


@dataclass
class Backward:
    grad_mlp_out: list[torch.Tensor | None]  # per layer (rows, n, d), None above every row
    grad_embed: torch.Tensor  # (rows, n, d)
    bias: np.ndarray  # (rows,)


def _centre(x: torch.Tensor) -> torch.Tensor:
    return x - x.mean(-1, keepdim=True)


def _injections(parts_per_row: list[list[tuple[str, int, torch.Tensor]]], n: int, d: int) -> dict[str, torch.Tensor]:
    """``{site: (rows, n, d)}``: each row's injected vectors at its positions."""
    out: dict[str, torch.Tensor] = {}
    for b, parts in enumerate(parts_per_row):
        for site, pos, vec in parts:
            if site not in out:
                out[site] = torch.zeros(len(parts_per_row), n, d)
            out[site][b, pos] += vec
    return out


@torch.no_grad()
def frozen_backward(run: FrozenRun, parts_per_row: list[list[tuple[str, int, torch.Tensor]]], n: int) -> Backward:
    """Gradients of each row's input (the sum of its parts' dot products) with respect to every
    MLP's output and the token embeddings over the window's positions ``start..n-1`` (index 0
    is ``start``), and each row's bias."""
    layers = run.weights["layers"]
    n_layers, d = len(layers), run.embed.shape[-1]
    n_heads = run.patterns[0].shape[0]
    a = run.start
    w = n - a  # the window's width
    rows = len(parts_per_row)
    inj = _injections([[(site, pos - a, vec) for site, pos, vec in parts] for parts in parts_per_row], w, d)
    G = torch.zeros(rows, w, d)
    bias = torch.zeros(rows)
    if "final" in inj:
        G = G + _centre(inj["final"] * run.weights["w_final"]) / run.sigma_final[a:n]
        bias += torch.einsum("bpd,d->b", inj["final"], run.weights["b_final"])
    top = max((n_layers if site == "final" else int(site.split(".")[1]) for site in inj), default=-1)
    grads: list[torch.Tensor | None] = [None] * n_layers
    for layer in range(min(top, n_layers - 1), -1, -1):
        lw = layers[layer]
        if f"resid_post.{layer}" in inj:
            G = G + inj[f"resid_post.{layer}"]
        grads[layer] = G
        const = lw["b_dec"].expand(w, d).clone()
        if run.first > a:  # features and errors inside the window but before the first node
            const[: min(run.first, n) - a] = run.constants[layer][a : min(run.first, n)]
        bias += torch.einsum("bpd,pd->b", G, const)
        g_x = G @ lw["W_skip"]
        if f"mlp_in.{layer}" in inj:
            g_x = g_x + inj[f"mlp_in.{layer}"]
        G = G + _centre(g_x) / run.sigma2[layer][a:n]
        bias += torch.einsum("bpd,pd->b", G, lw["attn_const"][a:n])
        g_z = (G @ lw["W_O_flat"].T).view(rows, w, n_heads, -1).permute(2, 1, 0, 3).reshape(n_heads, w, -1)  # (heads, q, rows·d_head)
        g_v = torch.bmm(run.patterns[layer][:, a:n, a:n].transpose(1, 2), g_z)  # to the keys: (heads, k, rows·d_head)
        g_ln = g_v.view(n_heads, w, rows, -1).permute(2, 1, 0, 3).reshape(rows, w, -1) @ lw["W_V_flat"]
        G = G + _centre(g_ln * lw["w1"]) / run.sigma1[layer][a:n]
    bias += torch.einsum("bpd,pd->b", G, run.weights["W_pos"][a:n])
    return Backward(grads, G, bias.numpy())
