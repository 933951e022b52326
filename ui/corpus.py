"""Which games the corpus statistics read: random legal games, a shipped sample file, or the
researcher's own upload (sidebar), shared by every page of the session.

The choice lives in session state (and, for the random games and the samples, in the link as
``corpus=``); an upload's bytes stay in the session, its parse is shared by the whole server
(``core.game_corpus.cached_corpus``, by content hash), so a page asking for it costs nothing.
"""

from __future__ import annotations

import functools
import hashlib
from pathlib import Path

import streamlit as st

from ui import messages
from ui import session
from core.game_corpus import MAX_FILE_BYTES, GameCorpus, GameFileError, cached_corpus, corpus_games, corpus_tag, is_cached, sample_files
from core.games.base import Game
from core.words import count

PICK = "corpus_pick"  # the sidebar's choice
UPLOAD = "corpus_upload"  # {"name", "digest", "data", "file_id"} of this session's uploaded file
RANDOM, OWN = "random", "upload"
PARAM = "corpus"  # the link parameter: "random" or a sample's stem (an upload is not in links)


def options(game: Game) -> dict[str, str]:
    """Choice -> label: random games, the game's sample files, the session's own file."""
    out = {RANDOM: "Random legal games (default)"}
    for path in sample_files(game):
        out[path.stem] = f"Sample: {path.name}"
    out[OWN] = "Your own file…"
    return out


@functools.lru_cache(maxsize=16)
def _read_sample(path: str, mtime_ns: int) -> tuple[str, bytes, str]:
    data = Path(path).read_bytes()
    return Path(path).name, data, hashlib.sha256(data).hexdigest()


def _chosen_file(game: Game) -> tuple[str, bytes, str] | None:
    """``(name, bytes, sha256)`` of the chosen file (a sample, or this session's upload); None for
    random games or before a file is uploaded. Sample files are read once per change on disk."""
    pick = st.session_state.get(PICK, RANDOM)
    if pick == OWN:
        upload = st.session_state.get(UPLOAD)
        return (upload["name"], upload["data"], upload["digest"]) if upload else None
    for path in sample_files(game) if pick != RANDOM else ():
        if path.stem == pick:
            return _read_sample(str(path), path.stat().st_mtime_ns)
    return None


def current_corpus() -> GameCorpus | None:
    """The chosen corpus for the current game, or None for random games (also when the chosen
    file has no game this model's game can read: the sidebar says why)."""
    if session.model_spec().kind != "game":
        return None
    game = session.current_game()
    found = _chosen_file(game)
    if found is None:
        return None
    try:
        return cached_corpus(found[1], found[0], game, digest=found[2])
    except GameFileError:
        return None


def link_params() -> dict[str, str]:
    """``{"corpus": …}`` for the share link when the view reads a sample file."""
    pick = st.session_state.get(PICK, RANDOM)
    return {PARAM: pick} if pick not in (RANDOM, OWN) and session.model_spec().kind == "game" else {}


def caption(what: str) -> None:
    """One line under a corpus statistic: which games it read."""
    corpus = current_corpus()
    if corpus is None:
        st.caption(f"{what}: random legal games (pick your own games in the sidebar).")
    else:
        st.caption(messages.plain(f"{what}: {corpus.summary()}"))


def _parse(game: Game, name: str, data: bytes, digest: str) -> GameCorpus | None:
    """Parse (with a progress bar in the sidebar the first time); errors shown there, None returned."""
    if is_cached(data, game, digest):
        try:
            return cached_corpus(data, name, game, digest=digest)
        except GameFileError as exc:
            st.sidebar.error(messages.plain(exc))
            return None
    bar = st.sidebar.progress(0.0, text=f"Reading {name}…")
    try:
        corpus = cached_corpus(data, name, game, progress=lambda text, f: bar.progress(min(max(float(f), 0.0), 1.0), text=text), digest=digest)
    except GameFileError as exc:
        bar.empty()
        st.sidebar.error(messages.plain(exc))
        return None
    bar.empty()
    return corpus


def sidebar_section() -> None:
    """The corpus chooser, the upload and a game-opener, in the sidebar of a game model's pages."""
    if session.model_spec().kind != "game":
        return
    game = session.current_game()
    choices = options(game)
    keys = list(choices)
    linked = session.url_choice(PARAM, [k for k in keys if k != OWN], "games file")
    if linked is not None:
        st.session_state[PICK] = linked
    # Written back before the widget is drawn: a page's widgets are new to Streamlit, which would
    # otherwise start this one from its first option on every page change.
    st.session_state[PICK] = st.session_state.get(PICK) if st.session_state.get(PICK) in keys else RANDOM
    sb = st.sidebar  # widgets called on it directly (not inside `with`): AppTest keeps them across reruns
    pick = sb.selectbox(
        "Games for statistics", keys, key=PICK, format_func=choices.get, persist_state="session",
        help="The games every corpus statistic reads: probe training and accuracy, the SAE index and metrics, the lens legality chart and the neuron index. "
             "Random legal games are the models' own distribution; a file of real games is yours.",
    )
    if pick == OWN:
        kind = "PGN file (python-chess reads it)" if not game.square_moves else "game file: one game per line"
        uploaded = sb.file_uploader(f"Your games: {kind}", key="corpus_file", help=f"At most {MAX_FILE_BYTES // 2**20} MB; games that cannot be read are skipped and counted with the reason.")
        if uploaded is not None:
            if uploaded.size > MAX_FILE_BYTES:
                sb.error(f"{messages.plain(uploaded.name)}: {uploaded.size:,} bytes is more than a games file may have here ({MAX_FILE_BYTES:,}).")
            elif (st.session_state.get(UPLOAD) or {}).get("file_id") != uploaded.file_id:  # a new upload: hashed once, not per rerun
                data = uploaded.getvalue()
                st.session_state[UPLOAD] = {"name": uploaded.name, "digest": hashlib.sha256(data).hexdigest(), "data": data, "file_id": uploaded.file_id}
        if st.session_state.get(UPLOAD) is None:
            sb.caption("Until a file is read, the statistics use random legal games. An uploaded file stays in this session; links do not carry it.")
            return
    found = _chosen_file(game)
    if found is None:
        return
    corpus = _parse(game, *found)
    if corpus is None:
        sb.caption("The statistics use random legal games.")
        return
    sb.caption(messages.plain(corpus.summary()))
    if corpus.skipped:
        sb.expander(f"{len(corpus.skipped):,} skipped game(s)").text("\n".join(f"game {n}: {why}" for n, why in corpus.skipped[:50]) + ("\n…" if len(corpus.skipped) > 50 else ""))
    _game_opener(corpus)


def _open_game(corpus_digest: str) -> None:
    corpus = current_corpus()
    if corpus is None or corpus.digest != corpus_digest:
        return
    number = int(st.session_state.get("corpus_game", 1))
    row = corpus.games[min(max(number, 1), corpus.n_games) - 1]
    session.set_moves(tuple(int(m) for m in row[row >= 0]))
    messages.flash("info", f"Opened game {number} of {corpus.name} ({int((row >= 0).sum())} moves).")


def _game_opener(corpus: GameCorpus) -> None:
    """Open one of the corpus's games on the board (every page shows the same game)."""
    sb = st.sidebar
    c1, c2 = sb.columns([2, 3], vertical_alignment="bottom")
    st.session_state["corpus_game"] = min(max(int(st.session_state.get("corpus_game", 1)), 1), corpus.n_games)  # kept from page to page, as the pick
    number = c1.number_input("Game", 1, corpus.n_games, key="corpus_game", persist_state="session")
    c2.button("Open on the board", key="corpus_open", on_click=_open_game, args=(corpus.digest,), width="stretch")
    headers = corpus.headers[int(number) - 1] if corpus.headers and int(number) <= len(corpus.headers) else {}
    shown = [f"{headers[k]}" for k in ("White", "Black") if headers.get(k)]
    if shown:
        elo = [headers.get("WhiteElo", "?"), headers.get("BlackElo", "?")]
        sb.caption(messages.plain(f"{shown[0]} ({elo[0]}) – {shown[-1]} ({elo[1]}), {headers.get('Result', '*')}"))


PROBE_SCORES = "corpus_probe_scores"  # (model, target, corpus tag, probes id) -> {hook: score}


def probe_scores(handle, target: str, probes: dict, corpus: GameCorpus) -> dict[str, dict]:
    """Held-out scores of ``probes`` on the corpus, computed once per session and probe set (with a
    progress bar): on its held-out fifth when the probes were trained on this corpus, else on all
    of its games, as many as the probes' own held-out set (comparable sample sizes)."""
    from core.interp.probes.linear_probes import score_probes

    store = st.session_state.setdefault(PROBE_SCORES, {})
    key = (handle.name, target, corpus_tag(corpus), id(next(iter(probes.values()))))
    if key not in store:
        trained_here = next(iter(probes.values())).meta.get("corpus") == corpus.name
        n = int(next(iter(probes.values())).meta.get("test_games") or 200)
        games = corpus_games(handle.game, corpus, n, 0, "test" if trained_here else "all")
        bar = st.progress(0.0, text=f"Scoring the {target} probes on {count(len(games), 'game')} of {corpus.name}…")
        store[key] = score_probes(handle, probes, games, progress=lambda text, f: bar.progress(min(max(float(f), 0.0), 1.0), text=text))
        bar.empty()
        while len(store) > 8:
            store.pop(next(iter(store)))
    return store[key]
