"""Per-token views of any model's forward pass: next-token tables, the lens as top tokens, DLA.

Everything here takes token ids and returns tensors or arrays: the same functions serve a text
model's prompt and any other token sequence. How a token is shown (a span of text) is the page's
business, through the model's tokenizer.
"""

from __future__ import annotations


import numpy as np

from core.interp.lens.logit_lens import Attribution, attribute, logit_lens
from core.interp.shared.position_run import PositionRun
from core.models.handle import ModelHandle


def lens_top_tokens(handle: ModelHandle, run: PositionRun, k: int = 1, incl_mid: bool = False) -> tuple[list[str], np.ndarray, np.ndarray]:
    """``(labels, ids (points, pos, k), probs (points, pos, k))``: the top next tokens after each
    layer (the logit lens) at every position; the last point is the model's own output."""
    labels, logits = logit_lens(handle, run.tokens, incl_mid=incl_mid, run=run)
    probs = logits[:, 0].float().softmax(-1)
    top = probs.topk(k, dim=-1)
    return labels, top.indices.numpy(), top.values.numpy()


def lens_token_probs(handle: ModelHandle, run: PositionRun, token: int, incl_mid: bool = False) -> np.ndarray:
    """``(points, pos)``: one token's probability after each layer at every position."""
    _, logits = logit_lens(handle, run.tokens, incl_mid=incl_mid, run=run)
    return logits[:, 0].float().softmax(-1)[..., token].numpy()


def attribute_tokens(handle: ModelHandle, run: PositionRun, position: int) -> Attribution:
    """DLA of every part of the final residual at ``position`` of the run's tokens."""
    return attribute(handle, (), position, run=run)
