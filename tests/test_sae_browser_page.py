"""The SAE feature browser on the bundled SAE, driven through its widgets (AppTest)."""

from __future__ import annotations

import pytest

from core.interp.sae.store import list_saes
from core.models.registry import default_model_name
from tests.test_board_player_page import button, open_page

PAGE = "pages/sae_browser.py"
MODEL = default_model_name()
pytestmark = pytest.mark.skipif(not list_saes(MODEL), reason=f"no bundled SAE for {MODEL}")


def feature_line(at) -> str:
    return next(m.value for m in at.markdown if m.value.startswith("**Feature "))


def test_every_panel_renders_for_the_bundled_sae():
    at = open_page(PAGE, model=MODEL, moves="d3c5f6")
    assert not at.error, [e.value for e in at.error]
    labels = {m.label for m in at.metric}
    assert {"FVU", "L0", "CE recovered (zero)", "CE recovered (mean)", "Dead", "Dense"} <= labels
    assert len(at.dataframe) >= 3  # board metrics beside baselines, by property set, the feature table
    sets = next(e for e in at.expander if e.label.startswith("By property set"))
    table = sets.dataframe[0].value
    assert "board, blanks masked" in set(table["property set"]) and table["SAE features: board rec."].notna().any()
    charts = at.get("plotly_chart")
    # density histogram, current board, activation histogram, logit effects, top boards, >= 1 band, 2 probe-cosine boards
    assert len(charts) >= 8
    assert any("Top-5 with the SAE spliced in" in m.value for m in at.markdown)
    assert "fires on" in feature_line(at)


def test_choosing_features_and_playing_moves():
    at = open_page(PAGE, model=MODEL, moves="d3c5f6")
    active = [b for b in at.button if b.label.startswith("#")]
    assert active, "features active now"
    first = active[0].label
    feature = int(first[1:].split(":")[0])
    at.number_input(key="sae_feature").set_value(0 if feature else 1).run()
    assert feature_line(at).startswith(f"**Feature {0 if feature else 1}**")
    button(at, first).click().run()  # open an active feature from its button
    assert feature_line(at).startswith(f"**Feature {feature}**")
    button(at, "Random move").click().run()
    assert len(at.session_state["moves"]) == 4 and not at.exception
    after = [b.label for b in at.button if b.label.startswith("#")]
    assert after and after != [b.label for b in active]
    button(at, "Open in every page").click().run()
    assert not at.exception and at.query_params["moves"]


def test_no_game_yet_and_bad_link():
    at = open_page(PAGE, model=MODEL)
    assert any("Play a move" in i.value for i in at.info)
    at = open_page(PAGE, model=MODEL, moves="d3zz")
    assert any("Could not restore the game" in e.value for e in at.error)
    assert feature_line(at)


def test_train_an_sae_from_the_page():
    at = open_page(PAGE, model=MODEL, moves="d3c5f6")
    by_label = lambda widgets, label: next(w for w in widgets if w.label == label)  # noqa: E731
    by_label(at.select_slider, "Activations").set_value(100_000)
    by_label(at.select_slider, "Features (d_sae)").set_value(256)
    by_label(at.selectbox, "Layer").set_value(1)
    button(at, "Train SAE").click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    picked = at.session_state["sae_pick"]
    assert picked.endswith("(this session)") and picked.startswith("L1 resid_post topk 256")
    assert "fires on" in feature_line(at) or "never fires" in feature_line(at)
    assert {"FVU", "L0"} <= {m.label for m in at.metric}


def test_feature_and_sae_in_the_link():
    name = list_saes(MODEL)[0].name
    at = open_page(PAGE, model=MODEL, moves="d3c5f6", sae=name, feature="7")
    assert feature_line(at).startswith("**Feature 7**")
    assert at.query_params["feature"] == "7" and at.query_params["sae"] == name
    at.number_input(key="sae_feature").set_value(9).run()
    assert at.query_params["feature"] == "9"
    at = open_page(PAGE, model=MODEL, moves="d3c5f6", sae="nope", feature="99999")
    errors = " ".join(e.value for e in at.error)
    assert "sae='nope'" in errors and "feature='99999'" in errors
    assert feature_line(at)  # the page goes on with the defaults
    at = open_page(PAGE, model=MODEL, feature="x1")
    assert any("feature='x1'" in e.value for e in at.error)


def test_search_finds_the_features_that_track_a_property_and_opens_one():
    at = open_page(PAGE, model=MODEL, moves="d3c5f6")
    at.text_input(key="feature_search").input("d3").run()
    found = [b for b in at.button if b.label.startswith("feature ") and " d3 · F1 " in b.label]
    assert found, [b.label for b in at.button]
    scores = [float(b.label.rsplit("F1 ", 1)[1]) for b in found]
    assert scores[0] == max(scores)  # ranked by F1 (laid out across columns: the best comes first)
    feature = int(found[0].label.split(" ")[1])
    found[0].click().run()
    assert feature_line(at).startswith(f"**Feature {feature}**")
    assert "d3" in feature_line(at) or scores[0] < 1  # its best property is the one found, or it tracks d3 among others
