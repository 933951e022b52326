"""Logit lens: how the next-move prediction forms, layer by layer and component by component."""

from __future__ import annotations

import numpy as np
import pandas as pd
import streamlit as st

from ui import corpus as ui_corpus
from ui import panels
from ui import caches
from ui import messages
from ui import session
from ui import shell
from ui import steering_panel as steer
from core import corpus_results
from core.interp.lens import logit_lens as L
from core.interp.shared import token_squares
from core.interp.shared import position_run
from core.interp.lens import move_lens as ML
from core.viz.attention import head_grid_thumbnails, head_pattern_figure
from core.viz.board import board_figure
from core.viz.lens import attention_grid_figure, char_lens_figure, dla_figure, gap_figure, lens_legality_figure
from ui.unit_dashboard import unit_dashboard, unit_search
from core.words import count
from ui.export import chart_config

spec, state, handle = shell.analysis_page("Logit lens", serves=lambda g: True)
game = handle.game
size = game.rows
# A move is one token, or its first token names the square it starts on: the lens reads tokens.
# Otherwise (PGN characters) it reads whole moves, each the product of its tokens' read-outs.
token_view = game.tokens_name_squares


corpus = ui_corpus.current_corpus()  # the games the corpus statistics read (sidebar)


def share(p: float) -> str:
    """A probability short enough for a board title ("<0.01", "0.37"): the board is ~34 characters wide."""
    return "<0.01" if p < 0.005 else f"{p:.2f}"


top_left, top_right = st.columns([3, 2])
with top_right:
    legality = caches.corpus_result(handle, corpus_results.lens_legality_result(handle, corpus))
    st.plotly_chart(lens_legality_figure(legality), key="lens_legality", config=chart_config())
    if legality.get("by_kind"):
        st.caption("Dashed: top-1 legal for each kind of predicted token (" + ", ".join(legality["by_kind"]) + "; in brackets, how many positions predict one).")
with top_left:
    st.markdown(f"**{state.status()}** · {len(state.moves)} moves · `{game.format_moves(state.moves) or '(no moves)'}`")
    b1, b2, b3 = st.columns(3)
    b1.button("Random move", on_click=session.play_random_move, disabled=state.is_over, width="stretch")
    b2.button("Undo", on_click=session.undo_move, disabled=not state.moves, width="stretch")
    incl_mid = b3.toggle("After attention too", value=False, help="Read the lens after each attention layer as well as after each block.")
    over = (f"over {corpus_results.lens_games(handle)} random games (about 30,000 positions for every model: one with a longer context reads them from fewer games)"
            if corpus is None else messages.plain(f"over {count(legality['games'], 'game') if isinstance(legality.get('games'), int) else '? games'} of {corpus.summary()}"))
    st.caption("The logit lens applies the final LayerNorm and unembedding to the residual stream after each layer: "
               f"the chart shows how often that early read-out is already a legal move, {over}.")
    # One section at a time (a control, not tabs: only the section shown is computed and drawn, so a
    # move redraws a fifth of the page), under the buttons; the link keeps it (`section=`).
    SECTIONS = ["Layer by layer", "Attribution", "Attention", "Neuron view"]
    SECTION_PARAMS = ["layers", "attribution", "attention", "neurons"]
    session.linked_setting("lens_section", "section", SECTIONS, SECTION_PARAMS, "lens section (layers, attribution, attention or neurons)", SECTIONS[0])
    section = st.segmented_control("Show", SECTIONS, key="lens_section", help="Layer by layer: the read-out after each layer. Attribution: what each head, MLP and neuron writes towards a move. "
                                   "Attention: the heads' patterns on this game. Neuron view: one MLP neuron over held-out games.") or SECTIONS[0]

if not state.moves or state.is_over:
    st.info("Play some moves of an ongoing game (here or on the Board player) to see the lens for that position.")
    session.sync_url()
    st.stop()

moves = tuple(state.moves)
# Room to read the next move: its first token (square tokens), or all of it (PGN: up to 8 characters).
room = 1 if token_view else 9
if not game.square_moves and len(game.game_tokens(moves)) + room > game.n_ctx:
    st.info("The game no longer fits in the model's context: the lens needs a position where the model can read" + (" the next move." if token_view else " and write the next move."))
    session.sync_url()
    st.stop()
moves = moves[: game.n_ctx]
run = position_run.run_position(handle, moves)  # one cached pass that every view below reads
batch = token_squares.game_batch(moves, game)  # and one replay of the game into tokens, legal tokens and kinds

shared = False
mlens = ML.move_lens(handle, state, incl_mid, run=run) if not token_view and section in SECTIONS[:2] else None  # PGN: every legal move's read-outs
sans = {m: game.san(moves, m) for m in mlens.moves} if mlens is not None else {}

if section == SECTIONS[0]:
    labels, lens_logits = L.logit_lens(handle, run.tokens, incl_mid, run=run)
    st.subheader("The prediction after each layer")
    SCALES = ["Each layer its own", "One for every layer"]
    session.linked_setting("lens_scale", "scale", SCALES, ["layer", "shared"], "colour scale (layer or shared)", SCALES[0])
    scale = st.segmented_control("Colour scale", SCALES, key="lens_scale", help="Each layer its own: every board runs white to its own most likely square, so a layer's ranking shows even where its read-out is flat. One for every layer: boards compare with each other.") or SCALES[0]
    shared = scale == SCALES[1]
    if token_view:
        probs = token_squares.lens_square_probs(lens_logits[:, 0, -1], game)  # (points, squares)
        rank, kl = L.agreement_with_final(lens_logits[:, 0, -1])
        tops = [int(probs[i].argmax()) for i in range(len(labels))]
        titles = [f"{label}: {game.square_label(top)} {'✓' if state.legal[top] else '✗'}" for label, top in zip(labels, tops)]
        frames = [(top, "#2ca02c" if state.legal[top] else "#d62728") for top in tops]
    else:
        SIDES = ["from-square", "to-square"]
        side = st.segmented_control("Board shows each legal move's lens probability summed by its", SIDES, key="lens_side", default=SIDES[0]) or SIDES[0]
        frm, to = mlens.marginals(game)
        probs = frm if side == SIDES[0] else to
        rank, kl = mlens.agreement()
        tops = [mlens.top_move(i) for i in range(len(labels))]
        titles = [f"{label}: {sans[top]} · legal {share(mlens.legal_mass[i])}" for i, (label, top) in enumerate(zip(labels, tops))]
        frames = [(game.move_squares(top)[0 if side == SIDES[0] else 1], "#2ca02c") for top in tops]
    shared_max = float(probs.max()) or 1.0
    cols = st.columns(4)
    for i, label in enumerate(labels):
        with cols[i % len(cols)]:
            panels.playable_chart(
                board_figure(state.board, probs[i], legal=state.legal, outline=frames[i][0], outline_color=frames[i][1], title=titles[i] + ("" if shared else f" · max {share(probs[i].max())}"), cell_px=24, zmax=shared_max if shared else float(probs[i].max()) or 1.0, show_scale=False, picked=panels.picked_square(state), **game.board_style),
                f"lens_{i}", state,
            )
    panels.promotion_picker(state)
    if token_view:
        what = "lens probability of each square" if game.square_moves else "lens probability of each square as the next move's from-square"
        frame_note = "frame: the lens's top-1 (green legal, red illegal)"
    else:
        what = f"each legal move's lens probability (the product of its characters' read-outs, the space after it included) summed by its {side}"
        frame_note = "frame: the read-out's likeliest legal move; title: that move and the read-out's share on legal moves (the rest is on strings that are no legal move)"
    scale_note = f"on one scale for every layer, white 0 to darkest {shared_max:.2f}" if shared else "each board on its own scale, white 0 to its own maximum (in its title)"
    st.caption(f"Colour: {what}, {scale_note} (hover for values); rings: legal; {frame_note}. " + panels.CLICK_HINT[game.square_moves])
    if token_view:
        final_token = int(lens_logits[-1, 0, -1].argmax())
        final_name = game.square_label(int(game.token_square()[final_token])) if game.token_square()[final_token] >= 0 else str(final_token)
        table = {"read after": labels, "top-1": [game.square_label(t) for t in tops]}
    else:
        final_name = sans[tops[-1]]
        table = {"read after": labels, "top legal move": [sans[t] for t in tops], "its probability": [float(mlens.probs[i].max()) for i in range(len(labels))], "legal moves' share": mlens.legal_mass}
    st.dataframe(
        pd.DataFrame({**table, f"rank of the output's top-1 ({final_name})": rank, "KL(output ‖ read-out), nats": np.round(kl, 3)}),
        hide_index=True, width="stretch", height=50 + 35 * min(len(labels), 12),  # every layer and the output in sight (room for a scroll bar)
        column_config={c: st.column_config.NumberColumn(format="percent") for c in ("its probability", "legal moves' share")},
    )
    st.caption("Rank 1: the read-out already ranks the model's final choice first. KL: how much the read-out's whole distribution still differs from the output's (0 at the output)"
               + ("." if token_view else "; for moves, both over the legal moves, each read-out renormalised on them."))
    if not token_view:
        legal_first = token_squares.legal_tokens_now(moves, game, batch=batch)
        st.plotly_chart(char_lens_figure(mlens.next_token, labels, game.vocab, legal_first), key="char_lens", config=chart_config())
        st.caption("The same read-outs one character at a time: the probability of the very next character (the first of the next move), "
                   "after each layer. ␣ is a space; a dot marks characters some legal move starts with.")

if section == SECTIONS[1]:
    attr = L.attribute(handle, moves, run=run)
    legal_tok = token_squares.legal_tokens_now(moves, game, batch=batch)
    candidates = game.candidate_tokens()
    st.subheader("Direct logit attribution")
    d1, d2 = st.columns([2, 3])
    if token_view:
        move_choices = [t for t in range(game.d_vocab) if game.token_square()[t] >= 0 and t != game.pad_token]
        model_top = max(move_choices, key=lambda t: float(attr.logits[t]))
        token = d1.selectbox("Move", move_choices, index=move_choices.index(model_top), format_func=lambda t: f"{game.square_label(game.token_square()[t])}{' (top-1)' if t == model_top else ''}{' · legal' if legal_tok[t] else ' · illegal'}")
        METRICS = ["logit of this move", "legal minus illegal"]
    else:
        ranked = sorted(mlens.moves, key=lambda m: -float(mlens.logp[-1, mlens.moves.index(m)]))
        picked_move = d1.selectbox("Move", ranked, format_func=lambda m: f"{sans[m]} · {float(mlens.probs[-1, mlens.moves.index(m)]):.1%}" + (" (top-1)" if m == ranked[0] else ""))
        first_char = ML.move_tokens_after(handle, state, picked_move)[1][0]
        token = first_char
        METRICS = ["first character", "whole move", "legal minus illegal"]
    metric = d2.radio("Attribute", METRICS, horizontal=True, help="legal minus illegal: a part's mean direct effect on legal next tokens minus its mean effect on illegal ones."
                      + ("" if token_view else " Whole move: the sum of the logits of the move's characters (and the space after it), each at the position that predicts it."))
    unit_attr, unit_token, readout = attr, token, None
    if metric == "legal minus illegal":
        readout = L.legal_minus_illegal_readout(legal_tok, candidates)
        values = attr.legal_minus_illegal(legal_tok, candidates).numpy()
        title = "Direct effect: mean legal-move logit minus mean illegal-move logit" if token_view else "Direct effect: mean legal minus mean illegal next-character logit"
        bias = float(attr.bias.double() @ readout)
    elif metric == "whole move":
        unit_attr, unit_token = ML.move_attribution(handle, state, picked_move), 0
        values = unit_attr.dla[:, 0].numpy()
        title = f"Direct effect on the summed logits of {sans[picked_move]}␣ (sum {float(unit_attr.logits[0]):.2f})"
        bias = float(unit_attr.bias[0])
    else:
        values = attr.dla[:, token].numpy()
        name = game.square_label(game.token_square()[token]) if token_view else f"'{game.vocab[token]}', the first character of {sans[picked_move]}"
        title = f"Direct effect on the logit of {name} (logit {attr.logits[token]:.2f})"
        bias = float(attr.bias[token])
    what_sums = {"legal minus illegal": "legal-minus-illegal logit", "whole move": "summed logits"}.get(metric, "logit")


    def on_dla_click() -> None:
        """A click on a head's cell opens that head in the attention section ("One head")."""
        points = st.session_state["dla"].get("selection", {}).get("points", [])
        data = points[0].get("customdata") if points else None
        if isinstance(data, list) and len(data) == 2:
            panels.open_head_in_lens(f"L{int(data[0])}H{int(data[1])}")
            messages.flash("info", f"L{int(data[0])}H{int(data[1])}'s attention pattern, opened from its attribution cell.")


    g1, g2 = st.columns([3, 2])
    g1.plotly_chart(dla_figure(values, attr.labels, attr.kinds, attr.layers, handle.cfg.n_heads, title), key="dla", on_select=on_dla_click, selection_mode="points", config=chart_config())
    with g2:
        st.markdown(f"**Top neurons** (direct effect on the {what_sums})")
        neurons = pd.DataFrame(L.top_neurons(unit_attr, unit_token, k=10, readout=readout))
        st.dataframe(neurons[["neuron", "activation", "direct effect"]], hide_index=True, width="stretch")
    st.caption(f"The parts sum exactly to the {what_sums} minus the bias terms (final LayerNorm bias and unembedding bias: {bias:+.3f}). Click a head's cell to open its attention pattern (in the Attention section).")
    st.markdown("**Legal minus illegal, by component and position**")
    gap_labels, gap, gap_valid = L.legal_gap_by_position(handle, moves, run=run, batch=batch)
    token_labels = game.token_labels(moves)
    batch_kind = batch.kind[0, : len(token_labels)]
    kinds_here = [game.token_kinds[int(k)] if 0 <= int(k) < len(game.token_kinds) else "" for k in batch_kind]
    show = st.radio("Positions predicting", ["every token"] + list(game.token_kinds), horizontal=True, key="gap_kind") if len(game.token_kinds) > 1 else "every token"
    cols_shown = [i for i in range(len(token_labels)) if gap_valid[i] and (show == "every token" or kinds_here[i] == show)]
    if cols_shown:
        st.plotly_chart(gap_figure(gap[:, cols_shown], gap_labels, [token_labels[i] for i in cols_shown]), key="gap", config=chart_config())
        st.caption("Each cell: the component's direct effect on the mean logit of the legal next tokens minus the mean over the illegal ones (" + ("squares" if token_view else "characters") + "), at the position read (x: the token read there). Blue: pushes towards legal moves, as in the chart above.")
    else:
        st.caption("No position of this kind in the game yet.")

if section == SECTIONS[2]:
    st.subheader("Attention")
    labels_moves = game.token_labels(moves)
    patterns = L.attention_patterns(handle, moves, run=run)
    head_names = [f"L{layer}H{h}" for layer in range(handle.cfg.n_layers) for h in range(handle.cfg.n_heads)]
    # One view at a time (a control, not tabs): only the view shown is drawn, and a click on a DLA head
    # cell can switch to it.
    VIEWS = ["Every head", "One head", "All heads from one position"]
    linked_head = session.url_choice("head", head_names, "attention head (L<layer>H<head>)")
    if linked_head is not None:
        panels.open_head_in_lens(linked_head, open_section=False)
    messages.show_messages()
    if st.session_state.get("attention_view") not in VIEWS:
        st.session_state["attention_view"] = VIEWS[0]
    view = st.segmented_control("Attention view", VIEWS, key="attention_view", label_visibility="collapsed") or VIEWS[0]
    if view == "Every head":
        st.plotly_chart(head_grid_thumbnails(patterns, labels_moves), key="attention_thumbs", width="content", config=chart_config())
        st.caption("Each square is one head's pattern on this game (hover for the positions and weight). Open \"One head\" to see one large.")
    elif view == "One head":
        # Default: the head that looks furthest from the current token (the diagonal is the boring case).
        off_diagonal = (patterns[:, :, -1, :-1].sum(-1)).reshape(-1) if patterns.shape[-1] > 1 else np.zeros(len(head_names))
        if st.session_state.get("attention_head") not in head_names:  # first visit or another model
            st.session_state["attention_head"] = head_names[int(np.argmax(off_diagonal))]
        head = st.selectbox("Head", head_names, key="attention_head")
        layer_i, head_i = (int(x) for x in head[1:].split("H"))
        st.plotly_chart(head_pattern_figure(patterns[layer_i, head_i], labels_moves, head, current=len(labels_moves) - 1), key="attention_head_big", width="content", config=chart_config())
        st.caption("Orange frame: the current position (the last token), whose attention decides the prediction on this page.")
        steer.steering_panel(handle, steer.head_unit(layer_i, head_i), "steer_head", state=state)
    else:
        if len(labels_moves) > 1:
            dest = st.slider("Destination: attention paid by the model at position" if not game.square_moves else "Destination: attention paid by the model at move", 1, len(labels_moves), len(labels_moves)) - 1
        else:
            dest = 0  # one move: the only destination (a slider needs two values)
            st.caption("Destination: move 1, the only move so far.")
        st.plotly_chart(attention_grid_figure(patterns, dest, labels_moves), key="attention", config=chart_config())

if section == SECTIONS[3]:
    st.subheader("Neuron view")
    NEURON_LAYER, NEURON = "neuron_layer", "neuron_index"
    # "This position's top neuron": the largest direct effect on the model's top next token (a move
    # for square tokens; for PGN, its first character).
    attr = L.attribute(handle, moves, run=run)
    if token_view:
        move_tokens = [t for t in range(game.d_vocab) if game.token_square()[t] >= 0 and t != game.pad_token]
        top_token = max(move_tokens, key=lambda t: float(attr.logits[t]))
    else:
        top_token = int(attr.logits.argmax())
    best = L.top_neurons(attr, top_token, k=1)
    top_neuron = (int(best[0]["layer"]), int(best[0]["index"])) if best else (0, 0)
    home = corpus_results.neuron_home_layer(handle)  # its neurons are read from a stored index
    home_top = L.top_neurons(attr, top_token, k=1, layer=home)[0]
    home_neuron = (home, int(home_top["index"]))


    def open_neuron(layer_i: int, neuron_i: int) -> None:
        st.session_state[NEURON_LAYER], st.session_state[NEURON] = int(layer_i), int(neuron_i)


    # The neuron studied stays while moves are played (its data is per layer, computed once); it
    # starts as the link's, or the top neuron of the last layer at the first position seen (that
    # layer's index is shipped; another layer's is computed on first use).
    neuron_names = [f"L{layer_i}N{i}" for layer_i in range(handle.cfg.n_layers) for i in range(handle.cfg.d_mlp)]
    linked = session.url_choice("neuron", neuron_names, "neuron (L<layer>N<index>)")
    if linked is not None:
        open_neuron(*(int(x) for x in linked[1:].split("N")))
    messages.show_messages()
    if not (0 <= st.session_state.get(NEURON_LAYER, -1) < handle.cfg.n_layers and 0 <= st.session_state.get(NEURON, -1) < handle.cfg.d_mlp):
        open_neuron(*home_neuron)
    n1, n2, n3 = st.columns([1, 1, 2])
    layer = int(n1.number_input("Layer", 0, handle.cfg.n_layers - 1, key=NEURON_LAYER))
    neuron = int(n2.number_input("Neuron", 0, handle.cfg.d_mlp - 1, key=NEURON))
    n3.button(f"Open L{top_neuron[0]}N{top_neuron[1]}, this position's top neuron", on_click=open_neuron, args=top_neuron, disabled=top_neuron == (layer, neuron), width="stretch")


    index, corr = caches.corpus_result(handle, corpus_results.neurons_result(handle, layer, corpus))
    ui_corpus.caption(f"Layer {layer}'s neuron index, {len(index.games)} games")
    unit_search(index, "neuron", f"neuron_search_{layer}", lambda unit: open_neuron(layer, unit), unit_name=lambda unit: f"L{layer}N{unit}")
    steer.steering_panel(handle, steer.neuron_unit(layer, neuron, index), "steer_neuron", state=state)
    unit_dashboard(
        index, neuron, game, name=f"L{layer}N{neuron}", effects=L.neuron_output_board(handle, layer, neuron) if token_view else L.neuron_output_tokens(handle, layer, neuron),
        effects_title="Output weights → moves (W_out·W_U)" if token_view else "Output weights → characters (W_out·W_U)", key="neuron",
        effects_note="the neuron's output weights read directly through the unembedding" + ("" if game.square_moves else ", per square token" if token_view else ", per character"),
    )
    if corr is not None:
        st.markdown(f"**Correlation of L{layer}N{neuron} with each square's state** over the same {len(index.games)} games (mine = the player who just moved)")
        empty = np.zeros((size, size), dtype=np.int8)
        for col, (c, name) in zip(st.columns(3), enumerate(["empty", "mine", "theirs"])):
            col.plotly_chart(board_figure(empty, corr[neuron, c], value_name="corr", colorscale="RdBu", zmin=-1, zmax=1, title=f"Corr. with '{name}'", cell_px=24, show_scale=c == 2), key=f"neuron_corr_{c}", width="content", config=chart_config())

link = {} if section == SECTIONS[0] else {"section": SECTION_PARAMS[SECTIONS.index(section)]}
if section == SECTIONS[3]:
    link["neuron"] = f"L{layer}N{neuron}"
    link |= steer.link_params("steer_neuron")
if section == SECTIONS[2] and view == "One head":
    link["head"] = head
    link |= steer.link_params("steer_head")
if shared:
    link["scale"] = "shared"
session.sync_url(link)
