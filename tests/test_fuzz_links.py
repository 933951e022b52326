"""Fuzzing shared links: any parameters give a model, a playable game and short plain messages;
every page opened by AppTest with fuzzed parameters renders without an exception."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.links import read_choice, read_game_link, read_prompt_link
from core.models.registry import default_model_name, list_models
from tests.fuzzing import count, fuzz

SPECS = {s.name: s for s in list_models()}
DEFAULT = default_model_name()  # read once: it lists the bundle folders
NASTY = ["[Click here](https://example.com/login)", "![x](https://example.com/a.png)", "<script>alert(1)</script>", "$$x$$", "**bold**", "\x00", "d3" * 3000, "../../etc/passwd", "%00", "1e9", "-1", " 7 ", "٣", "NaN"]
TEXT = st.one_of(st.sampled_from(NASTY), st.text(max_size=80), st.text(alphabet="abcdefgh12345678 .xO-=qrbnNBRQK", max_size=60))
MODELS = st.one_of(st.sampled_from(list(SPECS)), TEXT)
VALID_MOVES = {name: spec.game_plugin.url_moves(spec.game_plugin.random_games(1, seed=3)[0][:12]) for name, spec in SPECS.items() if spec.source == "bundled" and spec.kind == "game"}
MOVES = st.one_of(TEXT, st.sampled_from(list(VALID_MOVES.values())))


@fuzz(4000)
@given(params=st.dictionaries(st.sampled_from(["model", "moves", "feature", "sae", "junk"]), st.one_of(MODELS, MOVES), max_size=4))
def test_any_link_gives_a_model_a_playable_game_and_short_messages(params):
    count("link: model and moves")
    name, moves, problems = read_game_link(params, SPECS, DEFAULT)
    assert name in SPECS
    assert SPECS[name].kind == "game" and SPECS[name].game_plugin.state(moves).moves == moves or SPECS[name].kind == "text" and moves == ()
    assert all(len(p) <= 700 for p in problems)
    if params.get("model") in VALID_MOVES and params.get("moves") == VALID_MOVES[params["model"]]:
        assert moves and not problems


@fuzz(2000)
@given(text=TEXT, kind=st.sampled_from(["feature", "sae"]))
def test_any_page_parameter_is_a_valid_choice_or_a_short_message(text, kind):
    count("link: page parameters")
    valid = range(2048) if kind == "feature" else ["L3_resid_post_topk32", "L4_resid_post_topk32"]
    value, problem = read_choice(kind, text, valid, "feature number" if kind == "feature" else "bundled SAE")
    assert (value is None) != (problem is None)
    assert value is None or value in valid
    assert problem is None or len(problem) <= 300


PAGES = ["pages/board_player.py", "pages/probe_viewer.py", "pages/logit_lens.py", "pages/sae_browser.py", "pages/patching_lab.py"]


@pytest.mark.parametrize("page", PAGES)
@fuzz(3)
@given(params=st.fixed_dictionaries({"model": MODELS, "moves": MOVES}, optional={"feature": TEXT, "sae": TEXT}))
def test_pages_opened_with_fuzzed_links_render(page, params):
    from tests.test_board_player_page import open_page

    count("link: pages by AppTest")
    at = open_page(page, **params)  # asserts no exception
    for element in list(at.error) + list(at.markdown):
        assert "<script>" not in element.value and "](https://example.com" not in element.value.replace("\\", "")


@fuzz(2000)
@given(text=st.one_of(TEXT, st.text(max_size=6000)))
def test_any_prompt_in_a_link_is_used_cut_to_the_limit_with_a_short_message(text):
    count("link: prompt")
    prompt, problem = read_prompt_link({"prompt": text}, 4000)
    assert prompt is not None and len(prompt) <= 4000 and "\x00" not in prompt
    assert (problem is not None) == (len(text.replace("\x00", "")) > 4000)
    assert problem is None or len(problem) <= 200
