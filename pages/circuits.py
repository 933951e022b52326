"""Circuits: how the model gets from the moves played to the move it predicts. The attribution
graph of the current position in the local replacement model (transcoders, frozen attention and
LayerNorm), pruned to the paths that matter, each feature labelled with the board property it
tracks; interventions on its nodes in the real model."""

from __future__ import annotations

import time

import pandas as pd
import streamlit as st

from core.interp.circuits import board_targets as BT
from core.interp.circuits.interventions import edit_hooks
from core.interp.shared.predictions import predict, top_k
from core.viz.board import board_figure
from ui import caches
from ui import circuit_caches as CC
from ui import circuit_panels as CP
from ui import messages
from ui import session
from ui import shell
from ui.export import chart_config

TARGET_LABELS = {"top": "the model's top next moves", "move": "one move", "legal": "legal minus illegal", "probe": "a probe's reading of one square"}

spec, state, handle = shell.analysis_page("Circuits", serves=lambda g: True)
game = handle.game
try:
    transcoders = CC.cached_transcoders(handle.name)
except CC.TranscoderProblem as exc:
    st.info(str(exc))
    session.sync_url()
    st.stop()

room = 1 if game.tokens_name_squares else 9  # keep room for a whole move written after the game (PGN)
moves = tuple(state.moves)
while moves and len(game.game_tokens(moves)) + room > game.n_ctx:
    moves = moves[:-1]
if not moves:
    st.info("Play at least one move (on the Board player, or open a link with ?moves=...) to trace how the model predicts the next one.")
    session.sync_url()
    st.stop()
if len(moves) < len(state.moves):
    st.caption(f"The game is cut to its first {len(moves)} moves: the model's context must hold the target too.")
token_labels = game.token_labels(moves)
if not game.tokens_name_squares:  # a character: say which move it belongs to
    ends = [len(game.game_tokens(moves[: i + 1])) for i in range(len(moves))]
    texts = [game.move_text(moves[:i], m) for i, m in enumerate(moves)]
    owner = [next((i for i, e in enumerate(ends) if p < e), len(moves) - 1) for p in range(len(token_labels))]
    hover_labels = [f"{c} (in {texts[owner[p]]})" for p, c in enumerate(token_labels)]
else:
    hover_labels = token_labels


def position_label(pos: int) -> str:
    return hover_labels[pos] if pos < len(hover_labels) else f"+{pos - len(hover_labels) + 1} (the target move)"


def tick_label(pos: int) -> str:
    return token_labels[pos] if pos < len(token_labels) else f"+{pos - len(token_labels) + 1}"


# -- target and thresholds -----------------------------------------------------------------------
c1, c2, c3 = st.columns([2, 2, 2])
probes = CC.probe_layers(handle.name)
kinds = [k for k in BT.KINDS if k != "probe" or probes]
if not game.tokens_name_squares:
    TARGET_LABELS.update(top="the next character", move="a whole move")
session.linked_setting("ci_target", "target", kinds, kinds, "circuit target", "top")
kind = c1.radio("Explain", kinds, key="ci_target", format_func=TARGET_LABELS.get, help="What the graph explains: the likeliest next tokens (weighted by probability, as circuit-tracer does), one legal move (several characters: the sum of their logits, each where it is predicted), or the mean legal logit minus the mean illegal one.")
move = None
if kind == "move":
    legal = sorted(int(m) for m in state.legal_moves) if moves == tuple(state.moves) else sorted(int(m) for m in game.state(moves).legal_moves)
    if not legal:
        st.info("The game is over: no legal move to explain.")
        session.sync_url()
        st.stop()
    probs = caches.cached_predictions(handle.name, moves)
    legal.sort(key=lambda m: -(probs.move_probs.get(m, 0.0) if probs and probs.move_probs else 0.0))
    names = [game.url_moves((m,)) for m in legal]
    session.linked_setting("ci_move", "target_move", legal, names, "legal move of this position", legal[0])
    move = c1.selectbox("Move", legal, key="ci_move", format_func=lambda m: game.move_label(m) if game.tokens_name_squares else game.move_text(moves, m))
probe = None
if kind == "probe":
    layers = sorted(probes)
    squares = list(range(game.n_squares))
    session.linked_setting("ci_probe_layer", "probe_layer", layers, [str(v) for v in layers], "probe layer", layers[len(layers) // 2])
    session.linked_setting("ci_probe_square", "probe_square", squares, [game.square_label(q) for q in squares], "square", squares[0])
    session.linked_setting("ci_probe_class", "probe_class", [0, 1, 2], ["empty", "mine", "theirs"], "probe class", 1)
    p1, p2, p3 = c1.columns(3)
    layer = p1.selectbox("After layer", layers, key="ci_probe_layer")
    square = p2.selectbox("Square", squares, key="ci_probe_square", format_func=game.square_label)
    cls = p3.selectbox("Reads", [0, 1, 2], key="ci_probe_class", format_func=("empty", "mine", "theirs").__getitem__, help="'mine': the player who just moved, as the published world-model probe reads it.")
    probe = (int(layer), int(square), int(cls))
nt, et = CP.thresholds(c2, c3)

# -- the graph -------------------------------------------------------------------------------------
t0 = time.perf_counter()
try:
    with st.spinner("Attributing: one backward pass per 512 nodes through the frozen model…"):
        circuit = CC.cached_circuit(handle.name, moves, kind, move, CC.MAX_FEATURES, nt, et, probe)
except ValueError as exc:
    messages.error(exc)
    session.sync_url(CP.link_params(nt, et))
    st.stop()
seconds = time.perf_counter() - t0
graph = circuit.graph
CP.scores(circuit, seconds if seconds > 0.05 else 0.0, f"move {position_label(graph.first)}")


def feature_label(layer: int, feature: int) -> str:
    return CC.feature_label(handle.name, layer, feature)


nodes, groups, node, label_of = CP.graph_section(circuit, feature_label, position_label, tick_label)

# -- the selected node -----------------------------------------------------------------------------
left, right = st.columns([2, 3])
with left:
    pos = min(node["pos"], len(moves) - 1)
    upto = moves[: next((i + 1 for i in range(len(moves)) if len(game.game_tokens(moves[: i + 1])) > pos), len(moves))]
    shown_state = game.state(upto)
    title = {"token": f"After {position_label(node['pos'])}", "target": "The position the target is read at"}.get(node["kind"], f"The board where it fires ({position_label(pos)})")
    outline = None
    if node["kind"] == "feature":  # the square its board property names, outlined
        words = CC.feature_label(handle.name, int(graph.features[node["node"]][0]), int(graph.features[node["node"]][2])).split(" · ")[0].split()
        squares = {game.square_label(q): q for q in range(game.n_squares)}
        outline = next((squares[w] for w in reversed(words) if w in squares), None)
        if outline is not None:
            title += f"; outlined: {game.square_label(outline)}, the square of its label"
    st.plotly_chart(board_figure(shown_state.board, last_move=game.move_squares(upto[-1])[1] if upto else None, outline=outline, title=title, cell_px=34, rank1_bottom=game.board_style.get("rank1_bottom", False)), key="ci_board", config=chart_config())
with right:
    CP.edge_tables(circuit, node["node"], lambda n: label_of.get(n, f"node {n} (pruned)"))
if node["kind"] == "feature" and st.toggle("Show this feature's dashboard (indexes the layer's features over held-out games the first time)", key="ci_dash"):
    CP.feature_dashboard(handle, transcoders, int(graph.features[node["node"]][0]), int(graph.features[node["node"]][2]))

# -- intervene ---------------------------------------------------------------------------------------
st.subheader("Intervene on the graph's features")
edits, factor, picked = CP.intervention_picker(circuit, nodes, groups, len(game.game_tokens(moves)) - 1)
if edits:
    position = game.state(moves)
    before = predict(handle, position, hooks=([], None))
    after = predict(handle, position, hooks=(edit_hooks(transcoders, edits), None))
    legal_arg = position.legal if game.square_moves else position.legal_moves
    rows_before, rows_after = top_k(before, legal_arg, game), top_k(after, legal_arg, game)
    b, a = st.columns(2)
    for col, title, rows, pred in ((b, "Before", rows_before, before), (a, f"With {len(edits)} feature(s) × {factor:g}", rows_after, after)):
        col.markdown(f"**{title}**: top move {rows[0]['move']} ({'legal' if rows[0]['legal'] else 'illegal'}), illegal probability {pred.illegal_mass:.1%}")
        col.dataframe(pd.DataFrame(rows), hide_index=True, column_config={"probability": st.column_config.NumberColumn(format="percent")})
    turned = "stays" if rows_before[0]["legal"] == rows_after[0]["legal"] else "turns"
    st.caption(messages.plain(
        f"Verdict: the top move goes from {rows_before[0]['move']} to {rows_after[0]['move']}; its legality {turned} {'legal' if rows_after[0]['legal'] else 'illegal'}; "
        f"illegal probability {before.illegal_mass:.1%} → {after.illegal_mass:.1%}. The edit runs in the real model (attention and LayerNorms free), "
        f"adding (×{factor:g} − 1) × activation × decoder row to the MLP's output at each feature's position."))
else:
    st.caption("Pick features above (or supernodes) to see the next-move distribution with them removed or scaled.")
probe_params = {"probe_layer": str(probe[0]), "probe_square": game.square_label(probe[1]), "probe_class": ("empty", "mine", "theirs")[probe[2]]} if probe else {}
session.sync_url({"target": kind, **({"target_move": game.url_moves((move,))} if move is not None else {}), **probe_params, **CP.link_params(nt, et)})
