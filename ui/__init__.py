"""The Streamlit seam: cached models and analyses, the shared game state, and the URL.

Pages import this; ``core`` never does. One game (``moves``) and one model name live in
``st.session_state`` for every page and are mirrored into the query string
(``?model=othello8&moves=d3c5f6``) so that any view can be shared as a link.
"""

from __future__ import annotations

import json
import re
import threading
import urllib.parse
from collections import OrderedDict

import numpy as np
import streamlit as st
import torch

from core.games.base import Game, GameState, IllegalMoveError
from core import corpus_results
from core.interp.probes import linear_probes as P
from core.interp.sae import published as published_saes
from core.interp.sae import features as sae_features
from core.interp.shared import unit_index
from core.interp.sae import store as sae_store
from core.interp.shared.predictions import Predictions, predict
from core.links import read_choice, read_game_link, read_prompt_link
from core.models.bundle import CARD, read_json
from core.models.errors import ModelLoadError
from core.models.handle import ModelHandle
from core.devices import APP_DEVICE_ENV, app_device
from core.models.registry import ASSETS, ModelSpec, broken_bundles, default_model_name, list_models, load_model
from core.viz.training import learning_curve_figure, learning_curve_table, stage_commands, training_summary
from ui.export import chart_config, format_control

MODEL, MOVES, MESSAGES, TRAINED_PROBES = "model", "moves", "messages", "trained_probes"
PROMPT = "prompt"  # a text model's prompt (session state and link parameter)
PROMPT_LINK_LIMIT = 4000  # characters of a prompt a link may carry
DEFAULT_PROMPT = 'def fibonacci(n):\n    """Return the n-th Fibonacci number."""\n    if n < 2:\n        return n\n    return fibonacci(n - 1) + fibonacci(n - 2)\n'

PICKED = "picked_square"  # a piece chosen on the board, for games whose moves start on a piece


# -- caches -----------------------------------------------------------------------------------


@st.cache_resource(show_spinner="Loading model…", max_entries=4)
def cached_model(name: str) -> ModelHandle:
    """One shared, read-only model per name for the whole server (all sessions), on the device
    ``BOARDLENS_DEVICE`` names (the CPU by default)."""
    return load_model(name, device=app_device()[0])


@st.cache_data(show_spinner=False, max_entries=2048)
def cached_predictions(name: str, moves: tuple[int, ...]) -> Predictions | None:
    handle = cached_model(name)
    return predict(handle, handle.game.state(moves))


@st.cache_resource(show_spinner="Loading probes…", max_entries=16)
def cached_bundled_probes(name: str, target: str) -> dict[str, P.Probe]:
    """Probes shipped in ``assets/probes/<model>/`` (shared, read-only)."""
    handle = cached_model(name)
    return P.load_probe_set(P.PROBE_ROOT / name, target, handle.cfg.d_model, handle.game.rows)


def probe_summary(name: str) -> dict:
    """Per-target accuracy by layer: bundled, overridden by probes trained in this session."""
    summary = dict(P.read_summary(P.PROBE_ROOT / name))
    for (model, target), (_, entry) in st.session_state.get(TRAINED_PROBES, {}).items():
        if model == name:
            summary[target] = entry
    return summary


def probe_set(name: str, target: str) -> dict[str, P.Probe]:
    """The probes to show: trained in this session if any, else bundled (may be empty)."""
    trained = st.session_state.get(TRAINED_PROBES, {}).get((name, target))
    if trained:
        return trained[0]
    try:
        return cached_bundled_probes(name, target)
    except P.ProbeLoadError as exc:
        error(f"Bundled probes for {name} could not be read: {exc}")
        return {}


def store_trained_probes(name: str, target: str, probes: dict[str, P.Probe], entry: dict) -> None:
    st.session_state.setdefault(TRAINED_PROBES, {})[(name, target)] = (probes, entry)


@st.cache_data(show_spinner=False, ttl=60)
def broken_model_folders() -> dict[str, str]:
    return broken_bundles()


@st.cache_data(show_spinner=False)
def model_specs() -> dict[str, ModelSpec]:
    return {spec.name: spec for spec in list_models()}


# -- messages that survive the rerun after a callback -----------------------------------------


_MARKDOWN = re.compile(r"([\\`*_{}\[\]()#+!|<>~$])")  # what can start a link, an image, emphasis, HTML or maths


def plain(text: object, limit: int = 400) -> str:
    """Text that may hold what a user typed or linked, made safe for Streamlit's markdown: cut to
    ``limit`` characters and every markdown character escaped, so links, images, emphasis and HTML
    show as the characters they are."""
    text = " ".join(str(text).split("\n"))  # one line: nothing typed can start a heading or a list
    if len(text) > limit:
        text = text[:limit] + f"… ({len(text) - limit} more characters)"
    # Markdown escapes do not stop bare-URL autolinks: an invisible zero-width space does.
    text = re.sub(r"(?i)(://|www\.|@)", lambda m: m.group(0)[0] + "\u200b" + m.group(0)[1:], text)
    return _MARKDOWN.sub(r"\\\1", text)


def error(text: object) -> None:
    """``st.error`` for messages that may contain user input (see ``plain``)."""
    st.error(plain(text))


def flash(kind: str, text: str) -> None:
    """A message shown on the next run (after a callback); always plain text."""
    st.session_state.setdefault(MESSAGES, []).append((kind, plain(text)))


def show_messages() -> None:
    for kind, text in st.session_state.pop(MESSAGES, []):
        getattr(st, kind)(text)


# -- shared state and the URL -----------------------------------------------------------------


def init_state() -> None:
    """On a session's first run, restore model and game from the URL (reporting bad values)."""
    if MODEL in st.session_state:
        return
    params = st.query_params.to_dict()
    name, moves, problems = read_game_link(params, model_specs(), default_model_name())
    st.session_state[MODEL] = name
    st.session_state[MOVES] = moves
    prompt, problem = read_prompt_link(params, PROMPT_LINK_LIMIT)
    st.session_state[PROMPT] = prompt if prompt is not None else DEFAULT_PROMPT
    for problem in problems + ([problem] if problem else []):
        flash("error", problem)


def sync_url(extra: dict[str, str] | None = None) -> None:
    """Write the current model and game (and a page's own ``extra`` parameters) into the query
    string (only what changed)."""
    if model_spec().kind == "text":
        prompt = st.session_state.get(PROMPT, "")
        position = {PROMPT: prompt[:PROMPT_LINK_LIMIT]} if prompt and prompt != DEFAULT_PROMPT else {}
    else:
        moves = current_game().url_moves(st.session_state[MOVES])
        position = {MOVES: moves} if moves else {}
    from ui.corpus import link_params

    wanted = {MODEL: st.session_state[MODEL], **position, **link_params(), **(extra or {})}
    if dict(st.query_params) != wanted:
        st.query_params.from_dict(wanted)
    share_control(wanted)


def share_link(params: dict[str, str]) -> str:
    """The full link of this view: the page's address (as the browser sees it) and its parameters."""
    base = st.context.url or ""
    if base and not urllib.parse.urlsplit(base).path:
        base += "/"  # the main page: http://host/?model=… as a browser writes it
    query = urllib.parse.urlencode(params)
    return f"{base}?{query}" if query else base


def monospace(text: str) -> None:
    """Text in a fixed-width font, line by line, without ``st.code``: its syntax highlighter is a
    1.5 MB script that took 0.3-0.4 s of a 2-core visitor's first page for three short lines."""
    lines = [line for line in text.splitlines() if line.strip()]
    if any("`" in line for line in lines):
        st.text(text)
    else:
        st.markdown("  \n".join(f"`{line}`" for line in lines))


def share_control(params: dict[str, str]) -> None:
    """"Share this view" in the sidebar: the link, which is also the address bar's."""
    with st.sidebar.popover("Share this view", icon=":material/share:", width="stretch"):
        st.caption("This link (also in the address bar) opens this page with the same model, game and page settings.")
        monospace(share_link(params))


def model_spec() -> ModelSpec:
    return model_specs()[st.session_state[MODEL]]


def current_game() -> Game:
    """The game the chosen model plays (rules, tokens, how to draw it)."""
    return model_spec().game_plugin


def current_state() -> GameState:
    return current_game().state(st.session_state[MOVES])


def current_handle(show_error: bool = True) -> tuple[ModelHandle | None, str]:
    """``(the chosen model, "")``, or ``(None, why it cannot be loaded)`` (e.g. a hub model offline:
    the reason, and that the bundled models work offline), shown as an error unless the page
    shows it where the model's results would be."""
    try:
        return cached_model(st.session_state[MODEL]), ""
    except ModelLoadError as exc:
        why = f"Model {st.session_state[MODEL]!r} could not be loaded: {exc} The bundled models in the sidebar work offline."
        if show_error:
            error(why)
        return None, why


def set_moves(moves: tuple[int, ...]) -> None:
    st.session_state[MOVES] = tuple(int(m) for m in moves)
    st.session_state.pop(PICKED, None)


def play_move(move: int) -> bool:
    """Play ``move`` for the side to move; an illegal move is explained, not played."""
    try:
        set_moves(current_game().play(current_state(), move).moves)
        return True
    except IllegalMoveError as exc:
        flash("warning", f"Illegal move: {exc}")
        return False


def play_square(square: int) -> bool:
    """Play the move on ``square`` (games whose moves are one square, e.g. Othello)."""
    return play_move(square)


def undo_move() -> None:
    set_moves(st.session_state[MOVES][:-1])


def play_random_move() -> None:
    move = random_legal_move(current_state())
    if move is None:
        flash("info", "The game is over: there is no move to play.")
    else:
        play_move(move)


def on_model_change() -> None:
    """Keep the game when the new model plays the same game; otherwise start a new one and say so."""
    name = st.session_state["model_picker"]
    new, old = model_specs()[name], model_specs()[st.session_state[MODEL]]
    st.session_state[MODEL] = name
    st.session_state.pop(PICKED, None)
    if new.kind != "game":
        return  # a text model reads the prompt; the game stays for when a game model is picked again
    new_game = new.game_plugin
    same = old.kind == "game" and (new_game.name, new_game.rows) == (old.game_plugin.name, old.game_plugin.rows)
    if not same and st.session_state[MOVES]:
        set_moves(())
        flash("info", f"{name} plays {new_game.title}: started a new game.")


def sidebar() -> None:
    specs = model_specs()
    names = list(specs)
    with st.sidebar:
        st.markdown("### BoardLens")
        st.selectbox(
            "Model",
            names,
            index=names.index(st.session_state[MODEL]),
            key="model_picker",
            on_change=on_model_change,
            format_func=lambda n: n + (" · hub, needs network" if specs[n].needs_network else "") + (" · not installed" if specs[n].install else ""),  # short: what it plays is said below
            help="Bundled models were trained by BoardLens and work offline. Hub models are published checkpoints that need network access once.",
        )
        st.caption(f"{specs[st.session_state[MODEL]].board_label}: {specs[st.session_state[MODEL]].description}")
        model_card_expander(st.session_state[MODEL])
        device, problem = app_device()
        st.caption(f"Models run on: {device}" + ("" if device != "cpu" else f" (set {APP_DEVICE_ENV}=auto to use a GPU)" if torch.cuda.is_available() else ""))
        if problem:
            st.warning(plain(problem))
        for folder, reason in broken_model_folders().items():
            st.warning(plain(f"Model folder {folder!r} is not listed: {reason}"))
    format_control()


def model_card_expander(name: str) -> None:
    """The bundled model's card: how it was trained and what it measured, with its learning curve."""
    spec = model_specs()[name]
    if spec.source != "bundled":
        hub_card_notes(name)
        return
    card = bundled_card(name)
    if not card:
        return
    # Drawn only while open: a closed card's learning curve was a third of the board player's
    # plots, paid on every page load.
    card_box = st.expander("Model card", key="model_card_open", on_change="rerun")
    if not card_box.open:
        return
    with card_box:
        ev = card.get("eval", {}) if isinstance(card.get("eval"), dict) else {}
        if spec.kind == "text":
            from ui.text_panels import text_card

            text_card(card, ev)
            return
        if isinstance(ev.get("top1_legal"), float):
            st.markdown(f"Top-1 legal **{ev['top1_legal']:.2%}**, illegal mass {ev.get('illegal_mass', float('nan')):.2%} on {ev.get('games', '?')} held-out games.")
            whole = ev.get("whole_move")
            if isinstance(whole, dict) and isinstance(whole.get("whole_move_legal"), float):
                exact = whole.get("whole_move_exact")
                count = lambda n: f"{n:,}" if isinstance(n, int) else "?"  # noqa: E731
                st.markdown(f"Moves it writes itself (greedy, to the space that ends a move): **{whole['whole_move_legal']:.2%} legal** (python-chess reads a legal move)"
                            + (f", {exact:.2%} written exactly as the standard SAN, check sign included" if isinstance(exact, float) else "")
                            + f"; first character legal {whole.get('first_token_legal', float('nan')):.2%} ({count(whole.get('positions'))} moves of {count(whole.get('games'))} held-out games).")
            for kind, v in (ev.get("by_kind") or {}).items():
                if isinstance(v, dict) and v.get("positions"):
                    st.caption(f"{kind} tokens: top-1 legal {v['top1_legal']:.2%} ({v['positions']} positions)")
        st.caption(training_summary(card))
        history = [h for h in card.get("history", []) if isinstance(h, dict) and "step" in h and "top1_legal" in h]
        if len(history) > 1:
            st.caption("Held-out top-1 legal rate by training step")
            st.plotly_chart(learning_curve_figure(learning_curve_table(history), "top-1 legal", percent=True), key="model_card_curve", config=chart_config())
        monospace(stage_commands(card))


def hub_card_notes(name: str) -> None:
    """What loading a published model found out about it: its vocabulary against the published
    layout, a GPT-2 copy's activation function."""
    if model_specs()[name].needs_network:
        return  # not in the local cache: the page says why it cannot load
    try:
        handle = cached_model(name)  # the page loads it anyway; this shares that one load
    except ModelLoadError:
        return
    for key in ("vocab_check", "activation", "quantisation"):
        if handle.info.card.get(key):
            st.caption(plain(handle.info.card[key]))


@st.cache_data(show_spinner=False, max_entries=16)
def bundled_card(name: str) -> dict:
    try:
        return read_json(ASSETS / name / CARD)
    except ModelLoadError:
        return {}


def random_legal_move(state: GameState, rng: np.random.Generator | None = None) -> int | None:
    legal = state.legal_moves
    if not len(legal) or state.is_over:
        return None
    return int((rng or np.random.default_rng()).choice(legal))


SHELL = "_shell"


def app_pages() -> list:
    return [
        st.Page("pages/board_player.py", title="Board player", icon=":material/grid_on:", default=True),
        st.Page("pages/probe_viewer.py", title="Probe viewer", icon=":material/query_stats:"),
        st.Page("pages/logit_lens.py", title="Logit lens", icon=":material/layers:"),
        st.Page("pages/sae_browser.py", title="SAE feature browser", icon=":material/extension:"),
        st.Page("pages/patching_lab.py", title="Patching lab", icon=":material/healing:"),
    ]


def ensure_shell() -> None:
    """A link straight to a page on a freshly started server runs that page's file on its own
    (Streamlit falls back to the ``pages/`` folder until ``app.py`` has run once). Registering the
    navigation and rerunning hands the request to ``app.py``, which opens the same page."""
    if not st.session_state.get(SHELL):
        st.navigation(app_pages())
        st.session_state[SHELL] = True
        st.rerun()


def serve_text_model(title: str) -> None:
    """A text model gets the text form of the page (``ui.text_pages``), then the page stops: the
    one place a page asks what kind of model it serves."""
    if model_spec().kind != "text":
        return
    from ui import text_pages

    text_pages.serve(title)
    st.stop()


def page_sidebar() -> None:
    """The sidebar part a game page draws itself (below the model picker): which games the corpus
    statistics read. Drawn by the page, not by ``app.py``, so it belongs to the page's run."""
    from ui.corpus import sidebar_section

    sidebar_section()


def one_token_per_move(game: Game) -> bool:
    return game.square_moves


def analysis_page(title: str, serves=one_token_per_move) -> tuple[ModelSpec, GameState, ModelHandle]:
    """The common top of an analysis page: state (also when a link opens the page directly),
    title, pending messages, and the loaded model (the page stops with an error if it cannot load,
    or with a note if ``serves(game)`` says the page cannot serve the model's game yet)."""
    ensure_shell()
    init_state()
    serve_text_model(title)
    page_sidebar()
    spec, state = model_spec(), current_state()
    st.title(title)
    show_messages()
    handle, _ = current_handle()
    if handle is None:
        sync_url()  # the link and "Share this view" stay, as on every page
        st.stop()
    if not serves(handle.game):
        st.info(f"This page does not serve {handle.game.title} models yet. The board player does.")
        sync_url()
        st.stop()
    return spec, state, handle


# -- warm-up ------------------------------------------------------------------------------------

SLOW_IMPORTS = ("sae_lens",)  # ~1.1 s here (it imports wandb), needed by the SAE pages only


def _import_slow_libraries() -> None:
    import importlib

    for name in SLOW_IMPORTS:
        try:
            importlib.import_module(name)
        except Exception:  # noqa: BLE001 - the page that needs it reports the failure itself
            pass


@st.cache_resource(show_spinner=False)
def warm_up_in_background() -> threading.Thread:
    """Once per server: import what only some pages need in a background thread, so the first
    visit of those pages does not pay for it (a page that gets there first waits on Python's
    import lock, no longer than it would have taken itself)."""
    thread = threading.Thread(target=_import_slow_libraries, name="boardlens-warm-up", daemon=True)
    thread.start()
    return thread


# -- corpus-wide results ------------------------------------------------------------------------

CORPUS_RESULTS_KEPT = 16


@st.cache_resource(show_spinner=False)
def _corpus_store() -> tuple[OrderedDict, threading.Lock, dict]:
    """Process-wide: (model, result, key) -> the result, shared by every session; the
    ``CORPUS_RESULTS_KEPT`` used last stay in memory (a layer's neuron index is ~10 MB). One lock
    guards the table; each result has its own lock for reading or building it, so a slow build of
    one result never holds up another."""
    return OrderedDict(), threading.Lock(), {}


def corpus_result(handle: ModelHandle, result: corpus_results.Result):
    """A corpus-wide result (lens legality, a layer's neurons, an SAE's feature index): read from
    the shipped or cached files, or, when none is usable, computed here once with a progress bar
    that says why (and kept on disk for the next process)."""
    memo, lock, result_locks = _corpus_store()
    key = (handle.name, result.name, json.dumps(result.key, sort_keys=True))
    with lock:
        if key in memo:
            memo.move_to_end(key)
            return memo[key]
        result_lock = result_locks.setdefault(key, threading.Lock())
    with result_lock:  # one read or build per result, however many sessions ask at once
        with lock:
            if key in memo:
                return memo[key]
        value, where = corpus_results.load(handle, result)
        if value is None:
            bar = st.progress(0.0, text=f"Computing {result.what} once for {handle.name} (no stored copy: {where[:160]})…")
            value = result.build(lambda text, f: bar.progress(min(max(float(f), 0.0), 1.0), text=f"Computing {result.what} once: {text}"))
            corpus_results.store(handle, result, value)
            bar.empty()
            st.caption(f"Computed {result.what} for {handle.name}: no stored copy was usable ({where[:160]}); it is kept for the next start.")
        with lock:
            memo[key] = value
            result_locks.pop(key, None)
            while len(memo) > CORPUS_RESULTS_KEPT:
                memo.popitem(last=False)
        return value


# -- sparse autoencoders ------------------------------------------------------------------------

TRAINED_SAES = "trained_saes"


@st.cache_resource(show_spinner="Loading SAE…", max_entries=8)
def cached_bundled_sae(name: str, sae_name: str):
    """A bundled SAE (shared, read-only); ``SAELoadError`` if its files are unusable."""
    entry = {e.name: e for e in sae_store.list_saes(name)}[sae_name]
    handle = cached_model(name)
    return sae_store.load_sae(entry.folder, d_in=handle.hook_width(entry.hook))


def cached_bundled_index(name: str, sae_name: str, corpus=None) -> unit_index.FeatureIndex:
    entry = {e.name: e for e in sae_store.list_saes(name)}[sae_name]
    handle = cached_model(name)
    return corpus_result(handle, corpus_results.sae_index_result(handle, cached_bundled_sae(name, sae_name), entry.hook, sae_name, corpus))


@st.cache_data(show_spinner=False, ttl=60)
def published_sae_refs(name: str) -> dict[str, published_saes.PublishedRef]:
    """Published SAEs of the model in the local hub cache, by label (rechecked each minute)."""
    return {ref.label: ref for ref in published_saes.discover(name)}


@st.cache_resource(show_spinner="Loading the published SAE…", max_entries=8)
def cached_published_sae(name: str, label: str) -> published_saes.PublishedSAE:
    """A published SAE, prepared for the model's processing, after checking that it fits."""
    published = published_saes.load_ref(published_sae_refs(name)[label])
    problem = published_saes.fit_problem(published, cached_model(name))
    if problem:
        raise sae_store.SAELoadError(problem)
    return published


def sae_choices(name: str) -> dict[str, dict]:
    """SAE name -> card: the model's bundled SAEs, then published ones in the hub cache, then
    those trained in this session."""
    out = {e.name: e.card for e in sae_store.list_saes(name)}
    for label, ref in published_sae_refs(name).items():
        out[label] = {"hook": ref.hook, "published": ref.kind}
    for (model, sae_name), (_, card, _) in st.session_state.get(TRAINED_SAES, {}).items():
        if model == name:
            out[sae_name] = card
    return out


def _file_name(sae_name: str) -> str:
    """An SAE's name as a stored result's file name (labels hold "/", spaces, brackets)."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", sae_name)


def sae_and_index(name: str, sae_name: str, corpus=None):
    """``(sae, index)`` of a bundled, published or session-trained SAE, the index over ``corpus``
    (a ``GameCorpus``; None: random games); None with the error shown if unusable."""
    trained = st.session_state.get(TRAINED_SAES, {}).get((name, sae_name))
    if trained:
        if corpus is None:
            return trained[0], trained[2]
        handle = cached_model(name)
        return trained[0], corpus_result(handle, corpus_results.sae_index_result(handle, trained[0], trained[1]["hook"], _file_name(sae_name), corpus))
    if sae_name in published_sae_refs(name):
        try:
            published = cached_published_sae(name, sae_name)
        except sae_store.SAELoadError as exc:
            error(f"Published SAE {sae_name!r} cannot be used with {name}: {exc}")
            return None
        st.caption(plain(published.note))
        handle = cached_model(name)
        return published.sae, corpus_result(handle, corpus_results.sae_index_result(handle, published.sae, published.hook, _file_name(sae_name), corpus))
    try:
        return cached_bundled_sae(name, sae_name), cached_bundled_index(name, sae_name, corpus)
    except sae_store.SAELoadError as exc:
        error(f"SAE {sae_name!r} could not be loaded: {exc}")
        return None


def url_choice(param: str, valid: list[str] | range, what: str) -> str | int | None:
    """A page parameter from the link, read once per session: the value if valid, else None with
    the problem shown (the page goes on with its default)."""
    seen = st.session_state.setdefault("_url_read", set())
    if param in seen:
        return None
    seen.add(param)  # later runs write the URL from the widgets, never the other way
    if param not in st.query_params:
        return None
    value, problem = read_choice(param, st.query_params[param], valid, what)
    if problem:
        flash("error", problem)
    return value


def linked_setting(key: str, param: str, options: list, labels: list[str], what: str, default) -> None:
    """Prepare a keyed widget's value: from the link's ``param`` (read once per session; a bad
    value is reported and ignored), else kept while it is still one of ``options``, else ``default``.

    ``labels`` are the options as they appear in the link (one per option)."""
    linked = url_choice(param, labels, what)
    show_messages()  # a bad value is reported beside the setting it was meant for
    if linked is not None:
        st.session_state[key] = options[labels.index(linked)]
    if st.session_state.get(key) not in options:
        st.session_state[key] = default


def store_trained_sae(name: str, sae_name: str, sae, card: dict, index: unit_index.FeatureIndex) -> None:
    st.session_state.setdefault(TRAINED_SAES, {})[(name, sae_name)] = (sae, card, index)
