"""What the transcoder trainer and its joint fine-tune share: which hooks a layer's transcoder
reads and writes, the seed base of its games, and BatchTopK's selection."""

from __future__ import annotations

import torch

TRANSCODER_SEED_BASE = 5_000_011  # game seeds for transcoder activations (not the model's, the probes' or the SAEs')


def hooks_of(layer: int) -> tuple[str, str]:
    """(input, output) hooks of layer ``layer``'s MLP."""
    return f"blocks.{layer}.ln2.hook_normalized", f"blocks.{layer}.hook_mlp_out"


def batch_topk(pre: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(activations, smallest kept value): ReLU of ``pre (tokens, d)``, then only the batch's
    ``k × tokens`` largest values kept."""
    acts = torch.relu(pre)
    flat = acts.flatten()
    keep = min(k * pre.shape[0], flat.numel())
    values, index = flat.topk(keep, sorted=False)
    kept = torch.zeros_like(flat).scatter(0, index, values).view_as(acts)
    positive = values[values > 0]
    return kept, (positive.min().detach() if len(positive) else torch.zeros((), dtype=pre.dtype))


@torch.no_grad()
def unit_decoder_rows(tc) -> None:
    """Decoder rows back to norm 1 (BatchTopK ranks activations, so their scale must mean the same
    for every feature)."""
    tc.W_dec.div_(tc.W_dec.norm(dim=1, keepdim=True).clamp(min=1e-8))
