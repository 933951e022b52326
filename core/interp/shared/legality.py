"""Legal-move metrics of next-token logits, defined once for trainer, evaluation and lens.

The legal set of every position comes from the game's ``TokenBatch`` (``Game.token_batch``), so
the same code scores one-token-per-move Othello and multi-token chess moves; with several kinds
of token (chess: from-square, to-square, promotion) the rates are also given per kind.
"""

from __future__ import annotations

import numpy as np
import torch

from core.games.base import Game
from core.games.registry import as_game


def legal_token_mask(legal_next: np.ndarray, game: Game | int) -> np.ndarray:
    """``bool (..., n_squares)`` legal squares -> ``bool (..., d_vocab)`` legal tokens, for games
    whose move is one square token (pad and non-square tokens never legal)."""
    game = as_game(game)
    token_square = game.token_square()
    mask = np.zeros(legal_next.shape[:-1] + (game.d_vocab,), dtype=bool)
    named = np.flatnonzero(token_square >= 0)
    named = named[named != game.pad_token]
    mask[..., named] = legal_next[..., token_square[named]]
    return mask


def model_inputs(games: np.ndarray, game: Game | int) -> tuple[torch.Tensor, np.ndarray, np.ndarray]:
    """Tokens a next-move model reads, and per position the legal next tokens and a validity mask.

    A position counts only while the game goes on after it. Returns ``tokens (n, ctx)``,
    ``legal (n, ctx, d_vocab)``, ``valid (n, ctx)``.
    """
    batch = as_game(game).token_batch(np.asarray(games))
    return torch.from_numpy(batch.tokens), batch.legal, batch.valid


def legality_stats(logits: torch.Tensor, legal: np.ndarray, valid: np.ndarray, kind: np.ndarray | None = None, kind_names: tuple[str, ...] = ()) -> dict:
    """Top-1 legal rate and mean illegal probability mass over valid positions (and per token kind).

    ``logits (n, pos, d_vocab)``; ``legal`` bool of the same shape; ``valid`` bool ``(n, pos)``;
    ``kind`` int ``(n, pos)`` indexes ``kind_names``.
    """
    legal_t = torch.from_numpy(np.asarray(legal))
    valid_t = torch.from_numpy(np.asarray(valid))
    probs = logits.float().softmax(-1)
    top1_legal = legal_t.gather(-1, logits.argmax(-1, keepdim=True)).squeeze(-1)
    illegal_mass = 1.0 - (probs * legal_t).sum(-1)
    n = valid_t.sum().clamp(min=1)
    out = {
        "top1_legal": float(top1_legal[valid_t].float().sum() / n),
        "illegal_mass": float(illegal_mass[valid_t].sum() / n),
        "positions": int(valid_t.sum()),
    }
    if kind is not None and len(kind_names) > 1:
        kind_t = torch.from_numpy(np.asarray(kind))
        out["by_kind"] = {}
        for i, name in enumerate(kind_names):
            sel = valid_t & (kind_t == i)
            m = int(sel.sum())
            out["by_kind"][name] = {
                "top1_legal": float(top1_legal[sel].float().sum() / max(m, 1)),
                "illegal_mass": float(illegal_mass[sel].sum() / max(m, 1)),
                "positions": m,
            }
    return out


@torch.inference_mode()
def evaluate_legality(forward, games: np.ndarray, game: Game | int, batch_size: int = 250) -> dict:
    """Legality metrics of ``forward(tokens) -> logits`` over every prefix of ``games``."""
    game = as_game(game)
    total = {"top1_legal": 0.0, "illegal_mass": 0.0, "positions": 0}
    kinds: dict[str, dict] = {}
    for start in range(0, len(games), batch_size):
        batch = game.token_batch(np.asarray(games[start : start + batch_size]))
        stats = legality_stats(forward(torch.from_numpy(batch.tokens)), batch.legal, batch.valid, batch.kind, game.token_kinds)
        for key in ("top1_legal", "illegal_mass"):
            total[key] += stats[key] * stats["positions"]
        total["positions"] += stats["positions"]
        for name, s in stats.get("by_kind", {}).items():
            acc = kinds.setdefault(name, {"top1_legal": 0.0, "illegal_mass": 0.0, "positions": 0})
            for key in ("top1_legal", "illegal_mass"):
                acc[key] += s[key] * s["positions"]
            acc["positions"] += s["positions"]
    n = max(total["positions"], 1)
    out = {"top1_legal": total["top1_legal"] / n, "illegal_mass": total["illegal_mass"] / n, "positions": total["positions"], "games": len(games)}
    if kinds:
        out["by_kind"] = {k: {"top1_legal": v["top1_legal"] / max(v["positions"], 1), "illegal_mass": v["illegal_mass"] / max(v["positions"], 1), "positions": v["positions"]} for k, v in kinds.items()}
    return out
