"""Coverage and board reconstruction on units whose meaning is known by construction."""

from __future__ import annotations

import numpy as np
import torch

from core.games.othello import engine as othello
from core.interp.sae import board_metrics as B
from core.interp.shared import board_properties
from core.interp.shared.board_targets import valid_positions


def properties(n_games: int = 60):
    games = othello.random_games(n_games, 8, seed=2)[:, :59]
    rep = othello.replay(games, 8)
    return board_properties.board_properties(rep, valid_positions(rep))


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


def test_published_board_reconstruction_counts_squares_as_the_paper_does():
    # Two squares, three classes each, drawn independently: one-hot "perfect" units label exactly
    # their own class (no other class reaches 95 % precision).
    """Both sides are float64 ratios of the same integer counts: equal to a few float64 ulps (1e-12
    is ~4,500 ulps)."""
    rng = np.random.default_rng(0)
    classes = rng.integers(0, 3, size=(600, 2))
    props = np.zeros((600, 6), dtype=bool)
    for sq in range(2):
        props[np.arange(600), classes[:, sq] * 2 + sq] = True
    perfect = torch.from_numpy(props.astype(np.float32)) * 2.0
    assert B.board_reconstruction_paper(perfect, props, 3, 2)["board_reconstruction"] == 1.0
    # Units for class 0 only: squares of class 0 are right, the others have no label (false negatives).
    only0 = perfect[:, :2]
    held = classes[300:]
    tp, fn = int((held == 0).sum()), int((held != 0).sum())
    assert abs(B.board_reconstruction_paper(only0, props, 3, 2)["board_reconstruction"] - 2 * tp / (2 * tp + fn)) < 1e-12
    # A unit labelling class 0 of square 0 that also fires on class 1 there is imprecise: unused.
    blur = perfect.clone()
    blur[:, 0] = perfect[:, 0] + perfect[:, 2]
    rec = B.board_reconstruction_paper(blur, props, 3, 2)
    held0 = held[:, 0]
    tp = int((held0 != 0).sum()) + len(held)  # square 0 right unless class 0; square 1 always right
    fn = int((held0 == 0).sum())
    assert abs(rec["board_reconstruction"] - 2 * tp / (2 * tp + fn)) < 1e-12
    # Real Othello boards: perfect units come close to 1; noise stays low.
    props_o, _ = properties()
    board = torch.from_numpy(props_o[:, :192].astype(np.float32))
    assert B.board_reconstruction_paper(board, props_o, 3, 64)["board_reconstruction"] > 0.95
    gen = torch.Generator().manual_seed(1)
    assert B.board_reconstruction_paper(torch.rand(len(props_o), 300, generator=gen), props_o, 3, 64)["board_reconstruction"] < 0.2


def test_chess_board_properties_are_the_published_set():
    from core.games.registry import get_game
    from core.interp.shared.board_targets import valid_positions

    game = get_game("chess")
    games = game.random_games(10, seed=3)
    rep = game.replay(games)
    props, names = board_properties.board_properties(rep, valid_positions(rep), game)
    assert props.shape[1] == len(names) == 13 * 64 + 64 + 6
    board = props[:, : 13 * 64].reshape(len(props), 13, 64)
    assert (board.sum(1) == 1).all()  # exactly one piece class per square
    assert names[6 * 64 + 12] == "empty e2" and names[13 * 64 + 64] == "side to move in check"
    assert board_properties.board_classes(game) == 13
    sets = board_properties.property_sets(game)
    assert [n for n in sets] == ["board (piece per square)", "board, blanks masked", "board, blanks and initial position masked", "legal destinations",
                                 "check", "castling rights (kingside, queenside, either)", "legal en passant", "pinned piece"]
    for name, (idx, mask) in sets.items():
        assert all(0 <= i < len(names) for i in idx), name
        if mask is not None:  # a board set lists exactly the entries its mask keeps
            assert np.array_equal(np.nonzero(mask.reshape(-1))[0], idx), name
    initial = sets["board, blanks and initial position masked"][1]
    assert not initial[names.index("white king e1") // 64, 4] and initial[names.index("white king e2") // 64, 12]
    assert len(sets["board, blanks and initial position masked"][0]) == 13 * 64 - 64 - 32  # blanks and the 32 starting pieces


def test_masked_board_reconstruction_leaves_out_the_masked_entries():
    """With no mask the set score and the plain score are the same float64 ratio of the same counts
    (1e-12 is ~4,500 ulps)."""
    props, _ = properties()
    sets = board_properties.property_sets()
    masks = {name: mask for name, (_, mask) in sets.items() if mask is not None}
    board = torch.from_numpy(props[:, :192].astype(np.float32))
    full = B.board_reconstruction_paper(board, props, 3, 64, masks=masks)
    assert abs(full["sets"]["board (mine / theirs / empty)"] - full["board_reconstruction"]) < 1e-12  # no mask: the plain score
    # Units that know only the blank squares rebuild much of the board, but nothing once blanks are masked.
    blanks_only = board[:, :64]
    rec = B.board_reconstruction_paper(blanks_only, props, 3, 64, masks=masks)
    assert rec["board_reconstruction"] > 0.3 and rec["sets"]["board, blanks masked"] == 0.0
    # Units for mine/theirs only: perfect once blanks are masked.
    assert B.board_reconstruction_paper(board[:, 64:], props, 3, 64, masks=masks)["sets"]["board, blanks masked"] > 0.95
