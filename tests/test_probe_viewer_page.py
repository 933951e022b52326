"""Probe viewer and the board player's probe panel, driven through widgets and links (AppTest)."""

from __future__ import annotations

from tests.test_board_player_page import button, open_app, open_page


def charts(at) -> dict[str, str]:
    """Plotly chart specs by element key (the figure JSON the browser would draw)."""
    return {c.proto.id: c.proto.spec for c in at.get("plotly_chart")}


def probe_specs(at) -> list[str]:
    return [c.proto.spec for c in at.get("plotly_chart") if "Probe at" in c.proto.spec]


def test_probe_viewer_updates_on_every_move():
    at = open_app(moves="d3c5")
    at.switch_page("pages/probe_viewer.py").run()
    assert not at.exception, at.exception
    seen = [probe_specs(at)]
    for _ in range(3):
        button(at, "Random move").click().run()
        assert not at.exception and not at.error, [e.value for e in at.error]
        seen.append(probe_specs(at))
    assert len(at.session_state["moves"]) == 5
    assert all(len(s) == 1 for s in seen)  # one probe board for the chosen layer
    assert len({s[0] for s in seen}) == 4  # and it changed with every move
    assert any("a random edit of the same size gives" in m.value for m in at.markdown)


def test_all_layers_view_and_every_target():
    at = open_app(moves="d3c5f6")
    at.switch_page("pages/probe_viewer.py").run()
    at.toggle[0].set_value(True).run()
    assert not at.exception
    assert len(probe_specs(at)) == 1 + 6  # the chosen layer plus one small board per layer
    for target in ["empty", "legal_next", "flipped", "black_white_empty"]:
        at.selectbox[0].set_value(target).run()
        assert not at.exception and not at.error, (target, [e.value for e in at.error])


def test_board_player_probe_panel_follows_typed_moves():
    at = open_app()
    at.toggle(key="probe_panel").set_value(True).run()
    specs = []
    for move in ["d3", "c5", "f6"]:
        at.text_input(key="moves_text").input(move)
        button(at, "Play these moves").click().run()
        assert not at.exception and not at.error
        specs.append(probe_specs(at))
    assert all(len(s) == 1 for s in specs) and len({s[0] for s in specs}) == 3


def test_probe_viewer_with_bad_link_reports_and_renders():
    at = open_page("pages/probe_viewer.py", moves="d3zz9")  # the link opens this page directly
    assert any(t.value == "Probe viewer" for t in at.title)
    assert any("Could not restore the game" in e.value and "Kept the first 1 move" in e.value for e in at.error)
    assert len(at.session_state["moves"]) == 1  # d3, the link's legal start
    at = open_page("pages/probe_viewer.py", moves="zz9")
    assert any("Could not restore the game" in e.value and "Starting a new game" in e.value for e in at.error)
    assert any("Play some moves first" in i.value for i in at.info)


def test_training_probes_from_the_page():
    at = open_app(moves="d3c5f6")
    at.switch_page("pages/probe_viewer.py").run()
    at.selectbox[0].set_value("legal_next").run()
    at.slider[0].set_value(200).run()
    at.slider[1].set_value(100).run()
    next(b for b in at.button if b.label.startswith("Train legal_next")).click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    trained = at.session_state["trained_probes"]
    probes, entry = trained[(at.session_state["model"], "legal_next")]
    assert entry["train_games"] == 200 and len(entry["accuracy"]) == 6


def test_the_link_carries_the_probe_target_and_layer():
    at = open_page("pages/probe_viewer.py", moves="d3c5f6", target="mine_theirs_empty", layer="2")
    assert at.selectbox(key="pv_target").value == "mine_theirs_empty" and at.select_slider(key="pv_layer").value == "blocks.2.hook_resid_post"
    assert (at.query_params["target"], at.query_params["layer"]) == ("mine_theirs_empty", "2")
    at.select_slider(key="pv_layer").set_value("blocks.4.hook_resid_post").run()
    assert at.query_params["layer"] == "4"
    bad = open_page("pages/probe_viewer.py", moves="d3", target="<b>x</b>", layer="99")
    assert not bad.exception and len(bad.error) == 2 and bad.query_params["target"] in ("mine_theirs_empty", bad.selectbox(key="pv_target").value)
