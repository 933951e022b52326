"""Many short rows continuing one shared prefix, without a copy of the prefix per row; and whole
sequences (the rows of an empty prefix) with fused causal attention.

Scoring every legal move of a position (the board player) or reading each move's logit lens runs
a few tokens per row after the same game. TransformerLens's key-value cache repeats the prefix's
keys and values for every row and concatenates each row's own to them: for a chess position's
~40 legal moves after a 140-character game that is ~40 copies of every layer's keys and values,
and its attention layer norms each row three times (once per query, key and value input). Here
each block's attention reads the prefix's keys and values once for all rows, beside the rows' own
(scores against both, one softmax over the two); the layer norms, MLPs, embeddings and the
unembedding are the model's own TransformerLens modules, called as its forward calls them. About
half the time of ``HookedTransformer.forward`` with the repeated cache, the same numbers within
float32 rounding (tests: 1e-4 on logits, relative 1e-5).

Whole sequences (``run_whole``) are what corpus-wide activations read (probes, SAEs, the neuron
index, the lens legality chart): there the prefix is empty and each block's causal attention is
one fused ``scaled_dot_product_attention``. Both return residual streams and, for a plain MLP,
its hidden units (``mlp.hook_pre``/``hook_post``, the MLP's own forward taken step by step).

No hook function runs here: it serves passes that edit nothing, of the plain GPT architecture
``supports`` checks; everything else goes through ``HookedTransformer``.
"""

from __future__ import annotations

import weakref

import torch
import torch.nn.functional as F
from transformer_lens.components.mlps.mlp import MLP
from transformer_lens.utilities.addmm import batch_addmm

RESID_POINTS = ("hook_resid_pre", "hook_resid_mid", "hook_resid_post")
MLP_POINTS = ("hook_pre", "hook_post")  # a plain MLP's hidden units before and after its activation function
_PLAIN = {  # configuration values of the architecture computed here (a missing field: its default)
    "positional_embedding_type": "standard", "attention_dir": "causal", "parallel_attn_mlp": False, "n_key_value_heads": None,
    "use_attention_sinks": False, "use_local_attn": False, "use_qk_norm": False, "use_normalization_before_and_after": False,
    "post_embedding_ln": False, "load_in_4bit": False, "use_attn_in": False, "use_split_qkv_input": False, "dtype": torch.float32,
}
_weights: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def supports(model) -> bool:
    """Whether ``model`` is the plain causal GPT computed here: learned absolute positions,
    attention then MLP in each block, every head its own keys and values, no soft caps, float32
    (Othello-GPT, ChessGPT, our trained models). Rotary, ALiBi, grouped keys, parallel blocks,
    local windows and the like are not."""
    cfg = model.cfg
    if any(getattr(cfg, name, value) != value for name, value in _PLAIN.items()):
        return False
    if getattr(cfg, "attn_scores_soft_cap", -1.0) > 0 or getattr(cfg, "output_logits_soft_cap", -1.0) > 0:
        return False
    return "olmo" not in str(getattr(cfg, "original_architecture", "")).lower()  # post-norm blocks


def _plain_mlp(block) -> bool:
    """Whether the block's MLP is TransformerLens's plain one (no gate, no layer norm inside),
    whose hidden units are computed here as its forward computes them."""
    return type(block.mlp) is MLP and not block.cfg.is_layer_norm_activation()


def serves(model, names) -> bool:
    """Whether ``run_rows``/``run_whole`` return every hook of ``names``: residual streams, and
    the hidden units of plain MLPs (the neurons' activations)."""
    def ok(name: str) -> bool:
        parts = name.split(".")
        if len(parts) < 3 or parts[0] != "blocks" or not parts[1].isdigit() or int(parts[1]) >= model.cfg.n_layers:
            return False
        if len(parts) == 4 and parts[2] == "mlp" and parts[3] in MLP_POINTS:
            return not model.cfg.attn_only and _plain_mlp(model.blocks[int(parts[1])])
        return len(parts) == 3 and parts[2] in RESID_POINTS and not (model.cfg.attn_only and parts[2] == "hook_resid_mid")
    return all(ok(n) for n in names)


def _layer_weights(model) -> list[tuple]:
    """Per block, the query/key/value and output weights laid out as TransformerLens's own
    linear layers read them (made once per model; the weights never change)."""
    if model not in _weights:
        out = []
        for block in model.blocks:
            a = block.attn
            n_heads, d_model, d_head = a.W_Q.shape
            qkv = tuple((W.permute(0, 2, 1).reshape(n_heads * d_head, d_model).contiguous(), b.reshape(-1)) for W, b in ((a.W_Q, a.b_Q), (a.W_K, a.b_K), (a.W_V, a.b_V)))
            out.append((qkv, a.W_O.permute(2, 0, 1).reshape(d_model, n_heads * d_head).contiguous(), a.b_O, a.attn_scale))
        _weights[model] = out
    return _weights[model]


def prefix_keys(keys_values) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """``[(keys, values) (1, P, heads, d_head)]`` per layer (a one-row key-value cache's entries,
    or a cached pass's ``attn.hook_k``/``hook_v``) -> ``(heads, P, d_head)`` each, as read here."""
    return [(k[0].transpose(0, 1).contiguous(), v[0].transpose(0, 1).contiguous()) for k, v in keys_values]


def _run_blocks(model, x: torch.Tensor, attend, names, stop_at_layer: int | None = None, start_at_layer: int = 0) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """The blocks from ``start_at_layer`` to below ``stop_at_layer`` on the stream ``x (n, w,
    d_model)`` (the stream before the first of them), as TransformerLens runs them, with each
    block's attention computed by ``attend(layer, q, k, v)`` (each ``(n, w, heads, d_head)``, laid
    out by ``attend`` as its kernels read them; it returns the heads' mix in the same axes); the
    stream after the last of them and the activations named in ``names``."""
    n, w, _ = x.shape
    n_heads, d_head = model.cfg.n_heads, model.cfg.d_head
    wanted = set(names)
    acts: dict[str, torch.Tensor] = {}
    for layer, (block, (qkv, w_out, b_out, _)) in list(enumerate(zip(model.blocks, _layer_weights(model))))[start_at_layer:stop_at_layer]:
        if f"blocks.{layer}.hook_resid_pre" in wanted:
            acts[f"blocks.{layer}.hook_resid_pre"] = x
        normed = block.ln1(x)
        q, k, v = (F.linear(normed, W, b).reshape(n, w, n_heads, d_head) for W, b in qkv)
        z = attend(layer, q, k, v)
        x = x + F.linear(z.reshape(n, w, n_heads * d_head), w_out, b_out)
        if not model.cfg.attn_only:
            if f"blocks.{layer}.hook_resid_mid" in wanted:
                acts[f"blocks.{layer}.hook_resid_mid"] = x
            pre, post = f"blocks.{layer}.mlp.hook_pre", f"blocks.{layer}.mlp.hook_post"
            if pre in wanted or post in wanted:  # the MLP's forward, step by step, keeping its hidden units
                mlp = block.mlp
                acts[pre] = batch_addmm(mlp.b_in, mlp.W_in, block.ln2(x))
                acts[post] = mlp.act_fn(acts[pre])
                x = x + batch_addmm(mlp.b_out, mlp.W_out, acts[post])
            else:
                x = x + block.mlp(block.ln2(x))
        if f"blocks.{layer}.hook_resid_post" in wanted:
            acts[f"blocks.{layer}.hook_resid_post"] = x
    return x, {name: t for name, t in acts.items() if name in wanted}


@torch.inference_mode()
def run_rows(model, prefix: list[tuple[torch.Tensor, torch.Tensor]], tokens: torch.Tensor, names=()) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Logits ``(n, w, d_vocab)`` of ``tokens (n, w)``, each row continuing the prefix whose
    keys and values are ``prefix`` (``prefix_keys``), and the residual streams named in ``names``
    at the rows' positions."""
    n, w = tokens.shape
    p = prefix[0][0].shape[1]
    causal = torch.ones(w, w, dtype=torch.bool, device=tokens.device).tril()
    layers = _layer_weights(model)

    def attend(layer: int, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        """Scores against the prefix's keys (read once for every row) and the row's own, one softmax."""
        keys, values = prefix[layer]
        n_heads, _, d_head = keys.shape
        scale = layers[layer][3]
        q, k, v = (t.permute(2, 0, 1, 3) for t in (q, k, v))  # (heads, n, w, d_head)
        on_prefix = torch.bmm(q.reshape(n_heads, n * w, d_head), keys.transpose(1, 2)).reshape(n_heads, n, w, p)
        on_rows = (q @ k.transpose(-1, -2)).masked_fill(~causal, float("-inf"))
        pattern = (torch.cat([on_prefix, on_rows], -1) / scale).softmax(-1)
        z = torch.bmm(pattern[..., :p].reshape(n_heads, n * w, p), values).reshape(n_heads, n, w, d_head) + pattern[..., p:] @ v
        return z.permute(1, 2, 0, 3)

    x, acts = _run_blocks(model, model.embed(tokens) + model.pos_embed.W_pos[p : p + w], attend, names)
    if model.cfg.normalization_type is not None:
        x = model.ln_final(x)
    return model.unembed(x), acts


def _causal_attend(model):
    """Attention over a whole sequence from its first position: one fused causal
    ``scaled_dot_product_attention`` call per block (no scores or pattern kept)."""
    layers = _layer_weights(model)

    def attend(layer: int, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        q, k, v = (t.transpose(1, 2) for t in (q, k, v))  # (n, heads, w, d_head)
        return F.scaled_dot_product_attention(q, k, v, is_causal=True, scale=1.0 / float(layers[layer][3])).transpose(1, 2)

    return attend


@torch.inference_mode()
def run_whole(model, tokens: torch.Tensor, names, stop_at_layer: int | None = None) -> dict[str, torch.Tensor]:
    """The residual streams named in ``names`` for whole sequences ``tokens (n, T)`` from their
    first position: the rows of an empty prefix, whose causal attention is one fused
    ``scaled_dot_product_attention`` call instead of TransformerLens's masked scores, pattern and
    mix (about twice as fast on a CPU for corpus-wide activations: probes, SAEs, indexes). Runs
    the blocks below ``stop_at_layer`` only; no unembedding."""
    return _run_blocks(model, model.embed(tokens) + model.pos_embed.W_pos[: tokens.shape[1]], _causal_attend(model), names, stop_at_layer)[1]


def _logits(model, x: torch.Tensor) -> torch.Tensor:
    if model.cfg.normalization_type is not None:
        x = model.ln_final(x)
    return model.unembed(x)


@torch.inference_mode()
def cached_pass(model, tokens: torch.Tensor, names, stop_at_layer: int | None = None) -> dict[str, torch.Tensor]:
    """The activations named in ``names`` for whole sequences ``tokens`` (on the model's device):
    from ``run_whole`` where ``supports`` and ``serves`` allow, else from TransformerLens's cached
    pass. The one place corpus-wide readers (``ModelHandle.activations``, the lens legality
    chart) choose between the two."""
    wanted = set(names)
    if supports(model) and serves(model, wanted):
        return run_whole(model, tokens.to(model.cfg.device), wanted, stop_at_layer=stop_at_layer)
    return dict(model.run_with_cache(tokens, names_filter=lambda name: name in wanted, stop_at_layer=stop_at_layer)[1].items())


@torch.inference_mode()
def forward_whole(model, tokens: torch.Tensor, names=()) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Logits ``(n, T, d_vocab)`` of whole sequences and the activations named in ``names``,
    computed as ``run_whole`` computes them (so the logit lens's last point, read from its
    residual streams, is these logits exactly)."""
    x, acts = _run_blocks(model, model.embed(tokens) + model.pos_embed.W_pos[: tokens.shape[1]], _causal_attend(model), names)
    return _logits(model, x), acts


@torch.inference_mode()
def forward_from(model, resid: torch.Tensor, start_at_layer: int) -> torch.Tensor:
    """Logits of whole sequences whose residual stream before block ``start_at_layer`` is
    ``resid (n, T, d_model)`` (an SAE's splice, an ablation): the blocks below are not run."""
    return _logits(model, _run_blocks(model, resid, _causal_attend(model), (), start_at_layer=start_at_layer)[0])
