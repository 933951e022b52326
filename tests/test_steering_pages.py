"""The steering panel on every page that shows a unit, from a link (AppTest): the SAE browser's
feature, the lens's neuron and head views, the patching lab's site, and the text pages, on
othello8, chess, chess-pgn and text-stdlib; bad links say why and the page goes on."""

from __future__ import annotations

import pytest

from tests.test_board_player_page import open_page

GAMES = {"othello8": "d3c5f6f5e6e3c3d2", "chess": "e2e4e7e5g1f3b8c6", "chess-pgn": "e2e4e7e5g1f3b8c6"}


def verdict(at) -> str:
    found = [i.value for i in at.info if " nats" in i.value and ("KL" in i.value)]
    assert len(found) == 1, [i.value for i in at.info]
    return found[0]


def sweep_drawn(at) -> bool:
    return any("KL (nats)" in c.proto.spec and "illegal mass" in c.proto.spec or "KL (nats)" in c.proto.spec for c in at.get("plotly_chart"))


def clean(at) -> None:
    assert not at.exception and not at.error, [e.value for e in at.error]


@pytest.mark.parametrize("model", list(GAMES))
def test_every_board_page_steers_its_unit_from_a_link(model):
    moves = GAMES[model]
    at = open_page("pages/sae_browser.py", model=model, moves=moves, steer="clamp:2", sweep="1")
    clean(at)
    assert verdict(at).startswith("Clamping feature ") and "random feature" in verdict(at)
    assert sweep_drawn(at) and at.query_params["steer"] == "clamp:2" and at.query_params["sweep"] == "1"
    assert any("before" in d.value.columns and "after" in d.value.columns for d in at.dataframe)  # the top moves with their change
    assert {"Move", "Illegal probability", "KL(before ‖ after)"} <= {m.label for m in at.metric}
    if model != "othello8":
        assert any("python-chess" in c.value for c in at.caption)

    at = open_page("pages/logit_lens.py", model=model, moves=moves, section="neurons", neuron="L2N7", steer="zero")
    clean(at)
    assert verdict(at).startswith("Ablating L2N7 (to 0) at this move") and at.query_params["neuron"] == "L2N7" and at.query_params["steer"] == "zero"

    at = open_page("pages/logit_lens.py", model=model, moves=moves, section="attention", head="L1H2", steer="mean", steer_from="2")
    clean(at)
    assert verdict(at).startswith("Ablating L1H2 to its mean from move 2 on") and at.query_params["steer_from"] == "2"

    at = open_page("pages/patching_lab.py", model=model, moves=moves, change="2", component="attn_out", layer="0", steer_unit="L0H1", steer="scale:0.5")
    clean(at)
    assert verdict(at).startswith("Scaling L0H1 by 0.5 at this position") and at.query_params["steer_unit"] == "L0H1"


def test_the_text_pages_steer_and_continue_the_prompt():
    at = open_page("pages/sae_browser.py", model="text-stdlib", steer="clamp:3", sweep="1")
    clean(at)
    assert verdict(at).startswith("Clamping feature ") and sweep_drawn(at)
    assert any(t.value.startswith("Without the edit:") and "With the edit:" in t.value for t in at.text)
    at = open_page("pages/logit_lens.py", model="text-stdlib", steer="mean", steer_from="2")
    clean(at)
    assert verdict(at).startswith("Ablating L0H") and "from token 2 on" in verdict(at)
    unit = at.selectbox(key="text_lens_steer_unit")
    neuron = next(o for o in unit.options if "N" in o)  # a neuron of the attribution table
    unit.set_value(neuron).run()
    clean(at)
    assert verdict(at).startswith(f"Ablating {neuron} to its mean") and at.query_params["steer_unit"] == neuron
    at = open_page("pages/patching_lab.py", model="text-stdlib", steer_unit="L0H3", steer="zero")
    clean(at)
    assert verdict(at).startswith("Ablating L0H3 (to 0)") and at.query_params["steer_unit"] == "L0H3"


@pytest.mark.parametrize("params, message", [
    ({"steer": "add:nan"}, "finite number"),
    ({"steer": "clamp:1e30"}, "finite number"),
    ({"steer": "explode:1"}, "the operation must be one of"),
    ({"steer": "clamp:2", "steer_from": "abc"}, "a position from 1 on"),
    ({"section": "attention", "head": "L0H0", "steer": "clamp:2"}, "zero, mean, scale"),
    ({"ablate_k": "0"}, "from 1 to 64"),
])
def test_bad_steering_links_say_why_and_the_page_goes_on(params, message):
    page = "pages/logit_lens.py" if "section" in params else "pages/sae_browser.py"
    at = open_page(page, model="othello8", moves="d3c5f6", **params)
    assert not at.exception
    assert any(message in e.value.replace("\\", "") for e in at.error), [e.value for e in at.error]
    if params.get("steer_from"):
        assert verdict(at).startswith("Clamping") and "at this move" in verdict(at)  # the rest of the link still applies


def test_the_panel_driven_by_its_widgets_writes_the_link():
    at = open_page("pages/sae_browser.py", model="othello8", moves="d3c5f6f5")
    assert not any(" nats" in i.value for i in at.info)  # off until asked: the page's other work stays as fast
    at.toggle(key="steer_feature_on").set_value(True).run()
    at.selectbox(key="steer_feature_op").set_value("add").run()
    at.number_input(key="steer_feature_value").set_value(1.5).run()
    at.radio(key="steer_feature_where").set_value("from position p on").run()
    at.number_input(key="steer_feature_from").set_value(3).run()
    clean(at)
    assert verdict(at).startswith("Adding feature ") and "from move 3 on" in verdict(at)
    assert at.query_params["steer"] == "add:1.5" and at.query_params["steer_from"] == "3"
    at.toggle(key="ablate_sets_on").set_value(True).run()
    table = next(d.value for d in at.dataframe if "ablated" in d.value.columns)
    assert table["ablated"].iloc[0].startswith("top 5 active") and table["KL (nats)"].iloc[0] > 0
    assert at.query_params["ablate_k"] == "5" and "ablate_property" in at.query_params
