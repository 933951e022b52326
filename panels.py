"""Page pieces shared by several pages (Streamlit side; the computation is in ``core``)."""

from __future__ import annotations

import numpy as np
import streamlit as st

import ui
from core.games.base import GameState
from core.interp import probes as P
from core.models.handle import ModelHandle
from core.viz.board import board_figure
from core.viz.probes import probe_board_figure


def layer_label(hook: str) -> str:
    """``blocks.3.hook_resid_post`` -> ``L3 resid_post``."""
    parts = hook.split(".")
    return f"L{parts[1]} {parts[-1].removeprefix('hook_')}"


def best_hook(name: str, target: str, hooks: list[str]) -> str:
    entry = ui.probe_summary(name).get(target)
    if entry and entry.get("hooks") == hooks:
        return hooks[int(np.argmax(entry["accuracy"]))]
    return hooks[len(hooks) // 2]


def true_board_figure(state: GameState, cell_px: int = 40):
    return board_figure(state.board, None, legal=state.legal, last_move=state.last_squares, title="True board (engine)", cell_px=cell_px, **ui.current_game().board_style)


def probe_board(handle: ModelHandle, state: GameState, target: str, hook: str, probes: dict[str, P.Probe], cell_px: int = 40, show_scale: bool = True, title: str | None = None, probs: np.ndarray | None = None):
    """The probe's reading of the current position at ``hook`` (None before the first move).

    ``probs``: the probe's output if already computed (``P.probe_position`` reads every layer in
    one pass), else it is computed here.
    """
    if not state.moves:
        return None
    if probs is None:
        probs = P.probe_position(handle, {hook: probes[hook]}, state.moves)[hook]
    truth = P.true_classes(state.moves, handle.game, target)
    mover = state.mover
    accuracy = float((probs.argmax(-1) == truth).mean())
    board = handle.game.probe_board(probs.argmax(-1), target, mover)
    return probe_board_figure(probs, truth, board, title=title or f"Probe at {layer_label(hook)}: {accuracy:.0%} right", cell_px=cell_px, show_scale=show_scale, style=handle.game.board_style)


def probe_panel(handle: ModelHandle, state: GameState, key: str = "panel") -> None:
    """A compact "what the probe reads now" panel for the board player."""
    target = handle.game.board_target
    probes = ui.probe_set(handle.name, target)
    if not probes:
        st.info(f"No {target} probes for {handle.name} yet: train them on the Probe viewer page.")
        return
    hooks = list(probes)
    hook = st.select_slider("Probe layer", hooks, value=best_hook(handle.name, target, hooks), format_func=layer_label, key=f"{key}_layer")
    fig = probe_board(handle, state, target, hook, probes)
    if fig is None:
        st.caption("Play a move to see the probe's board.")
    else:
        st.plotly_chart(fig, key=f"{key}_board", width="content", config={"displayModeBar": False})
        st.caption("Pieces: what the mine/theirs/empty probe reads (faint = unsure); red crosses: squares it gets wrong.")
