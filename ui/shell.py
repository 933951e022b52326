"""The frame of every page: navigation, the sidebar (model picker, model card, chart format, share
link) and the checks that a page can serve the chosen model.
"""

from __future__ import annotations

import streamlit as st
import torch

from core.games.base import Game, GameState
from core.models.errors import ModelLoadError
from core.models.handle import ModelHandle
from core.devices import APP_DEVICE_ENV, app_device
from core.models.registry import ModelSpec
from core.viz.training import learning_curve_figure, learning_curve_table, stage_commands, training_summary
from ui.export import chart_config, format_control
from ui.session import MODEL, current_state, init_state, model_spec, on_model_change, sync_url
from ui.messages import error, monospace, plain, show_messages
from ui.caches import broken_model_folders, bundled_card, cached_model, model_specs


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


SHELL = "_shell"


def app_pages() -> list:
    return [
        st.Page("pages/board_player.py", title="Board player", icon=":material/grid_on:", default=True),
        st.Page("pages/probe_viewer.py", title="Probe viewer", icon=":material/query_stats:"),
        st.Page("pages/logit_lens.py", title="Logit lens", icon=":material/layers:"),
        st.Page("pages/sae_browser.py", title="SAE feature browser", icon=":material/extension:"),
        st.Page("pages/patching_lab.py", title="Patching lab", icon=":material/healing:"),
        st.Page("pages/circuits.py", title="Circuits", icon=":material/account_tree:"),
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
