"""Board player: play a game and watch the model's next-move prediction after every move.

Games whose move is one square (Othello) play on a click. Games whose move starts on a piece
(chess) take two clicks: the piece (its destinations then show the model's distribution), then the
destination; a promotion asks for the piece.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import streamlit as st

from ui import panels
from ui import caches
from ui import messages
from ui import session
from ui import shell
from core.games.base import IllegalMoveError
from core.interp.shared.position_record import position_record
from core.interp.shared.predictions import top_k, top_moves
from core.viz.board import board_figure, history_figure
from ui.export import chart_config

PROMOTION = panels.PROMOTION

shell.ensure_shell()
session.init_state()  # idempotent: also when a link opens this page directly
shell.serve_text_model("Board player")  # a text model: the prompt player
shell.page_sidebar()
spec = session.model_spec()
game = session.current_game()
state = session.current_state()


# -- actions (callbacks run before the page is drawn, so it always shows the new state) -------


def on_piece_picker() -> None:
    st.session_state.pop(PROMOTION, None)
    choice = st.session_state.get("piece_picker")
    if choice is None or choice < 0:
        st.session_state.pop(session.PICKED, None)
    else:
        st.session_state[session.PICKED] = int(choice)


def on_reset() -> None:
    session.set_moves(())


def on_moves_text(replace: bool) -> None:
    text = st.session_state.get("moves_text", "")
    notation = game.notations.get(st.session_state.get("notation", "auto"), "auto")
    base = () if replace else st.session_state[session.MOVES]
    try:
        new, note = game.read_moves(text, base, notation)
        game.state(base + tuple(new))
    except (ValueError, IllegalMoveError) as exc:
        shown = text if len(text) <= 80 else f"{text[:60]}… ({len(text):,} characters)"  # the reason must not be cut off
        messages.flash("error", f"Could not play {shown!r}: {exc}")
        return
    session.set_moves(base + tuple(new))
    if note:
        messages.flash("info", note)
    st.session_state["moves_text"] = ""


st.title("Board player")
messages.show_messages()

left, right = st.columns([5, 4], gap="large")
handle, load_error = shell.current_handle(show_error=False)  # shown beside the board, where the predictions go
pred = caches.cached_predictions(spec.name, state.moves) if handle is not None else None
show_pred = pred is not None and not state.is_over
picked = st.session_state.get(session.PICKED)
if picked is not None and not game.moves_from(state, picked):
    picked = None

with left:
    st.markdown(f"**{state.status()}**")
    if game.square_moves or picked is None:
        values, legal, outline = (pred.probs if show_pred else None), state.legal, (pred.top1 if show_pred else None)
        value_name = "P(next move)" if game.square_moves else "P(from-square)"
    else:
        destinations = np.zeros(game.n_squares, dtype=bool)
        destinations[[game.move_squares(m)[1] for m in game.moves_from(state, picked)]] = True
        second = pred.second.get(picked) if show_pred else None
        values, legal, value_name = second, destinations, f"P(to | {game.square_label(picked)})"
        outline = int(np.argmax(second)) if second is not None else None
    fig = board_figure(
        state.board, values, legal=legal, outline=outline, last_move=state.last_squares, value_name=value_name, picked=picked,
        outline_color="#2ca02c" if (outline is not None and legal[outline]) else "#d62728", **game.board_style,
    )
    panels.playable_chart(fig, "board", state)
    if game.square_moves:
        st.caption("Click a square to play it. Orange rings: legal moves. Colour: the model's next-move probability; frame: its top-1 (green legal, red illegal); yellow frame: the last move.")
    elif picked is None:
        st.caption("Click a piece, then its destination. Orange rings: pieces that can move. Colour: the model's probability for the next move's from-square; frame: its top-1 (green legal, red illegal); yellow: the last move.")
    else:
        st.caption(f"Piece on {game.square_label(picked)} picked (purple). Orange rings: its legal destinations; colour: the model's to-square distribution given this from-square. Click a destination to play, the piece again to put it down.")
    if not game.square_moves:
        movable = sorted({game.move_squares(m)[0] for m in state.legal_moves}) if not state.is_over else []
        options = [-1] + movable
        st.session_state["piece_picker"] = picked if picked in options else -1  # mirrors clicks and resets
        st.selectbox(
            "Piece", options, key="piece_picker", on_change=on_piece_picker,
            format_func=lambda s: "(click a piece, or choose one here)" if s < 0 else f"{game.piece_label(state, s)} on {game.square_label(s)}",
            help="Shows the model's distribution over this piece's destinations; the same as clicking the piece.",
        )
    panels.promotion_picker(state)
    b1, b2, b3 = st.columns(3)
    b1.button("Undo", on_click=session.undo_move, disabled=not state.moves, width="stretch")
    b2.button("Reset", on_click=on_reset, disabled=not state.moves, width="stretch")
    b3.button("Random move", on_click=session.play_random_move, disabled=state.is_over, width="stretch")
    with st.form("moves_form", border=False, enter_to_submit=True):  # Enter plays the typed moves
        st.text_input("Moves", key="moves_text", placeholder=game.move_placeholder, help=game.move_help + " Press Enter to play them.")
        if game.notations:
            st.radio("Notation", list(game.notations), key="notation", horizontal=True, label_visibility="collapsed")
        m1, m2 = st.columns(2)
        m1.form_submit_button("Play these moves", on_click=on_moves_text, args=(False,), width="stretch")
        m2.form_submit_button("Load as a new game", on_click=on_moves_text, args=(True,), width="stretch")
    messages.monospace(game.format_moves(state.moves) or "(no moves yet)")
    params = {"model": spec.name, **({"moves": game.url_moves(state.moves)} if state.moves else {})}
    record = position_record(spec.name, game, state, pred, link=session.share_link(params))
    st.download_button("Download this position's analysis (JSON)", json.dumps(record, indent=1), file_name=f"boardlens-{spec.name}-{len(state.moves)}-moves.json", mime="application/json",
                       icon=":material/download:", width="stretch", help="The moves, the legal moves, the model's top moves with their probabilities and legality, the illegal mass and the prediction after every move, with a link back here.")

with right:
    st.subheader(f"Model: {spec.name}")
    if handle is None:
        messages.error(load_error)
    elif pred is None and state.moves and not state.is_over:
        st.info("The game no longer fits in the model's context: it cannot predict the next move.")
    elif pred is None and game.square_moves:
        st.info("The model reads the game move by move and predicts from the first move on: play a move.")
    elif state.is_over:
        st.info("The game is over: nothing left to predict. The history below shows every prediction made.")
    elif game.square_moves:
        verdict = "legal" if pred.top1_legal else "ILLEGAL"
        c1, c2 = st.columns(2)
        c1.metric("Top-1 move", game.square_label(pred.top1), verdict, delta_color="normal" if pred.top1_legal else "inverse")
        c2.metric("Illegal mass", f"{pred.illegal_mass:.2%}", help="Illegal probability mass: 1 − the probability the model puts on legal moves.")
        table = pd.DataFrame(top_k(pred, state.legal, game, k=10))
        st.dataframe(
            table,
            hide_index=True,
            width="stretch",
            column_config={
                "probability": st.column_config.ProgressColumn("probability", format="%.3f", min_value=0.0, max_value=1.0),
                "legal": st.column_config.CheckboxColumn("legal"),
            },
        )
    if pred is not None and not game.square_moves and not state.is_over:
        best, p_best = max(pred.move_probs.items(), key=lambda kv: kv[1])
        best_legal = best in state.legal_moves
        c1, c2, c3 = st.columns(3)
        c1.metric("Top-1 move", game.move_label(best) if game.tokens_name_squares else game.move_text(state.moves, best), "legal" if best_legal else "ILLEGAL", delta_color="normal" if best_legal else "inverse", help="The likeliest whole move: product of its tokens' probabilities.")
        c2.metric("Illegal mass", f"{max(0.0, 1 - pred.legal_move_mass):.2%}", help="Illegal probability mass: 1 − the summed probability of every legal move (each the product of its tokens' conditional probabilities).")
        c3.metric("Top-1 piece", game.square_label(pred.top1) if pred.top1 >= 0 else "(not a square)", "legal" if pred.top1_legal else "ILLEGAL", delta_color="normal" if pred.top1_legal else "inverse", help="The first token alone: which piece the model expects to move.")
        legal_rows = [{"move": game.san(state.moves, m), "uci": game.move_label(m), "probability": 100 * p} for m, p in top_moves(pred, state.legal_moves, game, 10, legal=True)]
        illegal_rows = [{"move": game.move_label(m), "probability": 100 * p} for m, p in top_moves(pred, state.legal_moves, game, 10, legal=False)]
        # Numbers, not bars: in half-width tables a progress column had no room left for its value.
        column_config = {"probability": st.column_config.NumberColumn("probability", format="%.2f %%", help="The whole move's probability: the product of its tokens' conditional probabilities.")}
        t1, t2 = st.columns(2)
        t1.markdown("**Top legal moves**")
        t1.dataframe(pd.DataFrame(legal_rows), hide_index=True, width="stretch", column_config=column_config)
        if game.tokens_name_squares:
            t2.markdown("**Top illegal moves**")
            t2.dataframe(pd.DataFrame(illegal_rows), hide_index=True, width="stretch", column_config=column_config)
        else:  # the moves scored are the legal ones; what else the model might write shows in its first character
            first = pred.next_token
            legal_first = {game.move_text(state.moves, m)[0] for m in state.legal_moves}
            order = np.argsort(-first)[:8]
            t2.markdown("**Next character** (the first of the next move)")
            t2.dataframe(
                pd.DataFrame([{"character": repr(game.vocab[t]), "probability": 100 * float(first[t]), "legal": game.vocab[t] in legal_first} for t in order]),
                hide_index=True, width="stretch", column_config={"probability": column_config["probability"], "legal": st.column_config.CheckboxColumn("legal", help="Some legal move starts with this character.")},
            )
    if pred is not None and not np.isfinite(pred.history_top1_legal).any():
        st.caption("History: once a move is played, the model's prediction after each move shows here (top-1 legal and illegal mass).")
    elif pred is not None:
        labels = [game.move_label(m) for m in state.moves]
        top1 = [game.square_label(int(s)) if s >= 0 else "—" for s in pred.history_top1]
        st.markdown("**History: the prediction after each move**")
        n_pred = len(pred.history_top1_legal)
        st.plotly_chart(history_figure(pred.history_top1_legal, pred.history_illegal_mass, labels[:n_pred], top1), key="history", config=chart_config())
        rate = np.nanmean(pred.history_top1_legal)
        note = f"Top-1 legal on {np.isfinite(pred.history_top1_legal).sum()} positions of this game: {rate:.1%}."
        if pred.history_second_top1_legal is not None and np.isfinite(pred.history_second_top1_legal).any():
            first_token, later = ("From-square", "to-square (given the piece played)") if game.tokens_name_squares else ("First-character", "later characters (given the move's characters so far)")
            note = f"{first_token} top-1 legal on {np.isfinite(pred.history_top1_legal).sum()} positions: {rate:.1%}; {later}: {np.nanmean(pred.history_second_top1_legal):.1%}. Bars: illegal mass of the {first_token.lower()} token."
        st.caption(note)
    if handle is not None and game.square_moves and st.toggle("Probe panel", key="probe_panel", help="What a linear probe reads off the residual stream, updated with every move."):
        panels.probe_panel(handle, state)

session.sync_url()
