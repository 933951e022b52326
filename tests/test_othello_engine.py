"""The vectorised engine against the independent scalar rules in tests/scalar_othello.py."""

import numpy as np
import pytest

from core.games.othello import engine as othello
from tests.scalar_othello import ScalarOthello


def scalar_replay(game: np.ndarray, size: int):
    """Per move: board, mover, legal set of the next side, flipped squares; and the end state."""
    g = ScalarOthello(size)
    rows = []
    for square in game:
        if square < 0:
            break
        mover = g.player
        flipped = g.play(int(square))
        rows.append((np.array(g.board, dtype=np.int8), mover, g.player, sorted(g.legal_moves(g.player)), sorted(flipped)))
    return rows, g.player


@pytest.mark.parametrize("size,n", [(8, 2000), (6, 2000)])
def test_engine_matches_scalar_rules(size, n):
    games = othello.random_games(n, size=size, seed=size)
    assert games.shape == (n, size * size - 4)
    rep = othello.replay(games, size=size)
    n_sq = size * size
    passes_seen = 0
    for i in range(n):
        rows, end_player = scalar_replay(games[i], size)
        length = len(rows)
        assert rep.lengths[i] == length
        # random_games plays until neither side can move: the scalar game must be over too.
        assert end_player == 0, f"game {i} stopped before the end"
        assert (games[i, length:] == -1).all()
        for t, (board, mover, nxt, legal, flipped) in enumerate(rows):
            np.testing.assert_array_equal(rep.boards[i, t], board, err_msg=f"game {i} move {t}")
            assert rep.mover[i, t] == mover
            assert rep.next_player[i, t] == nxt
            assert sorted(np.flatnonzero(rep.legal_next[i, t])) == legal
            assert sorted(np.flatnonzero(rep.flipped[i, t])) == flipped
            if t + 1 < length and rows[t + 1][1] == mover:
                passes_seen += 1
        assert not rep.legal_next[i, length:].any() and (rep.mover[i, length:] == 0).all()
        assert rep.legal_next[i, :, :].shape[-1] == n_sq
    # Passes are rare but must occur in thousands of games; otherwise this test did not cover them.
    assert passes_seen > 0


def test_random_games_deterministic_and_seeded():
    a = othello.random_games(50, 8, seed=3)
    b = othello.random_games(50, 8, seed=3)
    c = othello.random_games(50, 8, seed=4)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_random_games_are_uniform_over_legal_first_moves():
    games = othello.random_games(4000, 8, seed=1)
    counts = np.bincount(games[:, 0], minlength=64)
    legal = np.flatnonzero(othello.replay(games[:1, :1]).start_legal)
    assert set(np.flatnonzero(counts)) == set(legal)
    # 4 legal first moves: each ~1000 of 4000; 5 sigma is ~137.
    assert np.all(np.abs(counts[legal] - 1000) < 140)


def test_illegal_move_names_game_and_move():
    games = othello.random_games(3, 8, seed=0)
    games[1, 5] = games[1, 4]  # the square is now occupied
    with pytest.raises(ValueError, match=r"game 1, move 5: .* is not legal"):
        othello.replay(games)


def test_move_after_pad_and_off_board_rejected():
    with pytest.raises(ValueError, match="follows the end"):
        othello.replay(np.array([[19, -1, 18]]))
    with pytest.raises(ValueError, match="not a square"):
        othello.replay(np.array([[64]]))


def test_prefix_replay_matches_full_replay():
    games = othello.random_games(20, 6, seed=9)
    full = othello.replay(games, 6)
    part = othello.replay(games[:, :10], 6)
    np.testing.assert_array_equal(full.boards[:, :10], part.boards)
    np.testing.assert_array_equal(full.legal_next[:, :10], part.legal_next)


@pytest.mark.parametrize("size", [4, 6, 8])
def test_square_token_label_round_trip(size):
    n_sq = size * size
    centre = {sq for sq in range(n_sq) if othello.squares_to_tokens(np.array([sq]), size)[0] == 0}
    assert len(centre) == 4
    tokens = [othello.square_to_token(sq, size) for sq in range(n_sq) if sq not in centre]
    assert tokens == list(range(1, othello.vocab_size(size)))
    for sq in range(n_sq):
        assert othello.label_to_square(othello.square_to_label(sq, size), size) == sq
        if sq not in centre:
            assert othello.token_to_square(othello.square_to_token(sq, size), size) == sq
    np.testing.assert_array_equal(
        othello.tokens_to_squares(othello.squares_to_tokens(np.arange(n_sq), size), size)[
            [sq for sq in range(n_sq) if sq not in centre]
        ],
        [sq for sq in range(n_sq) if sq not in centre],
    )


def test_published_layout_sizes():
    assert othello.vocab_size(8) == 61 and othello.context_length(8) == 59
    assert othello.vocab_size(6) == 33 and othello.context_length(6) == 31
    assert othello.square_to_label(19) == "d3"


def test_parse_moves_all_styles():
    expected = [othello.label_to_square(x) for x in ["d3", "c5", "f6"]]
    assert othello.parse_moves("d3 c5 f6") == expected
    assert othello.parse_moves("d3c5f6") == expected
    assert othello.parse_moves("D3, C5, F6") == expected
    # Published style: row letter then 0-based column. "C3" there is row 2, column 3 = d3.
    assert othello.parse_moves("C3 E2 F5", notation="published") == expected
    assert othello.parse_moves("A0") == [0]  # auto: a 0 column means published style
    assert othello.parse_moves("") == []
    for bad in ["z9", "d", "33", "d3 ??", "i1"]:
        with pytest.raises(ValueError):
            othello.parse_moves(bad)


def test_bad_sizes_rejected():
    for size in [5, 10, 2]:
        with pytest.raises(ValueError, match="even number"):
            othello.random_games(1, size)
