"""One position's analysis as plain JSON: what the board player shows, for a notebook or a paper.

Everything is read from the page's own ``Predictions`` (no second forward pass): the game, the
position's status and legal moves, the model's top moves with their probabilities and legality,
the illegal mass, and the prediction after every move played (the history chart)."""

from __future__ import annotations

import numpy as np

from core.games.base import Game, GameState
from core.interp.shared.predictions import Predictions, top_k


def _number(x: float) -> float | None:
    """JSON has no NaN: a missing value is null."""
    return float(x) if np.isfinite(x) else None


def position_record(model: str, game: Game, state: GameState, pred: Predictions | None, link: str = "", k: int = 20) -> dict:
    """The position and the model's reading of it, JSON-ready (floats, strings, lists, None)."""
    record = {
        "model": model,
        "game": game.title,
        "moves": game.format_moves(state.moves),
        "link_moves": game.url_moves(state.moves),
        "link": link,
        "status": state.status(),
        "legal_moves": [game.move_label(m) for m in state.legal_moves],
        "prediction": None,
    }
    if pred is None:
        return record
    legal = state.legal if game.square_moves else state.legal_moves
    record["prediction"] = {
        "top_moves": top_k(pred, legal, game, k=k),
        "illegal_mass": _number(pred.illegal_mass if game.square_moves else 1.0 - pred.legal_move_mass),
        "history": [
            {"after_move": i + 1, "top1": game.square_label(int(sq)) if sq >= 0 else None, "top1_legal": _number(ok), "illegal_mass": _number(mass)}
            for i, (sq, ok, mass) in enumerate(zip(pred.history_top1, pred.history_top1_legal, pred.history_illegal_mass))
        ],
        "what_probability_means": "the next move's probability" if game.square_moves else "each whole move's probability: the product of its tokens' probabilities",
    }
    return record
