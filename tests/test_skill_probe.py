"""The skill probe (Karvonen's Elo probe) on games where skill is real and known: a random mover
against a capture-greedy one (the shipped sample PGN, ratings 800 and 1200)."""

from __future__ import annotations

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from core.game_corpus import corpus_games, read_corpus
from core.interp.probes.skill_probe import rating_bins, skill_probe
from core.models.registry import load_model
from tests.test_board_player_page import APP
from tests.test_game_corpus import CHESS_SAMPLE

MODEL = "chess-pgn"  # the smaller bundled chess model: the same probe, a third of the time


def test_rating_bins_follow_the_ratings():
    labels, names = rating_bins(np.array([800, 1200, np.nan, 800]))
    assert labels.tolist() == [0, 1, -1, 0] and names == ["800", "1200"]
    labels, names = rating_bins(np.arange(1000, 2000, 10, dtype=float), n_bins=4)
    assert len(names) == 4 and np.bincount(labels).tolist() == [25, 25, 25, 25]


def test_skill_probe_on_the_probe_viewer_beats_the_random_init_model_on_random_vs_greedy_games():
    at = AppTest.from_file(APP, default_timeout=600)
    at.query_params["model"] = MODEL
    at.query_params["corpus"] = "chess_random_vs_greedy"
    at.switch_page("pages/probe_viewer.py").run()
    assert not at.exception, at.exception
    at.button(key="train_skill").click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert any("White's rating bins: 800, 1200" in c.value for c in at.caption)
    result = next(iter(at.session_state["skill_probe_results"].values()))
    assert result["games"] == 200 and result["bins"] == ["800", "1200"] and result["test_games"] == 40
    assert 0.45 < result["chance"] < 0.55  # the greedy side alternates: White is greedy in half the games
    accuracy, baseline = np.array(result["accuracy"]), np.array(result["random_accuracy"])
    assert len(accuracy) == load_model(MODEL).cfg.n_layers
    assert accuracy.max() > result["chance"] + 0.2  # the residual stream says who is greedy
    assert accuracy.max() > baseline.max() + 0.02  # more than the moves alone give a random model
    assert (accuracy > baseline).mean() >= 0.5


def test_skill_probe_refuses_unrated_or_one_rating_games():
    handle = load_model(MODEL)
    corpus = read_corpus(CHESS_SAMPLE.read_bytes(), CHESS_SAMPLE.name, handle.game)
    games = corpus_games(handle.game, corpus, corpus.n_games, 0)
    for ratings, message in ((np.full(len(games), 1500.0), "two different"), (np.r_[800.0, 1200.0, np.full(len(games) - 2, np.nan)], "at least")):
        with pytest.raises(ValueError, match=message):
            skill_probe(handle, games, ratings)
