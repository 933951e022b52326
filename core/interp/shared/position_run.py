"""One forward pass of a game with every activation cached: the views of one position (lens,
attribution, attention, probes) read this pass instead of one pass each."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from core.interp.shared.predictions import game_tokens
from core.models.handle import ModelHandle


@dataclass
class PositionRun:
    """One forward pass of a game with every activation cached. The lens page's views (lens,
    attribution, gap by position, attention) read this one pass instead of four of their own."""

    tokens: torch.Tensor  # (1, pos)
    logits: torch.Tensor  # (1, pos, d_vocab)
    cache: object  # transformer_lens ActivationCache


def run_position(handle: ModelHandle, moves: tuple[int, ...]) -> PositionRun:
    tokens = game_tokens(moves, handle.game)
    with handle.session() as model, torch.inference_mode():
        logits, cache = model.run_with_cache(tokens)
    return PositionRun(tokens, logits, cache)
