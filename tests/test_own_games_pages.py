"""A researcher's own games as the corpus of every page (AppTest): a 1,000-game PGN with malformed
games is uploaded in the sidebar; the probe viewer rescores its probes on it, the SAE browser
indexes and measures on it, the lens recomputes its legality chart and neuron index on it, and the
malformed games are reported."""

from __future__ import annotations

import re

import pytest
from streamlit.testing.v1 import AppTest

from core.game_corpus import cached_corpus
from core.games.registry import get_game
from tests.test_board_player_page import APP
from tests.test_game_corpus import CHESS_SAMPLE, MALFORMED

PGN = ("\n\n".join([CHESS_SAMPLE.read_text()] * 5 + MALFORMED) + "\n").encode()
# The corpus-wide statistics read at most a few hundred games; 40 keep every one of them on the file.
FORTY = ("[Event" + "[Event".join(CHESS_SAMPLE.read_text().split("[Event")[1:41]) + "\n\n".join(MALFORMED) + "\n").encode()
MODEL = "chess"


def upload(page: str, data: bytes = PGN, name: str = "mine.pgn", **params) -> AppTest:
    """Open ``page`` with "Your own file…" chosen and upload ``data`` (the sidebar's widgets)."""
    at = AppTest.from_file(APP, default_timeout=600)
    for key, value in {"model": MODEL, "moves": "e2e4e7e5", **params}.items():
        at.query_params[key] = value
    at.session_state["corpus_pick"] = "upload"
    at.switch_page(page).run()
    at.file_uploader(key="corpus_file").set_value((name, data, "text/plain")).run()
    assert not at.exception, at.exception
    return at


def captions(at: AppTest) -> str:
    return "\n".join(c.value for c in at.caption).replace("\\", "")  # as shown: without markdown's escapes


def test_the_upload_is_the_corpus_and_its_malformed_games_are_reported():
    at = upload("pages/board_player.py")
    assert not at.error, [e.value for e in at.error]
    assert "mine.pgn: 1,000 games; 3 skipped" in captions(at)
    skipped = next(e for e in at.sidebar if e.type == "expander")
    assert "illegal san" in str(skipped.proto) or "3 skipped" in skipped.label
    at.number_input(key="corpus_game").set_value(2).run()
    at.button(key="corpus_open").click().run()
    corpus = cached_corpus(PGN, "mine.pgn", get_game("chess", 8, "uci-squares", 256))  # the games the page read (one parse of the 1,000)
    row = corpus.games[1]
    assert at.session_state["moves"] == tuple(int(m) for m in row[row >= 0])


def test_probe_viewer_rescores_its_probes_on_the_upload():
    at = upload("pages/probe_viewer.py")
    assert not at.error, [e.value for e in at.error]
    scores = next(iter(at.session_state["corpus_probe_scores"].values()))
    assert len(scores) == 8 and all(s["games"] == 100 for s in scores.values())
    assert all(0.3 < s["accuracy"] <= 1.0 for s in scores.values())
    assert "Scores on 100 games of mine.pgn" in captions(at)
    # Training on the file: 800 games train, 200 are held out.
    assert "Trains on mine.pgn: 800 games, scored on the 200 held out" in captions(at)


def test_lens_and_sae_browser_recompute_on_the_upload():
    at = upload("pages/logit_lens.py", data=FORTY, section="neurons")  # the legality chart tops every section; the neuron view reads the index
    assert not at.error, [e.value for e in at.error]
    text = captions(at)
    assert "40 games of mine.pgn" in text and "neuron index, 40 games: mine.pgn" in text
    at = upload("pages/sae_browser.py", data=FORTY)
    assert not at.error, [e.value for e in at.error]
    assert re.search(r"positions of 40 games of mine\.pgn", captions(at))  # the feature table says which games it indexes
    at.button(key="measure_sae").click().run()
    measured = next(iter(at.session_state["measured_sae_metrics"].values()))
    assert measured["corpus"] == "mine.pgn" and measured["games"] == 40
    assert 0 <= measured["fvu"] < 1 and {"sae_features", "mlp_neurons", "random_init_neurons"} <= set(measured["board"])
    assert "Quality measured on mine.pgn" in captions(at)


def test_a_sample_file_is_in_the_link_and_a_bad_one_is_reported():
    at = AppTest.from_file(APP, default_timeout=300)
    at.query_params["model"] = "othello8"
    at.query_params["corpus"] = "othello_random_vs_greedy"
    at.switch_page("pages/board_player.py").run()
    assert at.session_state["corpus_pick"] == "othello_random_vs_greedy"
    assert "othello_random_vs_greedy.txt: 200 games" in captions(at)
    assert "corpus=othello_random_vs_greedy" in "\n".join(m.value for m in at.markdown)
    at = AppTest.from_file(APP, default_timeout=300)
    at.query_params["model"] = "othello8"
    at.query_params["corpus"] = "../../etc/passwd"
    at.switch_page("pages/board_player.py").run()
    assert not at.exception and at.session_state["corpus_pick"] == "random"
    assert any("games file" in e.value for e in at.error)


def test_the_games_file_stays_chosen_on_every_page():
    """The sidebar's choice belongs to the session, not to the page it was made on."""
    at = AppTest.from_file(APP, default_timeout=300)
    at.query_params["model"] = "othello8"
    at.switch_page("pages/probe_viewer.py").run()
    at.selectbox(key="corpus_pick").set_value("othello_random_vs_greedy").run()
    at.number_input(key="corpus_game").set_value(7).run()
    for page in ("pages/logit_lens.py", "pages/board_player.py", "pages/sae_browser.py"):
        at.query_params.pop("corpus", None)  # a page change in the browser starts from the page's bare address
        at.switch_page(page).run()
        assert not at.exception and at.session_state["corpus_pick"] == "othello_random_vs_greedy", page
        assert at.selectbox(key="corpus_pick").value == "othello_random_vs_greedy" and at.query_params["corpus"] == "othello_random_vs_greedy", page
        assert "othello_random_vs_greedy.txt: 200 games" in captions(at) and at.number_input(key="corpus_game").value == 7, page


@pytest.mark.parametrize("data, message", [(b"\x00\x01binary", "binary"), (b"[Event \"x\"]\n\n*\n", "no readable game")], ids=["binary", "no-game"])
def test_an_unusable_upload_says_why_and_the_page_goes_on(data, message):
    at = upload("pages/board_player.py", data=data, name="bad.pgn")
    assert any(message in e.value for e in at.error)
    assert "Board player" in [t.value for t in at.title]
