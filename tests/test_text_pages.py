"""Every page for a text model, through AppTest: plain, with a prompt, and with bad links."""

from __future__ import annotations

import re

import pytest

from core.interp.patching import sweeps as PT
from core.interp.sae.store import list_saes
from core.models.registry import list_models, load_model
from tests.test_board_player_page import open_app, open_page
from tests.test_pages_every_model import nan_words

TEXT_MODEL = next((s.name for s in list_models() if s.source == "bundled" and s.kind == "text"), None)
pytestmark = pytest.mark.skipif(TEXT_MODEL is None, reason="no bundled text model")
PAGES = ["pages/board_player.py", "pages/probe_viewer.py", "pages/logit_lens.py", "pages/sae_browser.py", "pages/patching_lab.py"]
PROMPT = "import os\nimport sys\n\nprint(os.path.join('a', 'b'))\n"
BAD_LINKS = {
    "moves for a game": {"moves": "e2e4"},
    "bad page values": {"pos": "99999", "feature": "-3", "sae": "<b>nope</b>"},
    "markup prompt": {"prompt": "[click](https://example.com) <script>alert(1)</script> **bold**"},
    "huge prompt": {"prompt": "x = 1\n" * 2000},
}


@pytest.mark.parametrize("page", PAGES)
def test_an_empty_prompt_shows_no_nan_and_no_exception(page):
    at = open_page(page, model=TEXT_MODEL)
    at.session_state["prompt"] = ""  # as a visitor who clears the shared prompt box
    at.run()
    assert at.session_state["prompt"] == "" and not at.exception and not errors(at), (at.exception, errors(at))
    assert not nan_words(at), nan_words(at)


def test_the_text_lab_warns_when_the_metric_gap_is_too_small_to_normalise_by():
    """The default prompt's default tokens: the metric barely differs between the two prompts."""
    at = open_page("pages/patching_lab.py", model=TEXT_MODEL)
    caption = next(c.value for c in at.caption if "Metric: logit of" in c.value)
    clean, corrupted = (float(x) for x in re.findall(r"(?:clean|corrupted) (-?\d+\.\d+)", caption))
    small = abs(clean - corrupted) < max(0.5, 0.25 * max(abs(clean), abs(corrupted)))
    assert any("differ by only" in w.value for w in at.warning) == small, (caption, [w.value for w in at.warning])
    assert PT.small_gap_warning(1.21, 1.49) and not PT.small_gap_warning(3.0, -2.0) and PT.small_gap_warning(10.0, 8.0)


def test_the_text_lens_shows_attention_with_token_labels_and_links_the_head():
    at = open_page("pages/logit_lens.py", model=TEXT_MODEL, prompt=PROMPT, pos="5", head="L0H1")
    assert not at.exception and not errors(at) and at.selectbox(key="text_attention_head").value == "L0H1"
    big = next(c for c in at.get("plotly_chart") if "text_attention_head_big" in c.proto.id)
    assert "L0H1: destination (rows) attends to source (columns)" in big.proto.spec and at.query_params["head"] == "L0H1"
    bad = open_page("pages/logit_lens.py", model=TEXT_MODEL, prompt=PROMPT, head="L9H99")
    assert not bad.exception and any("attention head" in e for e in errors(bad))


def errors(at) -> list[str]:
    return [e.value for e in at.error]


@pytest.mark.parametrize("page", PAGES)
def test_each_page_serves_the_text_model_plainly_and_with_a_prompt(page):
    plain = open_page(page, model=TEXT_MODEL)
    assert not errors(plain)
    with_prompt = open_page(page, model=TEXT_MODEL, prompt=PROMPT)
    assert not errors(with_prompt) and with_prompt.session_state["prompt"] == PROMPT
    charts = len(with_prompt.get("plotly_chart"))
    if page == "pages/probe_viewer.py":
        assert any("has no board" in i.value for i in with_prompt.info)
    elif page == "pages/sae_browser.py" and not list_saes(TEXT_MODEL):
        assert any("No SAE" in i.value for i in with_prompt.info)
    else:
        assert charts >= 1, page


@pytest.mark.parametrize("case", list(BAD_LINKS))
@pytest.mark.parametrize("page", PAGES)
def test_bad_links_to_a_text_page_get_a_message_and_the_page(page, case):
    at = open_page(page, model=TEXT_MODEL, **BAD_LINKS[case])
    assert not at.exception
    if case == "moves for a game":
        assert any("reads text, not moves" in e for e in errors(at))
    elif case == "huge prompt":
        assert any("first 4,000 are used" in e for e in errors(at))
        assert len(at.session_state["prompt"]) == 4000
    elif case == "markup prompt":
        assert not errors(at) and at.session_state["prompt"].startswith("[click]")
    shown = " ".join(str(getattr(e, "value", "")) for e in at.markdown) + " ".join(str(e.value) for e in at.caption)
    assert "<script>" not in shown


def test_the_prompt_player_reads_the_real_next_token_and_links_the_position():
    at = open_page("pages/board_player.py", model=TEXT_MODEL, prompt=PROMPT, pos="3")
    assert at.slider(key="text_pos").value == 3
    assert at.query_params["pos"] == "3" and at.query_params["prompt"] == PROMPT
    assert any("mean loss of the real next token" in c.value for c in at.caption)
    table = at.dataframe[0].value
    assert {"token", "next (real)", "p(real)", "loss", "top 5"} <= set(table.columns)
    assert table["next (real)"].iloc[-1] == "" and table["next (real)"].iloc[0] != ""  # the last token has no next one
    at.text_area(key="prompt_editor").set_value("def f(x):\n    return x").run()
    assert at.session_state["prompt"] == "def f(x):\n    return x" and not at.exception


def test_switching_between_a_game_model_and_the_text_model_keeps_both_states():
    at = open_app(model="othello8", moves="d3c5")
    at.selectbox(key="model_picker").set_value(TEXT_MODEL).run()
    assert not at.exception and at.title[0].value == "Prompt player" and not at.error
    assert len(at.session_state["moves"]) == 2  # kept for when a game model is picked again
    assert "moves" not in at.query_params and at.query_params["model"] == TEXT_MODEL


def test_the_text_lab_patches_blocks_and_heads_of_prompts_of_one_length():
    at = open_page("pages/patching_lab.py", model=TEXT_MODEL, prompt="x = 1\ny = 2\nprint(x")
    assert not [w for w in at.warning if "same number of tokens" in w.value] and any("Metric: logit of" in c.value for c in at.caption)
    assert at.session_state["text_corrupted"] != at.session_state["prompt"]  # a same-length variant
    at.toggle(key="text_heads").set_value(True).run()
    assert not at.exception and len(at.get("plotly_chart")) == 2
    at.text_area(key="text_corrupted").set_value("x = 1\ny = 2\nprint(x, y, z)").run()
    assert any("same number of tokens" in w.value for w in at.warning)
    handle = load_model(TEXT_MODEL)
    clean_n = len(handle.tokenizer.encode("x = 1\ny = 2\nprint(x")) + 1  # with the leading end-of-text token
    for longer in ("x = 1\ny = 2\nprint(x, y, z)", "x = 1\ny = 2\n" + "print(x, y, z)\n" * 12):
        at.text_area(key="text_corrupted").set_value(longer).run()
        n = len(handle.tokenizer.encode(longer)) + 1
        assert n > clean_n + 1 and any(f"the corrupted one {n:,}:" in w.value for w in at.warning), [w.value for w in at.warning]  # its whole length, not the cut
