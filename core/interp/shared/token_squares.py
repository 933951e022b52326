"""Tokens and squares after a game: the legal next tokens, and per-token values (probabilities)
put on the board's squares. Every page that draws a board of the model's next move reads these."""

from __future__ import annotations

import numpy as np
import torch

from core.games.base import Game
from core.games.registry import as_game


def _on_squares(per_token: np.ndarray, game: Game) -> np.ndarray:
    """``(..., d_vocab)`` values per token -> ``(..., n_squares)`` (tokens that name a square)."""
    token_square = game.token_square()
    named = np.flatnonzero(token_square >= 0)
    named = named[named != game.pad_token]
    out = np.zeros(per_token.shape[:-1] + (game.n_squares,), dtype=np.float32)
    out[..., token_square[named]] = per_token[..., named]
    return out


def lens_square_probs(logits: torch.Tensor, game: Game | int) -> np.ndarray:
    """Lens logits ``(..., d_vocab)`` -> probabilities per square ``(..., n_squares)``."""
    return _on_squares(logits.float().softmax(-1).numpy(), as_game(game))


def game_batch(moves: tuple[int, ...], game: Game | int):
    """The game's ``TokenBatch`` (tokens, legal next tokens and token kinds at every position):
    what the lens page's views read, made once per position."""
    return as_game(game).token_batch(np.array([moves], dtype=np.int64).reshape(1, len(moves)))


def legal_tokens_now(moves: tuple[int, ...], game: Game | int, batch=None) -> np.ndarray:
    """``bool (d_vocab,)`` legal next tokens after the last of ``moves`` (that the model read)."""
    game = as_game(game)
    batch = batch if batch is not None else game_batch(moves, game)
    return batch.legal[0, len(game.game_tokens(moves)) - 1]
