"""The board player with the bundled chess model, driven through its widgets and through links."""

from __future__ import annotations

import re

import pytest

from core.games.chess import rules as C
from core.models.registry import list_models
from tests.test_board_player_page import button, open_app, status

CHESS = next((s.name for s in list_models() if s.source == "bundled" and s.game == "chess"), None)
pytestmark = pytest.mark.skipif(CHESS is None, reason="no bundled chess model")


def metric(at, label: str) -> str:
    return next(m.value for m in at.metric if m.label == label)


def test_link_restores_a_chess_game_and_shows_the_model_panel():
    """The table is sorted by probability: each step down is <= 0, with 1e-9 of slack for float64
    noise in the page's percentages."""
    at = open_app(model=CHESS, moves="e2e4e7e5g1f3")
    assert at.session_state["moves"] == tuple(C.parse_moves("e4 e5 Nf3"))
    assert status(at).startswith("**Black to move")
    top1 = metric(at, "Top-1 move")
    assert re.fullmatch(r"[a-h][1-8][a-h][1-8][qrbn]?", top1)
    assert metric(at, "Illegal mass").endswith("%")
    legal, illegal = at.dataframe[0].value, at.dataframe[1].value
    assert len(legal) == 10 and list(legal.columns) == ["move", "uci", "probability"]
    assert (legal["probability"].diff().dropna() <= 1e-9).all()
    assert len(illegal) == 10
    assert dict(at.query_params) == {"model": CHESS, "moves": "e2e4e7e5g1f3"}
    assert any("`1. e4 e5 2. Nf3" in m.value for m in at.markdown)


def test_typed_san_pgn_and_uci_moves_play_and_update_the_link():
    at = open_app(model=CHESS)
    assert metric(at, "Top-1 move")  # chess predicts the first move from the start token
    seen = []
    for text in ["e4", "e7e5", "2. Nf3 Nc6"]:
        at.text_input(key="moves_text").input(text)
        button(at, "Play these moves").click().run()
        assert not at.exception and not at.error, [e.value for e in at.error]
        seen.append((len(at.session_state["moves"]), metric(at, "Top-1 move"), metric(at, "Illegal mass")))
    assert [s[0] for s in seen] == [1, 2, 4]
    assert at.query_params["moves"] == "e2e4e7e5g1f3b8c6"
    assert len({s[1:] for s in seen}) > 1


def test_illegal_and_malformed_moves_are_explained_and_the_game_goes_on():
    at = open_app(model=CHESS, moves="e2e4")
    at.text_input(key="moves_text").input("e7e4")
    button(at, "Play these moves").click().run()
    assert not at.exception
    assert any("e7e4" in e.value and "pawn" in e.value for e in at.error), [e.value for e in at.error]
    at.text_input(key="moves_text").input("Qh5??!")
    button(at, "Play these moves").click().run()
    assert any("Could not play" in e.value for e in at.error)
    assert len(at.session_state["moves"]) == 1


def test_picking_a_piece_shows_its_destinations():
    at = open_app(model=CHESS, moves="e2e4e7e5")
    picker = at.selectbox(key="piece_picker")
    assert picker.value == -1
    g1 = 6
    picker.set_value(g1).run()
    assert not at.exception
    assert at.session_state["picked_square"] == g1
    assert any("Piece on g1 picked" in c.value for c in at.caption)
    button(at, "Random move").click().run()
    assert "picked_square" not in at.session_state and len(at.session_state["moves"]) == 3


def test_promotion_check_mate_and_draw_states():
    at = open_app(model=CHESS, moves=C.format_pgn(C.parse_moves("a4 b5 axb5 a6 bxa6 Bb7 axb7 Nc6")).replace(" ", ""))
    assert any("Could not restore" in e.value for e in at.error)  # PGN text is not the link format
    at = open_app(model=CHESS, moves="a2a4b7b5a4b5a7a6b5a6c8b7a6b7b8c6")
    at.text_input(key="moves_text").input("bxa8=N")
    button(at, "Play these moves").click().run()
    assert C.uci(at.session_state["moves"][-1]) == "b7a8n"
    at = open_app(model=CHESS, moves="f2f3e7e5g2g4d8h4")
    assert "Game over: checkmate, black wins" in status(at)
    assert any("game is over" in i.value for i in at.info)
    button(at, "Undo").click().run()
    assert "to move" in status(at)
    stalemate = "".join(C.uci(m) for m in C.parse_moves("e3 a5 Qh5 Ra6 Qxa5 h5 h4 Rah6 Qxc7 f6 Qxd7+ Kf7 Qxb7 Qd3 Qxb8 Qh7 Qxc8 Kg6 Qe6"))
    at = open_app(model=CHESS, moves=stalemate)
    assert "draw by stalemate" in status(at)


@pytest.mark.parametrize("moves, kept", [("e2e5", 0), ("zzzz", 0), ("e2e4e2e4", 1), ("e7e5", 0), ("e2e4e7e5g1f3zz", 3), ("e2e4e7e5e7e8qd1d8", 2)])
def test_bad_chess_links_are_explained_and_keep_their_legal_start(moves, kept):
    at = open_app(model=CHESS, moves=moves)
    assert any("Could not restore the game" in e.value for e in at.error), [e.value for e in at.error]
    assert len(at.session_state["moves"]) == kept and ("White to move" if kept % 2 == 0 else "Black to move") in status(at)
    assert (f"Kept the first {kept} move" if kept else "Starting a new game") in " ".join(e.value for e in at.error)


def test_switching_from_othello_to_chess_starts_a_new_game():
    othello_model = next(s.name for s in list_models() if s.source == "bundled" and s.game == "othello")
    at = open_app(model=othello_model, moves="d3")
    at.selectbox(key="model_picker").set_value(CHESS).run()
    assert not at.exception
    assert at.session_state["moves"] == () and at.session_state["model"] == CHESS
    assert any("Chess" in i.value and "new game" in i.value for i in at.info)
    button(at, "Random move").click().run()
    assert len(at.session_state["moves"]) == 1 and "Black to move" in status(at)
