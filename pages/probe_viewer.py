"""Probe viewer: what linear probes read off the residual stream, layer by layer, and editing it."""

from __future__ import annotations

import re

import numpy as np
import streamlit as st

from ui import corpus as ui_corpus
from ui import panels
from ui.skill_panel import skill_probe_panel
from ui import caches
from ui import messages
from ui import session
from ui import shell
from core.game_corpus import HELD_OUT_EVERY, corpus_name
from core.interp.probes import interventions as I
from core.interp.probes import move_edits as ME
from core.interp.probes import piece_edits as E
from core.interp.probes import linear_probes as P
from core.interp.shared import activations
from core.interp.shared import board_targets
from core.viz.board import board_figure
from core.viz.probes import layer_accuracy_figure, sweep_figure
from core.words import count
from ui.export import chart_config

spec, state, handle = shell.analysis_page("Probe viewer", serves=lambda g: True)  # probes need only where a move ends
game = handle.game
size = game.rows

summary = caches.probe_summary(handle.name)
targets = list(board_targets.targets_for(game))
c1, c2, c3 = st.columns([3, 4, 2])
session.linked_setting("pv_target", "target", targets, targets, "probe target", targets[0])
target = c1.selectbox("Probe target", targets, key="pv_target", format_func=lambda t: f"{t}{'' if t in summary else ' (not trained)'}", help="\n".join(f"- **{t}**: {h}" for t, h in board_targets.target_help(game).items()))
probes = caches.probe_set(handle.name, target)
all_layers = c3.toggle("All layers", value=False, help="Small multiples: the probe's board at every layer.")

corpus = ui_corpus.current_corpus()  # the games training and scoring read (sidebar)
with st.expander("Train probes on this model" if probes else "No probes for this target yet: train them here", expanded=not probes):
    file_games = None
    if corpus is None:
        t1, t2 = st.columns(2)
        long_games = not game.square_moves  # chess games give ~100 positions each, Othello ~55
        train_games = t1.slider("Training games", 50 if long_games else 200, 5000, 300 if long_games else 2000, step=50 if long_games else 100)
        test_games = t2.slider("Held-out games", 50 if long_games else 100, 1000, 100 if long_games else 500, step=50 if long_games else 100)
    else:
        try:
            file_games = tuple(ui_corpus.corpus_games(game, corpus, 10**6, 0, part) for part in ("train", "test"))
        except ValueError as exc:
            messages.error(exc)
        train_games, test_games = (len(file_games[0]), len(file_games[1])) if file_games else (0, 0)
        st.caption(messages.plain(f"Trains on {corpus.name}: {train_games} games, scored on the {test_games} held out (one game in {HELD_OUT_EVERY})."))
    if st.button(f"Train {target} probes (every layer)", type="primary", disabled=corpus is not None and not file_games):
        bar = st.progress(0.0, text="starting…")
        try:
            hooks = activations.resid_hooks(handle.cfg.n_layers)
            trained = P.train_probes(handle, target, hooks, train_games, test_games, progress=lambda text, f: bar.progress(min(f, 1.0), text=text),
                                     games=file_games, corpus=corpus_name(corpus))
            before = summary.get(target)
            entry = P.summary_entry(trained, None)
            if before and before.get("random_accuracy") and before.get("hooks") == entry.get("hooks"):
                entry["random_accuracy"] = before["random_accuracy"]  # the random-init control stays on the chart
            caches.store_trained_probes(handle.name, target, trained, entry)
            messages.flash("success", P.training_verdict(trained, before))
            bar.progress(1.0, text="done")
            st.rerun()
        except (ValueError, RuntimeError) as exc:
            messages.error(f"Training failed: {exc}")

if not probes:
    session.sync_url({"target": target})  # the link and "Share this view" stay, as on every page
    st.stop()

hooks = list(probes)
session.linked_setting("pv_layer", "layer", hooks, [panels.hook_link(h) for h in hooks], "probe layer", panels.best_hook(handle.name, target, hooks))
hook = c2.select_slider("Layer", hooks, key="pv_layer", format_func=panels.layer_label)

# One pass of the game: every layer's probe reading, and the keys and values the intervention below continues from.
run = P.position_pass(handle, state.moves, hooks) if state.moves else None
left, mid = st.columns(2, gap="medium")
with left:
    panels.playable_chart(panels.true_board_figure(state), "true_board", state)
    panels.promotion_picker(state)
    st.markdown(f"**{state.status()}** · {len(state.moves)} moves · " + panels.CLICK_HINT[game.square_moves])
    b1, b2 = st.columns(2)
    b1.button("Random move", on_click=session.play_random_move, disabled=state.is_over, width="stretch")
    b2.button("Undo", on_click=session.undo_move, disabled=not state.moves, width="stretch")
with mid:
    fig = panels.probe_board(handle, state, target, hook, probes, run=run)
    if fig is None:
        st.info("Play a move (here or on the Board player) to see what the probe reads.")
    else:
        panels.playable_chart(fig, "probe_board", state)
        st.caption("Pieces: the probe's most likely class (faint = unsure; colour = confidence); red crosses: wrong squares.")
right, right2 = st.columns([3, 2], gap="medium")
on_file = ui_corpus.probe_scores(handle, target, probes, corpus) if corpus is not None else {}
with right:
    if summary:
        shown = dict(summary)
        if on_file:
            shown[f"{target} on {corpus.name[:40]}"] = {"hooks": list(on_file), "accuracy": [s["accuracy"] for s in on_file.values()]}
        st.plotly_chart(layer_accuracy_figure(shown), key="accuracy_chart", config=chart_config())
        entry = summary.get(target)
        if entry:
            trained_on = probes[hook].meta.get("corpus", "random legal games")
            st.caption(messages.plain(f"Held-out accuracy per square over {count(entry['test_games'], 'game')} of {trained_on} (every position); dotted: the same probe on a randomly initialised copy of the model."
                                + (f" Also: the same probes on {count(next(iter(on_file.values()))['games'], 'game')} of {corpus.name}." if on_file else "")))
with right2:
    meta = on_file.get(hook) or probes[hook].meta.get("held_out")
    if on_file.get(hook):
        st.caption(messages.plain(f"Scores on {count(on_file[hook]['games'], 'game')} of {corpus.name}:"))
    if meta:
        per_class = ", ".join(f"{name} {acc:.1%}" for name, acc in meta["per_class"].items() if acc is not None)
        occupied = f", on occupied squares {meta['occupied_accuracy']:.2%}" if meta.get("occupied_accuracy") is not None else ""
        st.markdown(f"**{panels.layer_label(hook)}**: accuracy {meta['accuracy']:.2%}{occupied}, whole board right {meta['board_exact']:.1%}; per class (recall): {per_class}")
        st.plotly_chart(board_figure(np.zeros((game.rows, game.cols), dtype=np.int8), np.array(meta["per_square"]).reshape(-1), value_name="accuracy", colorscale="Viridis", zmin=min(0.5, float(np.min(meta["per_square"]))), zmax=1.0, title="Accuracy per square", cell_px=26, rank1_bottom=game.board_style.get("rank1_bottom", False)), key="per_square", width="content", config=chart_config())

if all_layers and state.moves:
    st.subheader("Every layer")
    cols = st.columns(4)
    every_layer = P.probe_position(handle, probes, state.moves, run=run)  # read off the page's one pass
    for i, h in enumerate(hooks):
        with cols[i % len(cols)]:
            st.plotly_chart(panels.probe_board(handle, state, target, h, probes, cell_px=22, show_scale=False, probs=every_layer[h]), key=f"small_{h}", width="content", config=chart_config())

skill_probe_panel(handle, corpus)  # when the chosen games file has players' ratings

# -- interventions -------------------------------------------------------------------------------
st.subheader("Intervene: edit the model's board")


def edit_boards(res, square: int, edited_title: str, style: dict) -> None:
    """The edited board beside the model's prediction before and after the edit: three boards of
    one size, before and after on one colour scale (given in the caption, so no colour bar makes
    one board narrower than the others)."""
    top = float(max(res.probs_clean.max(), res.probs_edited.max())) or 1.0
    boards = [
        (board_figure(res.edited, None, legal=res.legal_edited, outline=square, outline_color="#9467bd", title=edited_title, cell_px=30, show_scale=False, **style), "edited_board"),
        (board_figure(res.edited, res.probs_clean, legal=res.legal_edited, title=f"Model before: error {res.error_clean}", cell_px=30, zmax=top, show_scale=False, **style), "before_board"),
        (board_figure(res.edited, res.probs_edited, legal=res.legal_edited, title=f"Model after: error {res.error_edited}", cell_px=30, zmax=top, show_scale=False, **style), "after_board"),
    ]
    for col, (fig, key) in zip(st.columns(3), boards):
        col.plotly_chart(fig, key=key, width="content", config=chart_config())
    st.caption(f"Purple frame: the edited square; rings: legal on the edited board. Before and after: the model's probabilities on one scale, white 0 to darkest {top:.2f}; error = legal-set error of its top-N (N = legal moves).")


def emphasised(verdict: str) -> str:
    """The verdict with its conclusion in bold: what changed reads first, the conclusion stands out."""
    return re.sub(r"(Conclusion: [^.]*\.)", r"**\1**", verdict)


def othello_interventions() -> None:
    mte = caches.probe_set(handle.name, "mine_theirs_empty")
    if not mte:
        st.info("Interventions use the mine_theirs_empty probes: train them above.")
        return
    board = state.board.reshape(-1)
    suggestions = I.flip_candidates(state.replay, len(state.moves) - 1)
    squares = list(range(size * size))
    default_square = int(suggestions[0]) if len(suggestions) else int(np.flatnonzero(board)[0])
    i1, i2, i3, i4 = st.columns([2, 3, 3, 3])
    square = i1.selectbox("Square", squares, index=default_square, format_func=lambda s: game.square_label(s) + (" ★" if s in suggestions else ""), help="★: flipping this piece changes the legal moves.")
    mover = int(state.replay.mover[0, len(state.moves) - 1])
    current = "empty" if board[square] == 0 else ("mine" if board[square] == mover else "theirs")
    default_target = {"empty": "mine", "mine": "theirs", "theirs": "mine"}[current]
    new_state = i2.radio("Make it", I.STATES, index=I.STATES.index(default_target), horizontal=True, help="mine = the player who just moved.")
    layer_ids = sorted(p.meta["layer"] for p in mte.values())
    # Three middle layers: over 60 random flip edits of othello8 at scale 2, legal-set error 1.13
    # (L2-4) against 1.27 (L2-3), 2.47 unedited and 2.70 for a random direction.
    layers = i3.multiselect("Layers", layer_ids, default=layer_ids[max(0, len(layer_ids) // 2 - 1) : len(layer_ids) // 2 + 2] or layer_ids[:1])
    scale = i4.slider("Scale", 0.0, 8.0, 2.0, 0.5, help="1 mirrors the probe's confidence onto the target; 0 = no edit.")
    if not layers:
        st.warning("Choose at least one layer.")
        return
    by_layer = {p.meta["layer"]: p for p in mte.values()}
    try:
        res = I.intervene(handle, by_layer, state.moves, square, new_state, layers, scale)
    except ValueError as exc:
        messages.error(exc)
        return
    edit_boards(res, square, "Edited board: its legal moves", {})
    changes = I.move_changes(res.legal_real, res.legal_edited, res.probs_clean, res.probs_edited, game.square_label)
    st.markdown(emphasised(I.verdict(res.error_clean, res.error_edited, res.error_random, int(res.legal_edited.sum()), changes=changes)))
    if not any(c[4] in ("dropped", "took up") for c in changes):
        accuracy = {layer: by_layer[layer].meta.get("held_out", {}).get("accuracy") for layer in layers}
        read = ", ".join(f"L{layer} {a:.0%}" for layer, a in accuracy.items() if isinstance(a, float))
        st.caption(
            "Why an edit may do nothing: the model must still read this square after the edited layers (edit earlier, or more layers), "
            "the probe must read it well there (held-out accuracy " + (read or "unknown") + "), and the push must be large enough "
            "(raise the scale, or run the sweep below: it tries 0–16 beside a random direction of the same size). "
            "Squares marked ★ change the legal moves when flipped; other squares may not change any."
        )
    if not changes:
        st.caption("The edit changes no move's legality on the edited board.")
    if st.button("Scale sweep with random-direction control"):
        batch = I.make_batch([state.moves], [square], [I.STATES.index(new_state)], game)
        sweep = I.scale_sweep(handle, by_layer, batch, res.legal_edited[None], layers, [0, 0.5, 1, 2, 4, 8, 16])
        st.plotly_chart(sweep_figure(sweep), key="sweep", config=chart_config())


def piece_edit_controls():
    """The chess edit's square, piece, layers and scale: ``(square, value, layers, scale, probes
    by layer)``, or None when there is nothing to edit yet (said on the page)."""
    target = game.board_target
    piece_probes = caches.probe_set(handle.name, target)
    if not piece_probes:
        st.info(f"Interventions use the {target} probes: train them above.")
        return None
    board = state.board.reshape(-1)
    movable = sorted({game.move_squares(m)[0] for m in state.legal_moves if abs(int(board[game.move_squares(m)[0]])) != 6})
    i1, i2, i3, i4 = st.columns([2, 3, 3, 3])
    square = i1.selectbox(
        "Square", list(range(game.n_squares)), index=movable[0] if movable else 0, key="edit_square",
        format_func=lambda s: f"{game.square_label(s)} · {game.PIECE_NAMES[int(board[s])]}" + (" ★" if s in movable else ""),
        help="★: a piece of the side to move that has a legal move (removing it changes the legal moves).",
    )
    values = [v for v in range(-5, 6)]  # kings cannot be added or removed
    new_value = i2.selectbox("Make it", values, index=values.index(0), key="edit_value", format_func=lambda v: game.PIECE_NAMES[v], help="Empty removes the piece (the published intervention).")
    layer_ids = sorted(p.meta["layer"] for p in piece_probes.values())
    layers = i3.multiselect("Layers", layer_ids, default=layer_ids[len(layer_ids) // 2 : len(layer_ids) // 2 + 3] or layer_ids[:1], key="edit_layers")
    scale = i4.slider("Scale", 0.0, 16.0, 8.0, 0.5, key="edit_scale", help="1 = just far enough that the probe reads the new piece (2 logits ahead); 0 = no edit.")
    if not layers:
        st.warning("Choose at least one layer.")
        return None
    if int(board[square]) == new_value:
        st.info("The square already holds that: choose another piece or square.")
        return None
    return square, new_value, layers, scale, {p.meta["layer"]: p for p in piece_probes.values()}


def piece_readings(readings: dict) -> str:
    classes = board_targets.targets_for(game)[game.board_target]
    return "; ".join(f"L{layer}: {classes[b]} → {classes[a]}" for layer, (b, a) in readings.items())


def piece_interventions() -> None:
    controls = piece_edit_controls()
    if controls is None:
        return
    square, new_value, layers, scale, by_layer = controls
    try:
        res = E.edit_piece(handle, by_layer, state.moves, square, new_value, layers, scale)
    except ValueError as exc:
        messages.error(f"Cannot make this edit: {exc}")
        return
    edit_boards(res, square, "Edited board: squares with a legal move", game.board_style)
    changed = np.flatnonzero(res.legal_edited != res.legal_real)
    readings = piece_readings(res.readings)
    changes = I.move_changes(res.legal_real, res.legal_edited, res.probs_clean, res.probs_edited, game.square_label)
    st.markdown(emphasised(I.verdict(res.error_clean, res.error_edited, res.error_random, int(res.legal_edited.sum()), unit='squares a next move starts on', changes=changes)))
    st.markdown(
        f"The model's next token is the square the next move starts on; its probability on {game.square_label(square)}: {res.probs_clean[square]:.1%} → {res.probs_edited[square]:.1%}. "
        f"Squares whose legality the edit changes: " + (", ".join(game.square_label(int(s)) + (" (now legal)" if res.legal_edited[s] else " (now illegal)") for s in changed) or "none")
        + f".  \nThe probe's reading of {game.square_label(square)}: {readings}."
    )
    if st.button("Scale sweep with random-direction control"):
        batch = I.make_batch([state.moves], [square], [new_value + 6], game)
        sweep = I.scale_sweep(handle, by_layer, batch, res.legal_edited[None], layers, [0, 1, 2, 4, 8, 16, 32], run=E.run_edited)
        st.plotly_chart(sweep_figure(sweep), key="sweep", config=chart_config())




def piece_move_interventions() -> None:
    """The same edit for models that write moves character by character: judged by the move the
    model writes next, on the edited board."""
    controls = piece_edit_controls()
    if controls is None:
        return
    square, new_value, layers, scale, by_layer = controls
    try:
        res = ME.edit_piece_move(handle, by_layer, state.moves, square, new_value, layers, scale, run=run)
    except ValueError as exc:
        messages.error(f"Cannot make this edit: {exc}")
        return
    b1, b2 = st.columns(2)
    b1.plotly_chart(board_figure(res.board, None, legal=res.legal_real, outline=square, outline_color="#9467bd", title="Real board: squares with a legal move", cell_px=30, show_scale=False, **game.board_style), key="real_board", width="content", config=chart_config())
    b2.plotly_chart(board_figure(res.edited, None, legal=res.legal_edited, outline=square, outline_color="#9467bd", title="Edited board: squares with a legal move", cell_px=30, show_scale=False, **game.board_style), key="edited_board", width="content", config=chart_config())
    st.markdown(f"**{res.verdict()}**")
    st.caption(f"The edit is made at the latest of {game.read_positions}, and kept while the model writes its move, greedily, up to the space that ends it. "
               f"The probe's reading of {game.square_label(square)}: {piece_readings(res.readings)}.")
    if st.button("Removal sweep over 40 random positions, with random-direction control"):
        examples = game.edit_examples(40, seed=1)
        bar = st.progress(0.0, text="Writing the moves at every scale…")
        sweep = ME.removal_sweep(handle, by_layer, examples, layers, [0, 1, 2, 4, 8, 16], progress=lambda text, f: bar.progress(f, text=text))
        bar.empty()
        st.plotly_chart(sweep_figure(sweep, "moves legal on the edited board"), key="sweep", config=chart_config())
        st.caption("Karvonen's measurement: one piece of the side to move removed per position; the share of the model's next moves that are legal on the edited board (higher is better), edited along the probe and along random directions of the same size.")


if not state.moves or state.is_over:
    st.info("Play some moves first: the edit is made at the latest position of an ongoing game.")
elif game.square_moves:
    othello_interventions()
elif hasattr(game, "edit_position") and game.tokens_name_squares:
    piece_interventions()
elif hasattr(game, "edit_position"):
    piece_move_interventions()
else:
    st.info(f"Interventions serve models whose next token is a square; {game.title} models show what the probes read above.")

session.sync_url({"target": target, "layer": panels.hook_link(hook)})
