"""Page pieces shared by several pages (Streamlit side; the computation is in ``core``)."""

from __future__ import annotations

import numpy as np
import streamlit as st

from ui import caches
from ui import messages
from ui import sae_caches
from ui import session
from core.games.base import GameState
from core.interp.probes import linear_probes as P
from core.interp.shared import board_targets
from core.models.handle import ModelHandle
from core.viz.board import board_figure
from core.viz.probes import probe_board_figure
from ui.export import chart_config


MEASURED_SAE_METRICS = "measured_sae_metrics"  # (model, SAE, corpus tag) -> metrics measured in this session
PROMOTION = "pending_promotion"  # chess: the moves a click on a last-rank square could mean
CLICKS = "board_clicks"  # clicks so far: part of every playable board's key
SEEN_CLICKS = "board_clicks_seen"  # (board key, square) of the clicks acted on, the latest 64
CLICK_HINT = {True: "Click a square to play it.", False: "Click a piece, then its destination, to play."}  # by game.square_moves


# -- boards that play the clicked square --------------------------------------------------------


def playable_chart(fig, name: str, state: GameState, **chart_args) -> None:
    """Draw a board that plays what is clicked, as the board player does (a square for Othello; a
    piece, then its destination, for chess), on any page.

    The key names the position, the picked piece and the click count, so every click and every
    move gets a fresh chart: no plotly selection survives to dim the board or swallow a click.
    """
    key = f"{name}_{len(state.moves)}_{hash(state.moves) & 0xFFFF}_{st.session_state.get(session.PICKED)}_{st.session_state.get(CLICKS, 0)}"
    st.plotly_chart(fig, key=key, on_select=lambda: on_board_click(key), selection_mode="points", width="content", config=chart_config(), **chart_args)


def picked_square(state: GameState) -> int | None:
    """The piece picked by a first click (chess), while it still has a legal move here."""
    picked = st.session_state.get(session.PICKED)
    game = session.current_game()
    return picked if picked is not None and not game.square_moves and game.moves_from(state, picked) else None


def clicked_square(key: str) -> int | None:
    points = st.session_state[key].get("selection", {}).get("points", [])
    if not points:
        return None
    data = points[0].get("customdata")
    return int(data[0] if isinstance(data, list) else data)


def on_board_click(key: str) -> None:
    square = clicked_square(key)
    # A run cut short by the next click replays earlier clicks' callbacks, even after later clicks
    # were handled: each (board key, square) counts once.
    seen = st.session_state.setdefault(SEEN_CLICKS, [])
    if square is None or (key, square) in seen:
        return
    seen.append((key, square))
    del seen[:-64]
    # Every click gets a fresh board (a new key): plotly's selection of the clicked point would
    # otherwise dim the rest of the board and swallow a second click on the same square.
    st.session_state[CLICKS] = st.session_state.get(CLICKS, 0) + 1
    click_square(square)


def click_square(square: int) -> None:
    """Play a one-square move, or pick a piece / play the picked piece to ``square``."""
    now = session.current_state()
    game = session.current_game()
    if game.square_moves:
        session.play_square(square)
        return
    st.session_state.pop(PROMOTION, None)
    picked = st.session_state.get(session.PICKED)
    if picked is not None:
        moves = [m for m in game.moves_from(now, picked) if game.move_squares(m)[1] == square]
        if len(moves) == 1:
            session.play_move(moves[0])
            return
        if len(moves) > 1:  # a promotion: the piece is asked for
            st.session_state[PROMOTION] = moves
            return
        if square == picked:
            st.session_state.pop(session.PICKED, None)
            return
    if game.moves_from(now, square):
        st.session_state[session.PICKED] = square
    elif now.is_over:
        messages.flash("info", "The game is over: there is no move to play.")
    elif picked is not None:
        messages.flash("warning", f"Illegal move: {game.explain_illegal(now, picked + 64 * square)}")
    else:
        messages.flash("warning", f"No legal move starts on {game.square_label(square)}: pick one of your pieces that can move (ringed).")


def promotion_picker(state: GameState) -> None:
    """The promotion choice a click on a last-rank square leaves pending (chess), as buttons."""
    pending = st.session_state.get(PROMOTION)
    if not pending:
        return
    game = session.current_game()
    st.markdown("**Promote to:**")
    for col, move in zip(st.columns(len(pending)), pending):
        col.button(game.san(state.moves, move), key=f"promote_{move}", on_click=on_promotion, args=(move,), width="stretch")


def on_promotion(move: int) -> None:
    st.session_state.pop(PROMOTION, None)
    session.play_move(move)


def layer_label(hook: str) -> str:
    """``blocks.3.hook_resid_post`` -> ``L3 resid_post``."""
    parts = hook.split(".")
    return f"L{parts[1]} {parts[-1].removeprefix('hook_')}"


def open_head_in_lens(head: str, open_section: bool = True) -> None:
    """Show head ``head`` (``L1H2``) large in the logit lens's attention section: from a click on a
    head's attribution cell or the patching lab's head (the lens then opens that section on its
    next run), or from a link's ``head=`` read inside the section (``open_section=False``: the
    section's control is drawn already)."""
    st.session_state.update(attention_head=head, attention_view="One head", **({"lens_section": "Attention"} if open_section else {}))


def hook_link(hook: str) -> str:
    """A probe's hook as a link shows it: ``blocks.3.hook_resid_post`` -> ``3``; another point of
    the stream keeps its name (``3-resid_mid``)."""
    parts = hook.split(".")
    point = parts[-1].removeprefix("hook_")
    return parts[1] if point == "resid_post" else f"{parts[1]}-{point}"


def best_hook(name: str, target: str, hooks: list[str]) -> str:
    entry = caches.probe_summary(name).get(target)
    if entry and entry.get("hooks") == hooks:
        return hooks[int(np.argmax(entry["accuracy"]))]
    return hooks[len(hooks) // 2]


def true_board_figure(state: GameState, cell_px: int = 40):
    return board_figure(state.board, None, legal=state.legal, last_move=state.last_squares, title="True board (engine)", cell_px=cell_px, picked=picked_square(state), **session.current_game().board_style)


def probe_board(handle: ModelHandle, state: GameState, target: str, hook: str, probes: dict[str, P.Probe], cell_px: int = 40, show_scale: bool = True, title: str | None = None, probs: np.ndarray | None = None, run=None):
    """The probe's reading of the current position at ``hook`` (None before the first move).

    ``probs``: the probe's output if already computed (``P.probe_position`` reads every layer in
    one pass), else it is computed here, from ``run`` (``P.position_pass``) when given.
    """
    if not state.moves:
        return None
    if probs is None:
        probs = P.probe_position(handle, {hook: probes[hook]}, state.moves, run=run)[hook]
    truth = board_targets.true_classes(state.moves, handle.game, target)
    mover = state.mover
    accuracy = float((probs.argmax(-1) == truth).mean())
    board = handle.game.probe_board(probs.argmax(-1), target, mover)
    return probe_board_figure(probs, truth, board, title=title or f"Probe at {layer_label(hook)}: {accuracy:.0%} right", cell_px=cell_px, show_scale=show_scale, style=handle.game.board_style)


def probe_panel(handle: ModelHandle, state: GameState, key: str = "panel") -> None:
    """A compact "what the probe reads now" panel for the board player."""
    target = handle.game.board_target
    probes = caches.probe_set(handle.name, target)
    if not probes:
        st.info(f"No {target} probes for {handle.name} yet: train them on the Probe viewer page.")
        return
    hooks = list(probes)
    hook = st.select_slider("Probe layer", hooks, value=best_hook(handle.name, target, hooks), format_func=layer_label, key=f"{key}_layer")
    fig = probe_board(handle, state, target, hook, probes)
    if fig is None:
        st.caption("Play a move to see the probe's board.")
    else:
        st.plotly_chart(fig, key=f"{key}_board", width="content", config=chart_config())
        st.caption("Pieces: what the mine/theirs/empty probe reads (faint = unsure); red crosses: squares it gets wrong.")


def measured_sae_metrics(handle: ModelHandle, sae, hook: str, sae_name: str, card: dict, corpus) -> dict:
    """The SAE's quality: the card's figures (measured at training, on random games), or, for a
    published SAE or on a researcher's corpus, measured here on demand (a minute or so), with the
    paper's own figures beside Karvonen et al.'s SAEs; ``{}`` until measured."""
    from core.game_corpus import corpus_games, corpus_tag, moves_width
    from core.interp.sae import published as published_saes
    from core.interp.sae.metrics import SAE_EVAL_SEED, board_scores, sae_metrics
    from core.models.registry import randomly_initialised

    published = sae_caches.cached_published_sae(handle.name, sae_name) if card.get("published") else None
    if published is None and corpus is None:
        return card.get("metrics", {})
    game = handle.game.name
    if published is not None and ("adamkarvonen" in published.source or "trained_model" in published.source):
        figures = published_saes.PAPER_FIGURES.get(game, {})
        st.caption(f"Karvonen et al. 2024 report for their {game} SAEs (layer-5 resid_post, coverage / board reconstruction): "
                   + "; ".join(f"{unit.replace('_', ' ')} {c if c is not None else '–'} / {r}" for unit, (c, r) in figures.items())
                   + ". Measured here on " + ("random legal games, not the paper's real games, so the two can differ." if corpus is None else "the games chosen in the sidebar."))
    store = st.session_state.setdefault(MEASURED_SAE_METRICS, {})
    key = (handle.name, sae_name, corpus_tag(corpus))
    where = "held-out random games" if corpus is None else messages.plain(corpus.name)
    if key not in store:
        if not st.button(f"Measure this SAE on {where} (FVU, L0, CE recovered, coverage, board reconstruction; a minute or more)", key="measure_sae"):
            if corpus is not None and card.get("metrics"):
                st.caption("Until then, the figures below are the card's: measured on random games when the SAE was trained.")
            return card.get("metrics", {}) if published is None else {}
        centred = published is not None and published_saes.expects_centred_residual(published)
        n = min(100, max(20, 6_000 // moves_width(handle.game)))  # ~6k positions: 100 Othello games, ~46 chess games
        with st.spinner(f"Measuring on {where}…"):
            metric_games = None if corpus is None else corpus_games(handle.game, corpus, n, SAE_EVAL_SEED)
            board_games = None if corpus is None else corpus_games(handle.game, corpus, 2 * n, SAE_EVAL_SEED + 1)
            metrics = sae_metrics(handle, sae, hook, n_games=n, centred=centred, games=metric_games)
            metrics["board"] = board_scores(handle, sae, hook, n_games=2 * n, random_handle=randomly_initialised(handle), games=board_games)
            metrics["corpus"] = "random legal games" if corpus is None else corpus.name
        store[key] = metrics
    return store[key]


UNIT_NAMES = {"sae_features": "SAE features", "mlp_neurons": "MLP neurons", "random_init_neurons": "random-init MLP neurons"}


def property_set_table(board: dict, where) -> None:
    """The paper's property sets as rows, coverage and board reconstruction of each kind of unit as
    columns (a board set has both; a set of single facts only coverage)."""
    units = [u for u in board if isinstance(board[u], dict) and board[u].get("sets")]
    if not units:
        return
    rows = []
    for set_name in board[units[0]]["sets"]:
        row = {"property set": set_name, "properties": board[units[0]]["sets"][set_name].get("properties")}
        for unit in units:
            entry = board[unit]["sets"].get(set_name, {})
            row[f"{UNIT_NAMES.get(unit, unit)}: coverage"] = entry.get("coverage")
            row[f"{UNIT_NAMES.get(unit, unit)}: board rec."] = entry.get("board_reconstruction")
        rows.append(row)
    import pandas as pd

    numbers = [c for c in rows[0] if c.endswith(("coverage", "board rec."))]
    with where.expander("By property set (the paper's sets)", expanded=False):
        st.dataframe(pd.DataFrame(rows), hide_index=True, column_config={c: st.column_config.NumberColumn(format="%.3f") for c in numbers})
        st.caption("Blanks masked: the empty class of every square is left out; initial position masked (chess): also each square's class in the starting "
                   "position, which unmoved pieces make easy. Board reconstruction is scored on the kept (class, square) entries only. Single facts (check, "
                   "castling rights of the side to move, a legal en passant capture, a pinned piece of either side) have coverage only.")
