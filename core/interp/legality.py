"""Legal-move metrics of next-move logits, defined once for trainer, evaluation and lens."""

from __future__ import annotations

import numpy as np
import torch

from core.games import othello


def legal_token_mask(legal_next: np.ndarray, size: int) -> np.ndarray:
    """``bool (..., size*size)`` legal squares -> ``bool (..., d_vocab)`` legal tokens (pad never)."""
    squares = othello.tokens_to_squares(np.arange(1, othello.vocab_size(size)), size)
    mask = np.zeros(legal_next.shape[:-1] + (othello.vocab_size(size),), dtype=bool)
    mask[..., 1:] = legal_next[..., squares]
    return mask


def model_inputs(games: np.ndarray, size: int) -> tuple[torch.Tensor, np.ndarray, np.ndarray]:
    """Tokens a next-move model reads, and per position the legal next tokens and a validity mask.

    Position t holds move t; the model's output there predicts move t+1. A position counts only
    while the game goes on after move t. Returns ``tokens (n, ctx)``, ``legal (n, ctx, d_vocab)``,
    ``valid (n, ctx)``.
    """
    ctx = othello.context_length(size)
    games = np.asarray(games)[:, :ctx]
    rep = othello.replay(games, size)
    tokens = torch.from_numpy(othello.squares_to_tokens(games, size).astype(np.int64))
    legal = legal_token_mask(rep.legal_next, size)
    valid = legal.any(axis=-1)
    return tokens, legal, valid


def legality_stats(logits: torch.Tensor, legal: np.ndarray, valid: np.ndarray) -> dict[str, float]:
    """Top-1 legal rate and mean illegal probability mass over valid positions.

    ``logits (n, pos, d_vocab)``; ``legal`` bool of the same shape; ``valid`` bool ``(n, pos)``.
    """
    legal_t = torch.from_numpy(legal)
    valid_t = torch.from_numpy(valid)
    probs = logits.float().softmax(-1)
    top1_legal = legal_t.gather(-1, logits.argmax(-1, keepdim=True)).squeeze(-1)
    illegal_mass = 1.0 - (probs * legal_t).sum(-1)
    n = valid_t.sum().clamp(min=1)
    return {
        "top1_legal": float(top1_legal[valid_t].float().sum() / n),
        "illegal_mass": float(illegal_mass[valid_t].sum() / n),
        "positions": int(valid_t.sum()),
    }


@torch.inference_mode()
def evaluate_legality(forward, games: np.ndarray, size: int, batch_size: int = 250) -> dict[str, float]:
    """Legality metrics of ``forward(tokens) -> logits`` over every prefix of ``games``."""
    total = {"top1_legal": 0.0, "illegal_mass": 0.0, "positions": 0}
    for start in range(0, len(games), batch_size):
        tokens, legal, valid = model_inputs(games[start : start + batch_size], size)
        stats = legality_stats(forward(tokens), legal, valid)
        for key in ("top1_legal", "illegal_mass"):
            total[key] += stats[key] * stats["positions"]
        total["positions"] += stats["positions"]
    n = max(total["positions"], 1)
    return {"top1_legal": total["top1_legal"] / n, "illegal_mass": total["illegal_mass"] / n, "positions": total["positions"], "games": len(games)}
