"""The logit lens page for every bundled model, with plain, game and bad links (AppTest)."""

from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest

from core.models.registry import list_models
from tests.test_board_player_page import button, open_page

BUNDLED = [s for s in list_models() if s.source == "bundled" and s.game == "othello"]


def open_lens(**params) -> AppTest:
    return open_page("pages/logit_lens.py", **params)


@pytest.mark.parametrize("spec", BUNDLED, ids=[s.name for s in BUNDLED])
def test_lens_page_renders_every_panel(spec):
    moves = "d3c5f6f5e6" if spec.board_size == 8 else "b3b4c5"
    at = open_lens(model=spec.name, moves=moves)
    assert not at.error, [e.value for e in at.error]
    # One section at a time: each shows its own panels only, and the link says which.
    expected = {  # the section's header, the figures then on the page (the legality chart, then the section's), the link's section
        "Layer by layer": ("The prediction after each layer", 1 + 7, None), "Attribution": ("Direct logit attribution", 1 + 2, "attribution"),
        "Attention": ("Attention", 1 + 1, "attention"), "Neuron view": ("Neuron view", 1 + 4, "neurons"),
    }
    for section, (header, charts, param) in expected.items():
        at.button_group(key="lens_section").set_value(section).run()
        assert not at.exception and not at.error, (section, [e.value for e in at.error])
        assert [h.value for h in at.subheader] == [header]
        assert len(at.get("plotly_chart")) >= charts, section
        assert at.query_params.get("section") in ((None, []) if param is None else (param, [param])), section
    at.button_group(key="lens_section").set_value("Attribution").run()
    at.radio[0].set_value("legal minus illegal").run()
    assert not at.exception
    at.button_group(key="lens_section").set_value("Layer by layer").run()
    at.toggle[0].set_value(True).run()  # lens after attention layers too
    assert not at.exception
    assert len(at.get("plotly_chart")) >= 1 + 13  # every layer's board after attention too


def test_each_section_is_in_the_link():
    for param, header in (("attribution", "Direct logit attribution"), ("attention", "Attention"), ("neurons", "Neuron view")):
        at = open_lens(moves="d3c5f6", section=param)
        assert [h.value for h in at.subheader] == [header]
        assert at.query_params["section"] in (param, [param])
    bad = open_lens(moves="d3c5f6", section="everything")
    assert not bad.exception and any("lens section" in e.value for e in bad.error)
    assert [h.value for h in bad.subheader] == ["The prediction after each layer"]


def test_lens_page_follows_the_game():
    at = open_lens(moves="d3c5")
    before = [c.proto.spec for c in at.get("plotly_chart")]
    button(at, "Random move").click().run()
    assert not at.exception and len(at.session_state["moves"]) == 3
    after = [c.proto.spec for c in at.get("plotly_chart")]
    assert before[1:] != after[1:]


def test_lens_page_without_moves_and_with_bad_link():
    at = open_lens()
    assert any("Play some moves" in i.value for i in at.info)
    at = open_lens(moves="q9q9", model="nope")
    assert any("Unknown model" in e.value for e in at.error) or any("Could not restore" in e.value for e in at.error)
    assert any("Play some moves" in i.value for i in at.info)


def test_one_move_game_opens_the_lens():
    at = open_lens(moves="d3", section="attention")
    assert not at.exception and not at.error, [e.value for e in at.error]
    at.button_group(key="attention_view").set_value("All heads from one position").run()
    assert not at.exception
    assert any("the only move so far" in c.value for c in at.caption)


def test_neuron_view_keeps_its_neuron_across_moves_searches_and_links():
    at = open_lens(moves="d3c5f6f5e6", neuron="L2N7", section="neurons")
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert (at.session_state["neuron_layer"], at.session_state["neuron_index"]) == (2, 7)
    assert any("**L2N7** fires on" in m.value for m in at.markdown)
    button(at, "Random move").click().run()
    assert (at.session_state["neuron_layer"], at.session_state["neuron_index"]) == (2, 7)  # the move leaves it open
    assert at.query_params["neuron"] == ["L2N7"] or at.query_params["neuron"] == "L2N7"
    at.text_input(key="neuron_search_2").input("mine d3").run()
    found = [b for b in at.button if b.label.startswith("L2N") and "mine d3 · F1" in b.label]  # named with their layer
    assert found, [b.label for b in at.button]
    found[0].click().run()
    assert at.session_state["neuron_index"] == int(found[0].label[3:].split(" ")[0])
    at.text_input(key="neuron_search_2").input("no such property").run()
    assert any("No board property matches" in c.value for c in at.caption)


def test_bad_neuron_in_the_link_is_reported_and_the_view_opens():
    at = open_lens(moves="d3c5f6", neuron="L99N5", section="neurons")
    assert not at.exception
    assert any("L99N5" in e.value for e in at.error)
    assert any("fires on" in m.value for m in at.markdown)


def lens_board_maxima(at) -> list[float]:
    """The colour maximum of each lens board on the page (board squares are one scatter trace)."""
    import json

    out = []
    for chart in at.get("plotly_chart"):
        spec = json.loads(chart.proto.spec)
        title = ((spec.get("layout") or {}).get("title") or {}).get("text", "")
        if (" ✓" in title or " ✗" in title) and ":" in title:
            out.append(max(t["marker"]["cmax"] for t in spec["data"] if isinstance(t.get("marker"), dict) and "cmax" in t["marker"]))
    return out


def test_lens_boards_on_their_own_or_one_shared_scale_and_the_link_keeps_it():
    """One shared scale: every board's colour maximum is the same float64 number (rounded to 6
    digits to compare), the largest of the boards' own maxima (1e-6 of slack for that rounding)."""
    at = open_lens(moves="d3c5f6f5e6")
    own = lens_board_maxima(at)
    assert len(own) == 7 and len(set(round(m, 6) for m in own)) > 1  # each board its own maximum
    at.button_group(key="lens_scale").set_value("One for every layer").run()
    shared = lens_board_maxima(at)
    assert len(set(round(m, 6) for m in shared)) == 1 and abs(shared[0] - max(own)) < 1e-6
    assert at.query_params["scale"] in ("shared", ["shared"])
    again = open_lens(moves="d3c5f6f5e6", scale="shared")
    assert again.button_group(key="lens_scale").value == "One for every layer"
    bad = open_lens(moves="d3c5f6f5e6", scale="huge")
    assert not bad.exception and any("colour scale" in e.value for e in bad.error)


def test_lens_table_gives_the_outputs_top1_rank_and_kl_at_each_layer():
    at = open_lens(moves="d3c5f6f5e6")
    table = next(d.value for d in at.dataframe if any(str(c).startswith("rank of the output") for c in d.value.columns))
    rank_col = next(c for c in table.columns if str(c).startswith("rank of the output"))
    kl = table["KL(output ‖ read-out), nats"].to_numpy()
    assert table[rank_col].iloc[-1] == 1 and kl[-1] == 0.0  # the output agrees with itself
    assert (table[rank_col] >= 1).all() and (kl >= 0).all() and kl[0] > kl[-1]
