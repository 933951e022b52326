"""A layer's MLP neurons as browsable units, like an SAE's features.

One pass over held-out games gives, for every neuron of the layer: where it is positive (kept
sparse, grouped by neuron, largest first: the same ``FeatureIndex`` the SAE browser uses, so top
positions, activation bands, histograms and the board-property search work the same way), its best
F1 for every board property, and (for games whose moves are squares) its correlation with each
square being empty / mine / theirs. The page computes this once per model and layer, never per move.
"""

from __future__ import annotations

import numpy as np
import torch

from core.games.base import Game
from core.interp.lens.logit_lens import board_correlations
from core.interp.shared.activations import collect
from core.interp.shared.board_targets import probe_targets
from core.interp.shared.unit_index import FeatureIndex, assemble_index
from core.models.handle import ModelHandle

NEURON_SEED = 3_000_077  # held-out games for the neuron view (not the SAE browser's, not training's)


def neuron_games(game: Game) -> int:
    """Games for ~6k positions (a layer's neurons are dense: 6k x d_mlp values are read, and the
    positive ones kept): 100 Othello games, 50 chess games."""
    per_game = game.n_ctx if game.square_moves else game.n_ctx // 2
    return min(100, max(20, 6_000 // max(per_game, 1)))


def mlp_hook(layer: int) -> str:
    return f"blocks.{layer}.mlp.hook_post"


def neuron_index(handle: ModelHandle, layer: int, n_games: int | None = None, seed: int = NEURON_SEED, games: np.ndarray | None = None) -> tuple[FeatureIndex, np.ndarray | None]:
    """``(index of the layer's neurons where positive, correlations (d_mlp, 3, squares) or None)``.

    ``games``: the games to read instead of ``n_games`` random ones of ``seed``.

    Correlations are with the mine / theirs / empty board (mine = the player who just moved), for
    games whose moves are squares; None for others (chess has 13 piece classes per square: the
    property search covers them).
    """
    if not 0 <= layer < handle.cfg.n_layers:
        raise ValueError(f"layer must be in 0..{handle.cfg.n_layers - 1}, got {layer}")
    game = handle.game
    if games is None:  # else a corpus's games (a researcher's own file)
        games = game.random_games(n_games or neuron_games(game), seed=seed)
    games = games[:, : game.n_ctx]
    hook = mlp_hook(layer)
    data = collect(handle, games, [hook])
    acts = data.acts[hook]
    pos, unit = torch.nonzero(acts > 0, as_tuple=True)
    index = assemble_index(game, hook, games, data.replay, data.valid, pos, unit, acts[pos, unit], acts.shape[1])
    corr = None
    if game.square_moves:
        classes = probe_targets(data.replay, "mine_theirs_empty")[data.valid]
        corr = board_correlations(acts, classes)  # standardises acts in place: the index is built already
    return index, corr
