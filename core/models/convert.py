"""Weight layouts in and out of TransformerLens: every TL-specific name lives in core/models/."""

from __future__ import annotations

import warnings

import torch

from core.models.gpt import GPT, GPTConfig


def build_hooked_transformer(config: dict, device: str = "cpu", init_weights: bool = True):
    """An untrained ``HookedTransformer`` for a config dict (our JSON or a published one).

    ``init_weights=False`` leaves the parameters unset, for a loader that then fills every one of
    them and checks that it did (``bundle.load_weights``): drawing 135M random weights only to
    overwrite them took 2 s of SmolLM2's load."""
    with warnings.catch_warnings():
        # HookedTransformer is deprecated in favour of TL 4's TransformerBridge; see DESIGN.md §4.
        warnings.simplefilter("ignore")
        from transformer_lens import HookedTransformer, HookedTransformerConfig

        cfg = HookedTransformerConfig(**{**config, "device": device, "init_weights": init_weights})
        model = HookedTransformer(cfg)
    return model


def tl_config_for(cfg: GPTConfig) -> dict:
    """The HookedTransformerConfig fields describing a ``GPT`` (JSON-serialisable)."""
    return {
        "n_layers": cfg.n_layers,
        "d_model": cfg.d_model,
        "d_head": cfg.d_head,
        "n_heads": cfg.n_heads,
        "d_mlp": cfg.d_mlp,
        "d_vocab": cfg.d_vocab,
        "n_ctx": cfg.n_ctx,
        "act_fn": "gelu",
        "normalization_type": "LN",
        "eps": cfg.layer_norm_eps,
        "attn_only": False,
        "positional_embedding_type": "standard",
        "original_architecture": "boardlens-gpt",
    }


def gpt_to_tl_state_dict(model: GPT) -> dict[str, torch.Tensor]:
    """Map ``GPT`` weights onto HookedTransformer parameter names and shapes."""
    cfg = model.cfg
    h, dh, d = cfg.n_heads, cfg.d_head, cfg.d_model
    sd = {
        "embed.W_E": model.embed.weight,
        "pos_embed.W_pos": model.pos_embed.weight,
        "ln_final.w": model.ln_final.weight,
        "ln_final.b": model.ln_final.bias,
        "unembed.W_U": model.unembed.weight.T,
        "unembed.b_U": model.unembed.bias,
    }
    for i, block in enumerate(model.blocks):
        p = f"blocks.{i}."
        w_q, w_k, w_v = block.qkv.weight.view(3, h, dh, d).transpose(2, 3)  # each (h, d, dh)
        b_q, b_k, b_v = block.qkv.bias.view(3, h, dh)
        sd.update(
            {
                p + "ln1.w": block.ln1.weight,
                p + "ln1.b": block.ln1.bias,
                p + "ln2.w": block.ln2.weight,
                p + "ln2.b": block.ln2.bias,
                p + "attn.W_Q": w_q,
                p + "attn.W_K": w_k,
                p + "attn.W_V": w_v,
                p + "attn.b_Q": b_q,
                p + "attn.b_K": b_k,
                p + "attn.b_V": b_v,
                p + "attn.W_O": block.attn_out.weight.T.reshape(h, dh, d),
                p + "attn.b_O": block.attn_out.bias,
                p + "mlp.W_in": block.mlp_in.weight.T,
                p + "mlp.b_in": block.mlp_in.bias,
                p + "mlp.W_out": block.mlp_out.weight.T,
                p + "mlp.b_out": block.mlp_out.bias,
            }
        )
    return {k: v.detach().float().contiguous().clone() for k, v in sd.items()}


def tl_to_gpt_state_dict(weights: dict[str, torch.Tensor], cfg: GPTConfig) -> dict[str, torch.Tensor]:
    """The inverse of ``gpt_to_tl_state_dict``: HookedTransformer weights as a ``GPT`` state dict,
    so a bundled model can be trained further (its checkpoint, with the optimiser, is not shipped)."""
    h, dh, d = cfg.n_heads, cfg.d_head, cfg.d_model
    sd = {
        "embed.weight": weights["embed.W_E"],
        "pos_embed.weight": weights["pos_embed.W_pos"],
        "ln_final.weight": weights["ln_final.w"],
        "ln_final.bias": weights["ln_final.b"],
        "unembed.weight": weights["unembed.W_U"].T,
        "unembed.bias": weights["unembed.b_U"],
    }
    for i in range(cfg.n_layers):
        p, q = f"blocks.{i}.", f"blocks.{i}.attn."
        qkv = torch.stack([weights[q + "W_Q"], weights[q + "W_K"], weights[q + "W_V"]])  # (3, h, d, dh)
        sd.update(
            {
                p + "ln1.weight": weights[p + "ln1.w"],
                p + "ln1.bias": weights[p + "ln1.b"],
                p + "ln2.weight": weights[p + "ln2.w"],
                p + "ln2.bias": weights[p + "ln2.b"],
                p + "qkv.weight": qkv.transpose(2, 3).reshape(3 * d, d),
                p + "qkv.bias": torch.stack([weights[q + "b_Q"], weights[q + "b_K"], weights[q + "b_V"]]).reshape(3 * d),
                p + "attn_out.weight": weights[q + "W_O"].reshape(h * dh, d).T,
                p + "attn_out.bias": weights[q + "b_O"],
                p + "mlp_in.weight": weights[p + "mlp.W_in"].T,
                p + "mlp_in.bias": weights[p + "mlp.b_in"],
                p + "mlp_out.weight": weights[p + "mlp.W_out"].T,
                p + "mlp_out.bias": weights[p + "mlp.b_out"],
            }
        )
    return {k: v.detach().float().contiguous().clone() for k, v in sd.items()}
