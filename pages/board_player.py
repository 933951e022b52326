"""Board player: play Othello and watch the model's next-move prediction after every move."""

from __future__ import annotations

import numpy as np
import pandas as pd
import streamlit as st

import panels
import ui
from core.games import othello
from core.games.play import IllegalMoveError, game_state
from core.interp.predictions import top_k
from core.viz.board import board_figure, history_figure

ui.ensure_shell()
ui.init_state()  # idempotent: also when a link opens this page directly
spec = ui.model_spec()
size = spec.board_size
state = ui.current_state()


# -- actions (callbacks run before the page is drawn, so it always shows the new state) -------


def on_board_click(key: str) -> None:
    points = st.session_state[key].get("selection", {}).get("points", [])
    if points:
        data = points[0].get("customdata")
        ui.play_square(int(data[0] if isinstance(data, list) else data))


def on_reset() -> None:
    ui.set_moves(())


def on_moves_text(replace: bool) -> None:
    text = st.session_state.get("moves_text", "")
    notation = {"auto": "auto", "d3 (column, row from 1)": "label", "C2 (published: row, column from 0)": "published"}[st.session_state.get("notation", "auto")]
    try:
        new = othello.parse_moves(text, size, notation)
        base = () if replace else st.session_state[ui.MOVES]
        game_state(base + tuple(new), size)
    except (ValueError, IllegalMoveError) as exc:
        ui.flash("error", f"Could not play {text!r}: {exc}")
        return
    ui.set_moves(base + tuple(new))
    st.session_state["moves_text"] = ""


st.title("Board player")
ui.show_messages()

left, right = st.columns([5, 4], gap="large")
handle = ui.current_handle()
pred = ui.cached_predictions(spec.name, state.moves) if handle is not None else None
show_pred = pred is not None and not state.is_over

with left:
    st.markdown(f"**{state.status()}**")
    last = state.moves[-1] if state.moves else None
    fig = board_figure(
        state.board,
        pred.probs if show_pred else None,
        legal=state.legal,
        outline=pred.top1 if show_pred else None,
        last_move=last,
        value_name="P(next move)",
    )
    key = f"board_{len(state.moves)}_{hash(state.moves) & 0xFFFF}"
    st.plotly_chart(fig, key=key, on_select=lambda: on_board_click(key), selection_mode="points", width="content", config={"displayModeBar": False})
    st.caption("Click a square to play it. Orange rings: legal moves. Colour: the model's next-move probability; red frame: its top-1; yellow frame: the last move.")
    b1, b2, b3 = st.columns(3)
    b1.button("Undo", on_click=ui.undo_move, disabled=not state.moves, width="stretch")
    b2.button("Reset", on_click=on_reset, disabled=not state.moves, width="stretch")
    b3.button("Random move", on_click=ui.play_random_move, disabled=state.is_over, width="stretch")
    st.text_input("Moves", key="moves_text", placeholder="d3 c5 f6  ·  d3c5f6  ·  C2 E4 …", help="Square labels: column letter then row number (d3). The published Othello-GPT style (row letter, column from 0: C2) is also read.")
    st.radio("Notation", ["auto", "d3 (column, row from 1)", "C2 (published: row, column from 0)"], key="notation", horizontal=True, label_visibility="collapsed")
    m1, m2 = st.columns(2)
    m1.button("Play these moves", on_click=on_moves_text, args=(False,), width="stretch")
    m2.button("Load as a new game", on_click=on_moves_text, args=(True,), width="stretch")
    st.code(othello.format_moves(state.moves, size) or "(no moves yet)", language=None)

with right:
    st.subheader(f"Model: {spec.name}")
    if handle is None:
        st.info("Pick a bundled model in the sidebar to see predictions.")
    elif pred is None:
        st.info("The model reads the game move by move and predicts from the first move on: play a move.")
    elif state.is_over:
        st.info("The game is over: nothing left to predict. The history below shows every prediction made.")
    else:
        top_label = othello.square_to_label(pred.top1, size)
        verdict = "legal" if pred.top1_legal else "ILLEGAL"
        c1, c2 = st.columns(2)
        c1.metric("Top-1 move", top_label, verdict, delta_color="normal" if pred.top1_legal else "inverse")
        c2.metric("Illegal probability mass", f"{pred.illegal_mass:.2%}", help="1 − the probability the model puts on legal moves.")
        table = pd.DataFrame(top_k(pred, state.legal, size, k=10))
        st.dataframe(
            table,
            hide_index=True,
            width="stretch",
            column_config={
                "probability": st.column_config.ProgressColumn("probability", format="%.3f", min_value=0.0, max_value=1.0),
                "legal": st.column_config.CheckboxColumn("legal"),
            },
        )
    if pred is not None:
        labels = [othello.square_to_label(m, size) for m in state.moves]
        top1 = [othello.square_to_label(int(s), size) for s in pred.history_top1]
        st.markdown("**History: the prediction after each move**")
        n_pred = len(pred.history_top1_legal)
        st.plotly_chart(history_figure(pred.history_top1_legal, pred.history_illegal_mass, labels[:n_pred], top1), key="history", config={"displayModeBar": False})
        rate = np.nanmean(pred.history_top1_legal) if np.isfinite(pred.history_top1_legal).any() else float("nan")
        st.caption(f"Top-1 legal on {np.isfinite(pred.history_top1_legal).sum()} positions of this game: {rate:.1%}.")
    if handle is not None and st.toggle("Probe panel", key="probe_panel", help="What a linear probe reads off the residual stream, updated with every move."):
        panels.probe_panel(handle, state)

ui.sync_url()
