"""Page pieces for text models: the prompt, its tokens, cached per-prompt analyses, the model card.

A text model's "position" is its prompt: one string in session state and in the link (``prompt``),
tokenised with the model's own tokenizer behind an end-of-text token (what a document starts
after in training), cut to the model's context.
"""

from __future__ import annotations

import threading
from collections import OrderedDict

import numpy as np
import streamlit as st
import torch

from ui import caches
from ui import messages
from ui import session
from core.interp.shared import text_run
from core.models.handle import ModelHandle
from core.viz.text import visible
from core.viz.training import learning_curve_figure, training_summary
from ui.export import chart_config

PROMPT_WIDGET = "prompt_editor"
RUNS_KEPT = 8


def prompt_tokens(handle: ModelHandle) -> tuple[tuple[int, ...], str]:
    """The prompt's tokens (with the leading end-of-text token when the tokenizer has one), and a
    note when the prompt had to be cut to the model's context ("" otherwise)."""
    tok = handle.tokenizer
    ids = tok.encode(st.session_state.get(session.PROMPT, ""))
    lead = [tok.end_of_text] if tok.end_of_text is not None else []
    room = min(handle.cfg.n_ctx, text_run.MAX_PROMPT_TOKENS) - len(lead)
    note = ""
    if len(ids) > room:
        note = f"The prompt is {len(ids):,} tokens; the model reads {room:,} at once, so only the first {room:,} are used."
        ids = ids[:room]
    if not ids and not lead:
        ids = [0]
    return tuple(lead + ids), note


def spans(handle: ModelHandle, tokens: tuple[int, ...]) -> list[str]:
    """Each token's text; the leading end-of-text token shows as its name."""
    out = handle.tokenizer.spans(list(tokens))
    if tokens and tokens[0] == handle.tokenizer.end_of_text:
        out[0] = "⟨start⟩"
    return out


def token_name(handle: ModelHandle, tid: int) -> str:
    return visible(handle.tokenizer.token_text(int(tid)))


def on_prompt_edit() -> None:
    st.session_state[session.PROMPT] = st.session_state.get(PROMPT_WIDGET, "")[: session.PROMPT_LINK_LIMIT * 4]


def prompt_editor(label: str = "Prompt") -> None:
    """The prompt box every text page shares (editing it changes the prompt on every page)."""
    st.session_state[PROMPT_WIDGET] = st.session_state.get(session.PROMPT, "")
    st.text_area(label, key=PROMPT_WIDGET, on_change=on_prompt_edit, height=140, help="Type or paste any text; it is tokenised with the model's own tokenizer. Ctrl+Enter applies it.")


def prompt_section(handle: ModelHandle, label: str = "Prompt") -> tuple[int, ...]:
    """The shared prompt box and the prompt's tokens (saying so when it had to be cut)."""
    prompt_editor(label)
    tokens, note = prompt_tokens(handle)
    if note:
        st.info(note)
    return tokens


# -- cached analyses (shared by every session, keyed by model and tokens) -------------------------


@st.cache_data(show_spinner=False, max_entries=512)
def cached_next_tokens(name: str, tokens: tuple[int, ...], k: int = 10) -> text_run.NextTokens:
    handle = caches.cached_model(name)
    logits = handle.forward(torch.tensor([tokens]))[0]
    return text_run.next_tokens(logits, torch.tensor(tokens), k)


@st.cache_resource(show_spinner=False)
def _runs() -> tuple[OrderedDict, threading.Lock]:
    return OrderedDict(), threading.Lock()


def cached_run(name: str, tokens: tuple[int, ...]):
    """One cached forward pass of the prompt (the lens and DLA read it); the last few are kept."""
    memo, lock = _runs()
    key = (name, tokens)
    with lock:
        if key in memo:
            memo.move_to_end(key)
            return memo[key]
    run = text_run.run_tokens(caches.cached_model(name), torch.tensor(tokens))
    with lock:
        memo[key] = run
        while len(memo) > RUNS_KEPT:
            memo.popitem(last=False)
    return run


# -- the model card ------------------------------------------------------------------------------


def text_card(card: dict, ev: dict) -> None:
    """A text model's card: held-out cross-entropy beside the n-gram baselines, corpus, curve."""
    ce, uni, bi = ev.get("held_out_ce"), ev.get("unigram_ce"), ev.get("bigram_ce")
    if isinstance(ce, float):
        st.markdown(f"Held-out cross-entropy **{ce:.3f}** nats per token ({ev.get('bits_per_token', ce / np.log(2)):.2f} bits); "
                    f"bigram baseline {bi:.3f}, unigram {uni:.3f}, on the same {ev.get('targets', '?'):,} held-out targets.")
    corpus = card.get("corpus") if isinstance(card.get("corpus"), dict) else {}
    if corpus:
        st.caption(f"Corpus: {corpus.get('corpus', '?')} (Python {corpus.get('python', '?')}): {corpus.get('train_file_count', '?')} training files, "
                   f"{len(corpus.get('held_out_files', []))} held out; {corpus.get('train_tokens', 0):,} training tokens; sha256 {str(corpus.get('train_sha256', ''))[:12]}….")
    tokens = card.get("tokens_seen")
    st.caption(training_summary({**card, "games_seen": None}).replace("? games", f"{tokens:,} tokens seen" if isinstance(tokens, int) else "tokens seen unknown"))
    history = [h for h in card.get("history", []) if isinstance(h, dict) and "step" in h and "held_out_ce" in h]
    if len(history) > 1:
        import pandas as pd

        st.caption("Held-out cross-entropy by training step (nats per token)")
        table = pd.DataFrame({"held-out CE": [h["held_out_ce"] for h in history]}, index=[h["step"] for h in history])
        if isinstance(bi, float):
            table["bigram baseline"] = bi
        st.plotly_chart(learning_curve_figure(table, "nats per token", dashed=("bigram baseline",)), key="model_card_curve", config=chart_config())
    messages.monospace(str(card.get("command", "")))
