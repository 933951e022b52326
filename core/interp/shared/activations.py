"""Activations of a model over many games, read at hooks: at every move's position (the board
games' one position per move) or at every token, in batches with progress."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch

from core.games.base import Game
from core.models.handle import ModelHandle
from core.interp.shared.board_targets import probe_targets, valid_positions


ProgressFn = Callable[[str, float], None]  # (message, fraction done)


def resid_hooks(n_layers: int, kinds: tuple[str, ...] = ("resid_post",)) -> list[str]:
    """Hook names in forward order, e.g. ``blocks.0.hook_resid_mid, blocks.0.hook_resid_post, ...``."""
    order = ("resid_pre", "resid_mid", "resid_post")
    return [f"blocks.{layer}.hook_{k}" for layer in range(n_layers) for k in order if k in kinds]


@dataclass
class ProbeData:
    """Activations at valid positions of a set of games, with every target and position facts."""

    acts: dict[str, torch.Tensor]  # hook -> float32 (N, d_model)
    replay: object  # the game's Replay
    valid: np.ndarray  # bool (n, T)
    move_index: np.ndarray  # int (N,) the move t of each row
    game: Game | None = None

    def targets(self, target: str) -> np.ndarray:
        """``int64 (N, n_squares)`` for the rows of ``acts``."""
        return probe_targets(self.replay, target, self.game)[self.valid]


def collect(handle: ModelHandle, games: np.ndarray, hooks: list[str], batch_size: int = 200, progress: ProgressFn | None = None) -> ProbeData:
    """One cached forward pass per batch for every hook at once; keeps only valid positions."""
    game = handle.game
    games = np.asarray(games)
    if game.square_moves:
        games = games[:, : game.n_ctx]
    rep = game.replay(games)
    positions = game.move_positions(games)  # the token that reads the board after each move
    valid = valid_positions(rep) & (positions >= 0)
    tokens = torch.from_numpy(game.batch_tokens(games))
    chunks: dict[str, list[torch.Tensor]] = {h: [] for h in hooks}
    for start in range(0, len(games), batch_size):
        cache = handle.activations(tokens[start : start + batch_size], hooks)
        g, t = np.nonzero(valid[start : start + batch_size])
        rows, cols = torch.from_numpy(g), torch.from_numpy(positions[start + g, t])
        for h in hooks:
            chunks[h].append(cache[h][rows, cols].float().clone())
        if progress:
            progress(f"activations: {min(start + batch_size, len(games))}/{len(games)} games", min(start + batch_size, len(games)) / len(games))
    acts = {h: torch.cat(c) for h, c in chunks.items()}
    move_index = np.broadcast_to(np.arange(valid.shape[1]), valid.shape)[valid]
    return ProbeData(acts, rep, valid, move_index, game)


def token_activations(handle: ModelHandle, games: np.ndarray, hooks: list[str], batch_size: int = 200) -> dict[str, torch.Tensor]:
    """Activations ``hook -> float32 (N, width)`` at every token the games put in the context.

    This is what an SAE sees when it is spliced into the model, so it trains and is scored here.
    For a game with one token per move these are exactly ``collect``'s positions (in the same
    order); for chess they add the tokens inside a move (from-square, promotion, start token).
    """
    game = handle.game
    tokens = torch.from_numpy(game.batch_tokens(np.asarray(games)))
    keep = torch.from_numpy(game.batch_token_mask(np.asarray(games)))
    chunks: dict[str, list[torch.Tensor]] = {h: [] for h in hooks}
    for start in range(0, len(tokens), batch_size):
        cache = handle.activations(tokens[start : start + batch_size], hooks)
        mask = keep[start : start + batch_size]
        for h in hooks:
            chunks[h].append(cache[h][mask.to(cache[h].device)].float().clone())
    return {h: torch.cat(c) for h, c in chunks.items()}
