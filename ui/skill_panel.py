"""The skill probe on the probe viewer: shown when the chosen games file has players' ratings."""

from __future__ import annotations

import numpy as np
import streamlit as st

from ui import messages
from core.game_corpus import GameCorpus, corpus_games, corpus_tag
from core.interp.probes.skill_probe import skill_probe
from core.models.handle import ModelHandle
from core.viz.probes import skill_figure
from core.words import count
from ui.export import chart_config

RESULTS = "skill_probe_results"  # (model, corpus tag) -> result, this session's


def rated_games(corpus: GameCorpus | None) -> int:
    """How many games of the corpus have White's rating."""
    return 0 if corpus is None or not corpus.headers else int(np.isfinite(corpus.ratings()[:, 0]).sum())


def skill_probe_panel(handle: ModelHandle, corpus: GameCorpus | None) -> None:
    """Train and show the skill probe (a minute or so on the bundled chess models) for a rated file."""
    from core.models.registry import randomly_initialised

    n_rated = rated_games(corpus)
    if not n_rated:
        return
    st.subheader("Skill probe: does the model know how strong White is?")
    store = st.session_state.setdefault(RESULTS, {})
    key = (handle.name, corpus_tag(corpus))
    if key not in store:
        st.caption(messages.plain(f"{count(n_rated, 'game')} of {corpus.name} have White's rating (WhiteElo). A linear probe per layer reads White's rating bin at every position "
                            "where a move ends, trained on four games in five and scored on the fifth, beside a randomly initialised copy of the model."))
        if not st.button("Train skill probes (every layer)", key="train_skill"):
            return
        bar = st.progress(0.0, text="starting…")
        try:
            games = corpus_games(handle.game, corpus, corpus.n_games, 0)
            store[key] = skill_probe(handle, games, corpus.ratings()[:, 0], random_handle=randomly_initialised(handle),
                                     progress=lambda text, f: bar.progress(min(max(float(f), 0.0), 1.0), text=text))
        except ValueError as exc:
            bar.empty()
            messages.error(f"No skill probe: {exc}")
            return
        bar.empty()
    result = store[key]
    st.plotly_chart(skill_figure(result), key="skill_chart", config=chart_config())
    best = int(np.argmax(result["accuracy"]))
    baseline = result.get("random_accuracy")
    control = f"random-init model {baseline[best]:.1%} there; " if baseline else ""
    st.caption(messages.plain(
        f"White's rating bins: {', '.join(result['bins'])}. Held out: {result['test_positions']:,} positions of {result['test_games']} games; "
        f"best {result['hooks'][best].replace('blocks.', 'L').replace('.hook_resid_', ' ')} {result['accuracy'][best]:.1%} "
        f"({control}chance {result['chance']:.1%}). The random-init copy reads what the moves alone give a linear probe."
    ))
