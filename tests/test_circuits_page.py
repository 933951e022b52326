"""The Circuits page through Streamlit's AppTest: plain, with a game, with a chosen target, with
interventions and supernodes from the link, with bad links, for othello8, chess-pgn and
text-stdlib; a model without transcoders, and a damaged transcoder file."""

from __future__ import annotations

import shutil

import pytest
from streamlit.testing.v1 import AppTest

from core.models.registry import load_model
from tests.test_board_player_page import open_page

PAGE = "pages/circuits.py"


def open_circuits(**params) -> AppTest:
    return open_page(PAGE, **params)


def game_link(model: str, n: int, seed: int = 11) -> str:
    handle = load_model(model)
    game = handle.game.random_games(1, seed=seed)[0]
    return handle.game.url_moves(tuple(int(m) for m in game[:n] if m >= 0))


def metric(at: AppTest, label: str) -> str:
    return next(m.value for m in at.metric if m.label == label)


def captions(at: AppTest) -> str:
    return "\n".join(c.value for c in at.caption)


def test_without_moves_the_page_asks_for_a_game():
    at = open_circuits(model="othello8")
    assert "Play at least one move" in at.info[0].value


def test_a_game_gets_its_graph_scores_and_a_node_to_read():
    at = open_circuits(model="othello8", moves=game_link("othello8", 12))
    assert 0 < float(metric(at, "Replacement score").rstrip("%")) <= 100
    assert 0 < float(metric(at, "Completeness score").rstrip("%")) <= 100
    assert "= features" in captions(at) and "sum" in captions(at)  # the target's value, split
    node = at.selectbox(key="ci_node")
    assert node.value.startswith("L")  # a feature first
    other = next(o for o in node.options if o.startswith("T")).split(" ")[0]  # options are shown as "T5 · input c2"
    node.set_value(other).run()
    assert not at.exception and at.query_params.get("node") in (other, [other])


def test_an_intervention_from_the_link_shows_before_and_after():
    link = game_link("othello8", 12)
    at = open_circuits(model="othello8", moves=link)
    feature = at.selectbox(key="ci_node").value
    at = open_circuits(model="othello8", moves=link, cut=feature, factor="0", groups=f"mine:{feature}", pin="T0")
    assert "Verdict: the top move goes from" in captions(at)
    assert len(at.dataframe) >= 4  # edges in, edges out, before, after
    assert not at.warning  # every node of the link was found


def test_chess_pgn_explains_a_whole_move():
    link = game_link("chess-pgn", 10)
    at = open_circuits(model="chess-pgn", moves=link, target="move")
    assert at.radio(key="ci_target").value == "move"
    assert "Target " in captions(at) and float(metric(at, "Replacement score").rstrip("%")) > 0
    at.radio(key="ci_target").set_value("legal").run()
    assert not at.exception and "legal − illegal" in captions(at)


def test_text_model_traces_its_prompt():
    at = open_circuits(model="text-stdlib")
    assert float(metric(at, "Completeness score").rstrip("%")) > 0
    assert "start token" in captions(at)


@pytest.mark.parametrize("params", [
    {"nodes": "abc", "edges": "2", "node": "<script>alert(1)</script>", "cut": "L9.P999.F1+group x", "groups": ";;:;bad", "factor": "7", "target": "bogus"},
    {"target": "move", "target_move": "zz9", "pin": "L1.P1.F999999+Q"},
])
def test_bad_links_get_messages_and_the_page_goes_on(params):
    at = open_circuits(model="othello8", moves=game_link("othello8", 8), **params)
    said = " ".join(e.value for e in at.error) + " ".join(w.value for w in at.warning)
    assert said  # each bad value is reported
    assert at.metric  # and the graph is still there
    assert "<script>" not in "".join(m.value for m in at.markdown)


def test_a_model_without_transcoders_says_how_to_make_them():
    at = open_circuits(model="othello6", moves=game_link("othello6", 6))
    assert "python -m core.train transcoder othello6 assets/transcoders/othello6 --layer all" in at.info[0].value


def test_a_damaged_transcoder_file_is_refused(tmp_path, monkeypatch):
    from core.interp.circuits import replacement

    folder = tmp_path / "othello8"
    shutil.copytree(replacement.TRANSCODERS / "othello8", folder)
    (folder / "L2" / "sae_weights.safetensors").write_bytes(b"not a safetensors file")
    monkeypatch.setattr(replacement, "TRANSCODERS", tmp_path)
    from ui import circuit_caches

    circuit_caches.cached_transcoders.clear()
    try:
        at = open_circuits(model="othello8", moves=game_link("othello8", 6))
        assert "cannot be used" in at.info[0].value
    finally:
        circuit_caches.cached_transcoders.clear()


def test_a_probe_reading_is_explained_from_the_link():
    at = open_circuits(model="othello8", moves=game_link("othello8", 10), target="probe", probe_layer="3", probe_square="d3", probe_class="mine")
    assert at.radio(key="ci_target").value == "probe"
    assert "Target mine d3 after L3" in captions(at) and not at.error
