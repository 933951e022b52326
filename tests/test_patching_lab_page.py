"""The patching lab for plain, game and bad links, and its controls (AppTest)."""

from __future__ import annotations

from streamlit.testing.v1 import AppTest

from core.games.othello import engine as othello

from tests.test_board_player_page import open_page


def open_lab(**params) -> AppTest:
    return open_page("pages/patching_lab.py", **params)


def run_exact_sweep(at):
    """Click "Run the exact sweep" when the lab priced it above its budget (it depends on the rate
    an earlier sweep in this process measured); the maps then hold exact patching either way."""
    run = [b for b in at.button if b.label.startswith("Run the exact sweep")]
    if run:
        assert any("attribution estimate" in (c.proto.spec or "") for c in at.get("plotly_chart"))
        run[0].click().run()
    assert not [b for b in at.button if b.label.startswith("Run the exact sweep")]
    assert at.query_params["exact"] in ("1", ["1"])
    return at


def test_lab_renders_and_updates_with_the_corrupted_move():
    at = run_exact_sweep(open_lab(moves="d3c5f6f5e6e3c3f3"))
    assert not at.error, [e.value for e in at.error]
    assert at.subheader[0].value.startswith("One site")
    charts = {c.proto.id for c in at.get("plotly_chart")}
    assert len(charts) >= 6  # clean, corrupted, block maps, head grid, site boards, agreement
    first = [c.proto.spec for c in at.get("plotly_chart")]
    at.toggle(key="pl_auto").set_value(True).run()  # every later change runs the exact sweep
    at.slider[0].set_value(3).run()  # corrupt another move
    assert not at.exception
    assert [c.proto.spec for c in at.get("plotly_chart")] != first
    at.radio[0].set_value("logit difference").run()
    at.radio[1].set_value("noising: corrupted → clean run").run()
    assert not at.exception and not at.error
    assert len(at.dataframe) == 1 and len(at.dataframe[0].value) == 12  # diffed-neuron table


def test_lab_with_no_game_and_with_bad_link():
    at = open_lab()
    assert any("Play at least two moves" in i.value for i in at.info)
    at = open_lab(moves="d3,c5;;x")
    assert any("Could not restore" in e.value for e in at.error)
    assert any("Play at least two moves" in i.value for i in at.info)


def test_lab_settings_round_trip_through_the_link():
    """Every setting of the lab is in the link, and opening that link restores them."""
    at = open_lab(moves="d3c5f6f5e6e3c3f3", change="3", metric="logit-difference")
    assert at.slider[0].value == 3 and at.radio[0].value == "logit difference"
    at.radio[1].set_value("noising: corrupted → clean run").run()  # a widget change reaches the link too
    assert not at.exception and not at.error
    link = dict(at.query_params)
    assert {"change", "instead", "metric", "target", "minus", "direction", "normalise", "component", "layer", "position"} <= set(link)
    assert link["change"] == ["3"] or link["change"] == "3"
    assert (link["metric"], link["direction"]) in ((["logit-difference"], ["noising"]), ("logit-difference", "noising"))

    params = {k: v[0] if isinstance(v, list) else v for k, v in link.items()}
    again = open_lab(**params)
    assert not again.error, [e.value for e in again.error]
    widgets = lambda a: ([s.value for s in a.slider], [r.value for r in a.radio], [s.value for s in a.selectbox if s.key != "model_picker"], [t.value for t in a.toggle])  # noqa: E731
    assert widgets(again) == widgets(at)
    assert dict(again.query_params) == dict(at.query_params)


def test_lab_link_with_bad_settings_says_so_and_uses_defaults():
    at = open_lab(moves="d3c5f6f5e6e3c3f3", change="99", metric="<b>x</b>", target="z9", direction="sideways", layer="-1")
    assert not at.exception
    errors = " ".join(e.value for e in at.error)
    for param in ("change=", "metric=", "target=", "direction=", "layer="):
        assert param in errors, (param, errors)
    assert "<b>" not in errors or "\\<b>" in errors or "&lt;b&gt;" in errors or "x</b>" in errors
    assert at.subheader[0].value.startswith("One site")


def test_a_slow_exact_sweep_waits_for_its_button_with_attribution_shown_meanwhile():
    at = run_exact_sweep(open_lab(moves="d3c5f6f5e6e3c3f3"))  # measures this model's rate
    # A long game: thousands of patched runs, priced above the budget at any measured rate here.
    long_game = othello.random_games(1, 8, seed=21)[0, :40]
    at.session_state["moves"] = tuple(int(m) for m in long_game)
    at.run()
    assert not at.exception
    run = [b for b in at.button if b.label.startswith("Run the exact sweep")]
    if not run:  # a machine fast enough to patch it all within budget runs it at once
        assert at.query_params["exact"] in ("1", ["1"])
        return
    assert "patched runs, about" in run[0].label
    specs = [c.proto.spec or "" for c in at.get("plotly_chart")]
    assert any("attribution estimate" in s for s in specs)
    assert "exact" not in at.query_params
    run[0].click().run()
    assert not [b for b in at.button if b.label.startswith("Run the exact sweep")]
    assert at.query_params["exact"] in ("1", ["1"])


def test_a_cut_game_says_which_move_and_why_in_one_sentence():
    at = open_lab(moves="d3c5f6f5e6", change="2", instead="e3")
    assert [w.value for w in at.warning] == ["Move 4 (f5) is illegal after the change: both games are cut to 3 moves (2 dropped)."]


def test_a_head_opens_below_the_grid_and_on_the_lens():
    """The head grid's strongest head opens below it; its button shows that head's attention on
    the logit lens, and the lens's link then carries the head."""
    at = run_exact_sweep(open_lab(moves="d3c5f6f5e6e3c3f3"))
    head_button = next(b for b in at.button if b.key == "pl_open_head")
    assert head_button.label.startswith("Open L") and any("patched at every position" in m.value for m in at.markdown)
    at.session_state["pl_head"] = (4, 1, 2)  # as a click on the pattern map's cell L1H2
    at.run()
    head_button = next(b for b in at.button if b.key == "pl_open_head")
    assert head_button.label == "Open L1H2's attention on the logit lens" and any(m.value.startswith("**L1H2**, pattern patched") for m in at.markdown)
    head_button.click().run()
    assert not at.exception and at.title[0].value == "Logit lens"
    assert at.session_state["attention_head"] == "L1H2" and at.query_params["head"] == "L1H2" and at.query_params["section"] == "attention"
    linked = open_page("pages/logit_lens.py", moves="d3c5f6", section="attention", head="L2H0")
    assert linked.session_state["attention_view"] == "One head" and linked.selectbox(key="attention_head").value == "L2H0"
    bad = open_page("pages/logit_lens.py", moves="d3c5f6", section="attention", head="L99H0")
    assert not bad.exception and any("attention head" in e.value for e in bad.error)
