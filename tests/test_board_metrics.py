"""Coverage and board reconstruction on units whose meaning is known by construction."""

from __future__ import annotations

import numpy as np
import torch

from core.games import othello
from core.interp import board_metrics as B
from core.interp.probes import valid_positions


def properties(n_games: int = 60):
    games = othello.random_games(n_games, 8, seed=2)[:, :59]
    rep = othello.replay(games, 8)
    return B.board_properties(rep, valid_positions(rep))


def test_property_table_is_consistent():
    props, names = properties()
    assert props.shape[1] == len(names) == 5 * 64
    empty, mine, theirs = props[:, :64], props[:, 64:128], props[:, 128:192]
    assert np.array_equal(empty.astype(int) + mine + theirs, np.ones_like(empty, dtype=int))  # exactly one state per square


def test_perfect_units_score_one_and_noise_scores_low():
    props, _ = properties()
    gen = torch.Generator().manual_seed(0)
    perfect = torch.from_numpy(props.astype(np.float32)) * (1 + torch.rand(props.shape, generator=gen))
    cov = B.coverage(perfect, props)
    assert cov["coverage"] > 0.999
    rec = B.board_reconstruction(perfect, props)
    assert rec["board_reconstruction"] > 0.99 and rec["units_used"] > 0
    noise = torch.rand(len(props), 400, generator=gen)
    assert B.coverage(noise, props)["coverage"] < 0.7
    assert B.board_reconstruction(noise, props)["board_reconstruction"] < 0.2
