"""A plain PyTorch GPT with exactly the computation of a TransformerLens ``HookedTransformer``.

Training runs on this module because it is faster on CPU (fused QKV projection, one batched
matmul-softmax attention, bf16 autocast); ``core.models.convert`` maps its weights onto a
``HookedTransformer`` (standard positional embedding, pre-LN blocks with LayerNorm, exact GELU,
causal attention scaled by 1/sqrt(d_head), unembedding with bias), so the exported model computes
the same logits.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn


@dataclass
class GPTConfig:
    n_layers: int
    d_model: int
    n_heads: int
    d_mlp: int
    d_vocab: int
    n_ctx: int
    layer_norm_eps: float = 1e-5

    @property
    def d_head(self) -> int:
        return self.d_model // self.n_heads

    def to_dict(self) -> dict:
        return asdict(self)


class Block(nn.Module):
    def __init__(self, cfg: GPTConfig):
        super().__init__()
        self.cfg = cfg
        self.ln1 = nn.LayerNorm(cfg.d_model, eps=cfg.layer_norm_eps)
        self.qkv = nn.Linear(cfg.d_model, 3 * cfg.d_model)
        self.attn_out = nn.Linear(cfg.d_model, cfg.d_model)
        self.ln2 = nn.LayerNorm(cfg.d_model, eps=cfg.layer_norm_eps)
        self.mlp_in = nn.Linear(cfg.d_model, cfg.d_mlp)
        self.mlp_out = nn.Linear(cfg.d_mlp, cfg.d_model)
        # Additive causal mask. Explicit attention beats ``scaled_dot_product_attention`` here: on
        # a CPU with bf16 units its kernel is ~2x slower under bf16 autocast for contexts of a few dozen tokens.
        mask = torch.full((cfg.n_ctx, cfg.n_ctx), float("-inf")).triu(1)
        self.register_buffer("causal_mask", mask, persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x``: (batch, pos, d_model) -> same shape."""
        b, p, _ = x.shape
        h, dh = self.cfg.n_heads, self.cfg.d_head
        q, k, v = self.qkv(self.ln1(x)).view(b, p, 3, h, dh).permute(2, 0, 3, 1, 4)
        scores = (q @ k.transpose(-2, -1)) * dh**-0.5 + self.causal_mask[:p, :p]
        z = scores.softmax(-1) @ v
        x = x + self.attn_out(z.transpose(1, 2).reshape(b, p, h * dh))
        return x + self.mlp_out(F.gelu(self.mlp_in(self.ln2(x))))


class GPT(nn.Module):
    def __init__(self, cfg: GPTConfig):
        super().__init__()
        self.cfg = cfg
        self.embed = nn.Embedding(cfg.d_vocab, cfg.d_model)
        self.pos_embed = nn.Embedding(cfg.n_ctx, cfg.d_model)
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.n_layers))
        self.ln_final = nn.LayerNorm(cfg.d_model, eps=cfg.layer_norm_eps)
        self.unembed = nn.Linear(cfg.d_model, cfg.d_vocab)
        self.apply(self._init)

    @staticmethod
    def _init(module: nn.Module) -> None:
        # GPT-2 style: small normal weights, zero biases.
        if isinstance(module, (nn.Linear, nn.Embedding)):
            nn.init.normal_(module.weight, std=0.02)
        if isinstance(module, nn.Linear) and module.bias is not None:
            nn.init.zeros_(module.bias)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """``tokens``: int (batch, pos) -> logits (batch, pos, d_vocab)."""
        pos = torch.arange(tokens.shape[1], device=tokens.device)
        x = self.embed(tokens) + self.pos_embed(pos)
        for block in self.blocks:
            x = block(x)
        return self.unembed(self.ln_final(x))

    def n_params(self) -> int:
        return sum(p.numel() for p in self.parameters())
