"""The board player page driven through its widgets and through share links (AppTest)."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from core.games.othello import engine as othello
from core.games.othello.play import game_state
from core.models.registry import default_model_name, list_models, load_model

APP = str(Path(__file__).resolve().parents[1] / "app.py")


def open_app(**params) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=120)
    for key, value in params.items():
        at.query_params[key] = value
    at.run()
    assert not at.exception, at.exception
    return at


def open_page(page: str, timeout: int = 300, **params) -> AppTest:
    """Open ``page`` directly (as a link to it would), with query parameters."""
    at = AppTest.from_file(APP, default_timeout=timeout)
    for key, value in params.items():
        at.query_params[key] = value
    at.switch_page(page).run()
    assert not at.exception, at.exception
    return at


def button(at: AppTest, label: str):
    return next(b for b in at.button if b.label == label)


def status(at: AppTest) -> str:
    return next(m.value for m in at.markdown if "to move" in m.value or "Game over" in m.value)


def metric(at: AppTest, label: str) -> str:
    return next(m.value for m in at.metric if m.label == label)


def test_share_link_restores_position_and_shows_prediction():
    at = open_app(model=default_model_name(), moves="d3c5f6")
    assert at.session_state["moves"] == (19, 34, 45)
    assert status(at).startswith("**White to move")
    top1 = metric(at, "Top-1 move")
    assert othello.label_to_square(top1) in range(64)
    assert dict(at.query_params) == {"model": default_model_name(), "moves": "d3c5f6"}
    assert len(at.dataframe) == 1 and len(at.dataframe[0].value) == 10


def test_typed_moves_update_the_model_panel_every_move():
    at = open_app()
    assert not at.metric  # no input yet: the model predicts from the first move on
    seen = []
    for move in ["d3", "c5", "f6", "f5"]:
        at.text_input(key="moves_text").input(move)
        button(at, "Play these moves").click().run()
        assert not at.exception and not at.error, [e.value for e in at.error]
        seen.append((at.session_state["moves"], metric(at, "Top-1 move"), metric(at, "Illegal mass")))
    assert [len(s[0]) for s in seen] == [1, 2, 3, 4]
    assert at.query_params["moves"] == "d3c5f6f5"
    # The panel really follows the position: the prediction is recomputed for each new move.
    assert len({(s[1], s[2]) for s in seen}) > 1


def test_illegal_and_malformed_input_is_explained_and_game_goes_on():
    at = open_app(moves="d3")
    at.text_input(key="moves_text").input("a1")
    button(at, "Play these moves").click().run()
    assert not at.exception
    assert any("a1" in e.value and "outflank" in e.value for e in at.error)
    assert at.session_state["moves"] == (19,)
    at.text_input(key="moves_text").input("d3 zz!")
    button(at, "Play these moves").click().run()
    assert any("Could not play" in e.value for e in at.error)
    assert at.session_state["moves"] == (19,)


def test_undo_reset_random_and_published_notation():
    at = open_app()
    at.text_input(key="moves_text").input("C3 E2")  # published style (row letter, column from 0): d3 c5
    at.radio(key="notation").set_value("C2 (published: row, column from 0)")
    button(at, "Load as a new game").click().run()
    assert at.session_state["moves"] == (othello.label_to_square("d3"), othello.label_to_square("c5"))
    button(at, "Random move").click().run()
    assert len(at.session_state["moves"]) == 3
    game_state(at.session_state["moves"])  # the random move was legal
    button(at, "Undo").click().run()
    assert len(at.session_state["moves"]) == 2
    button(at, "Reset").click().run()
    assert at.session_state["moves"] == () and "moves" not in at.query_params


def test_auto_notation_says_when_it_read_the_published_style():
    """"C3" is no legal first move as a label (c3); in the published style it is d3: played, and said."""
    at = open_app()
    at.text_input(key="moves_text").input("C3")
    button(at, "Load as a new game").click().run()
    assert at.session_state["moves"] == (othello.label_to_square("d3"),)
    assert any("published notation" in i.value and "d3" in i.value for i in at.info), [i.value for i in at.info]
    at.text_input(key="moves_text").input("c5")  # a label that is legal: read as a label, nothing said
    button(at, "Play these moves").click().run()
    assert len(at.session_state["moves"]) == 2 and not any("published notation" in i.value for i in at.info)


def test_a_long_paste_keeps_the_reason_in_sight():
    at = open_app()
    at.text_input(key="moves_text").input("d3 " + "zz " * 3000)
    button(at, "Play these moves").click().run()
    message = next(e.value for e in at.error if "Could not play" in e.value)
    assert "9,003 characters" in message and message.endswith("moves look like 'd3'") and len(message) < 400, message  # the reason, whole


def test_full_random_game_reaches_game_over_with_score():
    at = open_app()
    for _ in range(70):
        if "Game over" in status(at):
            break
        button(at, "Random move").click().run()
        assert not at.exception
    assert "Game over" in status(at)
    state = game_state(at.session_state["moves"])
    black, white = state.score
    assert f"black {black} – white {white}" in status(at)
    assert any("game is over" in i.value for i in at.info)


@pytest.mark.parametrize(
    "params,expected",
    [
        ({"moves": "d3z9"}, "Could not restore the game"),
        ({"moves": "d3d3"}, "Could not restore the game"),
        ({"model": "no-such-model", "moves": "d3"}, "Unknown model"),
        ({"moves": "!!!"}, "Could not restore the game"),
    ],
)
def test_bad_url_parameters_are_reported_not_raised(params, expected):
    at = open_app(**params)
    assert any(expected in e.value for e in at.error), [e.value for e in at.error]
    assert "to move" in status(at)


def test_a_link_with_a_bad_move_keeps_the_game_up_to_it():
    at = open_app(moves="d3c5f6z9e6")
    assert at.session_state["moves"] == tuple(othello.label_to_square(m) for m in ("d3", "c5", "f6"))
    assert any("Kept the first 3 moves, up to where it stops" in e.value for e in at.error), [e.value for e in at.error]


def test_hub_model_offline_shows_clear_error():
    hub = next(s for s in list_models() if s.source == "hub")
    at = open_app(model=hub.name, moves="d3")
    assert any("network access" in e.value for e in at.error)
    assert "to move" in status(at)  # the board still works
    assert not at.info, [i.value for i in at.info]  # the reason is what shows, not a vague hint


@pytest.mark.parametrize("page", ["pages/probe_viewer.py", "pages/logit_lens.py", "pages/sae_browser.py", "pages/patching_lab.py"])
def test_an_analysis_page_with_an_unloadable_model_keeps_its_link(page):
    hub = next(s for s in list_models() if s.source == "hub")
    at = open_page(page, model=hub.name, moves="d3")
    assert any("could not be loaded" in e.value and "work offline" in e.value for e in at.error)
    assert any("Share this view" in str(el.proto) for el in at.sidebar)
    assert at.query_params["model"] in (hub.name, [hub.name])


def test_switching_to_a_model_of_another_size_starts_a_new_game():
    bundled = [s for s in list_models() if s.source == "bundled" and s.kind == "game"]
    sizes = {s.board_size for s in bundled}
    if len(sizes) < 2:
        pytest.skip("only one board size is bundled")
    first, other = bundled[0], next(s for s in bundled if s.board_size != bundled[0].board_size)
    at = open_app(model=first.name, moves="d3" if first.board_size == 8 else "c2")
    at.selectbox(key="model_picker").set_value(other.name).run()
    assert not at.exception
    assert at.session_state["moves"] == () and at.session_state["model"] == other.name
    button(at, "Random move").click().run()
    assert len(at.session_state["moves"]) == 1 and at.session_state["moves"][0] < other.board_size**2


@pytest.mark.parametrize("model, moves", [("othello8", "d3c5f6"), ("chess", "e2e4e7e5"), ("chess-pgn", "")])
def test_a_position_downloads_as_json_and_charts_save_in_the_chosen_format(model, moves):
    """What a paper needs: the position's analysis as JSON (the page's own numbers: its top move is
    the page's), and every chart's download button in PNG or SVG."""
    import json

    from core.interp.shared.position_record import position_record
    from ui.caches import cached_predictions

    at = open_app(model=model, **({"moves": moves} if moves else {}))
    assert any(b.label.startswith("Download this position's analysis") for b in at.get("download_button"))
    handle = load_model(model)
    state = handle.game.state(at.session_state["moves"])
    record = json.loads(json.dumps(position_record(model, handle.game, state, cached_predictions(model, state.moves), link="x"), allow_nan=False))
    assert record["link_moves"] == moves and len(record["legal_moves"]) == len(state.legal_moves)
    top = record["prediction"]["top_moves"][0]
    if handle.game.square_moves:
        assert top["move"] == metric(at, "Top-1 move") and len(record["prediction"]["history"]) == len(state.moves)
    assert 0 <= record["prediction"]["illegal_mass"] <= 1 and top["probability"] >= record["prediction"]["top_moves"][1]["probability"]
    charts = at.get("plotly_chart")
    assert charts and all('"png"' in c.proto.config for c in charts)
    at.session_state["chart_format"] = "svg"
    at.run()
    assert all('"svg"' in c.proto.config for c in at.get("plotly_chart"))
