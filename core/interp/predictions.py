"""The model's next-move predictions for one game: now, and after every move so far."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from core.games import othello
from core.games.play import GameState
from core.interp.legality import legal_token_mask
from core.models.handle import ModelHandle


@dataclass(frozen=True)
class Predictions:
    """Everything the board player shows about the model, as plain arrays (cheap to cache).

    ``probs`` is per square (centre squares, which have no token, get 0); history arrays have one
    entry per move played, for the prediction made right after that move (NaN once the game is over).
    """

    probs: np.ndarray  # float (size*size,) next-move probability per square
    top1: int  # square of the model's top-1 prediction
    top1_legal: bool
    illegal_mass: float
    history_top1_legal: np.ndarray  # float (T,): 1.0 / 0.0 / NaN
    history_illegal_mass: np.ndarray  # float (T,)
    history_top1: np.ndarray  # int (T,) top-1 square after each move


def game_tokens(moves: tuple[int, ...], size: int) -> torch.Tensor:
    """``(1, pos)`` model input for a game: one token per move, cut to the model's context."""
    squares = np.array(moves[: othello.context_length(size)], dtype=np.int64)
    return torch.from_numpy(othello.squares_to_tokens(squares, size)[None, :].astype(np.int64))


def predict(handle: ModelHandle, state: GameState) -> Predictions | None:
    """Predictions after the moves of ``state``; None before the first move (no input yet)."""
    if not state.moves:
        return None
    size = state.size
    if handle.board_size != size:
        raise ValueError(f"model {handle.name} plays {handle.board_size}x{handle.board_size}, the game is {size}x{size}")
    tokens = game_tokens(state.moves, size)
    logits = handle.forward(tokens)[0].float()  # (pos, d_vocab)
    probs_tok = logits.softmax(-1).numpy()
    T = tokens.shape[1]
    legal_tok = legal_token_mask(state.replay.legal_next[0, :T], size)  # (pos, d_vocab)
    over = ~legal_tok.any(-1)
    top_tok = probs_tok.argmax(-1)
    top1_legal = legal_tok[np.arange(T), top_tok]
    illegal = 1.0 - (probs_tok * legal_tok).sum(-1)
    squares = othello.tokens_to_squares(np.arange(1, othello.vocab_size(size)), size)
    probs_sq = np.zeros((T, size * size), dtype=np.float32)
    probs_sq[:, squares] = probs_tok[:, 1:]
    top_sq = othello.tokens_to_squares(np.maximum(top_tok, 1), size)
    last = T - 1
    # A game longer than the context has no prediction for its final move; it is over by then.
    return Predictions(
        probs=probs_sq[last],
        top1=int(top_sq[last]),
        top1_legal=bool(top1_legal[last]),
        illegal_mass=float(illegal[last]),
        history_top1_legal=np.where(over, np.nan, top1_legal.astype(float)),
        history_illegal_mass=np.where(over, np.nan, illegal),
        history_top1=top_sq,
    )


def top_k(pred: Predictions, legal: np.ndarray, size: int, k: int = 10) -> list[dict]:
    """Rows of the top-k table: move label, probability, and whether it is legal now."""
    order = np.argsort(-pred.probs, kind="stable")[:k]
    return [
        {"rank": i + 1, "move": othello.square_to_label(int(sq), size), "probability": float(pred.probs[sq]), "legal": bool(legal[sq])}
        for i, sq in enumerate(order)
    ]
