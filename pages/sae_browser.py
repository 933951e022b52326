"""SAE feature browser: sparse-autoencoder features of a model, each shown as the boards it fires on."""

from __future__ import annotations

import numpy as np
import pandas as pd
import streamlit as st

from ui import corpus as ui_corpus
from ui import panels
from ui import caches
from ui import messages
from ui import sae_caches
from ui import session
from ui import shell
from ui import steering_panel as steer
from ui.feature_sets import feature_sets_panel
from core.interp.shared import token_squares
from core.interp.shared import board_targets
from core.interp.sae import features as F
from core.interp.shared import unit_index
from core.interp.sae.metrics import sae_metrics
from core.train.sae import ARCHITECTURES, SAETrainConfig, card_for, train_sae
from core.viz.board import board_figure, value_boards_figure
from core.viz.sae import curve_figure, density_histogram
from ui.unit_dashboard import unit_dashboard, unit_search
from ui.export import chart_config

FEATURE = "sae_feature"

spec, state, handle = shell.analysis_page("SAE feature browser", serves=lambda g: True)
game = handle.game
token_view = game.tokens_name_squares  # else (PGN characters) effects and predictions are per character
size = game.rows
n_layers = handle.cfg.n_layers


def select_feature(feature: int) -> None:
    st.session_state[FEATURE] = int(feature)


def on_table_select() -> None:
    """A click on a row's checkbox or on any of its cells opens that row's feature."""
    selection = st.session_state["feature_table"].selection
    rows = list(selection.rows) or [cell[0] for cell in selection.cells]
    if rows:
        select_feature(int(st.session_state["feature_table_ids"][rows[0]]))


# -- which SAE ------------------------------------------------------------------------------------
choices = sae_caches.sae_choices(handle.name)
with st.expander("Train an SAE on this model" if choices else "No SAE for this model yet: train one here", expanded=not choices):
    t1, t2, t3, t4 = st.columns(4)
    kind = t1.selectbox("Hook", ["hook_resid_post", "hook_mlp_out", "mlp.hook_post", "hook_resid_mid"], help="resid_post: the residual stream after the block; mlp_out: what the MLP writes; mlp.hook_post: the MLP's neurons.")
    layer = t2.selectbox("Layer", list(range(n_layers)), index=n_layers // 2)
    arch = t3.selectbox("Architecture", ARCHITECTURES, format_func=lambda a: {"topk": "TopK", "standard": "ReLU + L1"}[a])
    tokens = t4.select_slider("Activations", [100_000, 200_000, 500_000, 1_000_000, 2_000_000], value=200_000, format_func=lambda n: f"{n // 1000}k")
    t5, t6 = st.columns(2)
    d_sae = t5.select_slider("Features (d_sae)", [256, 512, 1024, 2048, 4096], value=1024)
    sparsity = t6.slider("k (active features)", 4, 128, 32) if arch == "topk" else t6.number_input("L1 coefficient", 0.01, 50.0, 5.0)
    if st.button("Train SAE", type="primary"):
        hook = f"blocks.{layer}.{kind}"
        cfg = SAETrainConfig(hook=hook, architecture=arch, d_sae=d_sae, total_tokens=tokens, **({"k": int(sparsity)} if arch == "topk" else {"l1_coefficient": float(sparsity)}))
        bar = st.progress(0.0, text="starting…")
        try:
            sae, stats = train_sae(handle, cfg, progress=lambda text, f: bar.progress(min(0.85 * f, 0.85), text=text))
            bar.progress(0.87, text="metrics on held-out games…")
            card = card_for(handle, cfg, stats, sae_metrics(handle, sae, hook, n_games=100))
            index = F.build_index(handle, sae, hook, n_games=F.index_games(game) * 3 // 5, progress=lambda text, f: bar.progress(0.9, text=text))
            name = f"{hook.replace('blocks.', 'L').replace('.hook_', ' ').replace('.mlp', ' mlp')} {arch} {d_sae} (this session)"
            sae_caches.store_trained_sae(handle.name, name, sae, card, index)
            st.session_state["sae_pick"] = name
            bar.progress(1.0, text="done")
            st.rerun()
        except (ValueError, RuntimeError) as exc:
            messages.error(f"Training failed: {exc}")
if not choices:
    session.sync_url()  # the link and "Share this view" stay, as on every page
    st.stop()

names = list(choices)
from_link = session.url_choice("sae", names, "bundled SAE")
if from_link is not None:
    st.session_state["sae_pick"] = from_link
messages.show_messages()
if st.session_state.get("sae_pick") not in names:
    st.session_state["sae_pick"] = names[0]
sae_name = st.selectbox("SAE", names, key="sae_pick", format_func=lambda n: f"{n} — {choices[n]['hook']}")
card = choices[sae_name]
corpus = ui_corpus.current_corpus()  # the games the index and the metrics read (sidebar)
loaded = sae_caches.sae_and_index(handle.name, sae_name, corpus)
if loaded is None:
    session.sync_url()
    st.stop()
sae, index = loaded
hook = card["hook"]

# -- quality ----------------------------------------------------------------------------------------
metrics = panels.measured_sae_metrics(handle, sae, card["hook"], sae_name, card, corpus)
if metrics:
    st.caption(messages.plain(f"Quality measured on {metrics.get('corpus', 'random legal games')} ({metrics.get('games', '?')} games)."))
if metrics:
    m = st.columns(6)
    m[0].metric("FVU", f"{metrics['fvu']:.3f}", help="Fraction of variance unexplained on held-out games (lower is better).")
    m[1].metric("L0", f"{metrics['l0']:.1f}", help="Mean active features per position.")
    m[2].metric("CE recovered (zero)", f"{metrics['ce_recovered_zero']:.1%}", help="(CE_zero-ablated − CE_with SAE) / (CE_zero-ablated − CE_clean).")
    m[3].metric("CE recovered (mean)", f"{metrics['ce_recovered_mean']:.1%}", help="The same with mean ablation as the reference: a stricter test.")
    m[4].metric("Dead", f"{metrics['dead_fraction']:.1%}", help=f"Features that never fire on the metric games (every token of {metrics.get('games', '?')} held-out games). The density histogram below counts the browser's own games, where each move ends: the two can differ.")
    m[5].metric("Dense", f"{metrics['dense_fraction']:.1%}", help="Features firing on more than 10 % of positions.")
    board = metrics.get("board")
    if board:
        unit_names = {"sae_features": "SAE features", "mlp_neurons": "MLP neurons (same layer)", "random_init_neurons": "MLP neurons, random-init model"}
        rows = [
            {"units": unit_names.get(k, k), "coverage": v["coverage"], "board reconstruction (paper)": v.get("board_reconstruction_paper"), "mean property F1": v["board_reconstruction"]}
            for k, v in board.items()
        ]
        q1, q2 = st.columns([3, 2]) if card.get("curve") else (st.container(), None)
        q1.dataframe(pd.DataFrame(rows), hide_index=True, column_config={c: st.column_config.NumberColumn(format="%.3f") for c in ("coverage", "board reconstruction (paper)", "mean property F1")})
        q1.caption(
            "Board-game metrics (Karvonen et al. 2024), thresholds 0, 0.1 … 1.0 of each unit's max. Coverage: mean over board properties of the best single-unit F1. "
            "Board reconstruction (paper): units that fire with ≥ 95 % precision on ≥ 10 positions label a square's piece; the board is rebuilt from them on held-out "
            "positions and scored by F1 over every square (a square given a wrong label counts as false). Mean property F1: the same labelling scored per property and averaged."
        )
        panels.property_set_table(board, q1)
    curve = card.get("curve")
    if curve:
        where = q2 if board else st
        where.plotly_chart(curve_figure(curve), key="curve", config=chart_config())
        budgets = sorted({p["tokens"] for p in curve if not p.get("this") and p.get("tokens")})
        own = next((p for p in curve if p.get("this")), None)
        where.caption(
            "The sparsity trade-off: the same SAE trained with other k"
            + (f", every point on {budgets[0] / 1e6:g}M activations" if len(budgets) == 1 else f" (token budgets differ: {', '.join(f'{b / 1e6:g}M' for b in budgets)})")
            + (f"; star: this SAE, trained on {own['tokens'] / 1e6:g}M." if own else ".")
        )

# -- the feature table ---------------------------------------------------------------------------------
table = pd.DataFrame(unit_index.feature_table(index))
st.session_state["feature_table_ids"] = table["feature"].to_numpy()
f1, f2 = st.columns([3, 2])
with f1:
    st.dataframe(
        table, key="feature_table", on_select=on_table_select, selection_mode=["single-row", "single-cell"], hide_index=True, height=300,
        column_config={
            "density": st.column_config.NumberColumn(format="%.4f", help="Fraction of held-out positions where it fires."),
            "max activation": st.column_config.NumberColumn(format="%.2f"),
            "F1": st.column_config.NumberColumn(format="%.2f", help="Best F1 of 'fires above t × max' as a predictor of one board property."),
        },
    )
    games_of = "held-out random games" if corpus is None else messages.plain(f"games of {corpus.name}")
    st.caption(f"{index.d_sae} features over {index.n_positions:,} positions of {len(index.games)} {games_of}, read at {game.read_positions} (the SAE itself trains and is scored on every token). Click a column's header to sort, any cell of a row to open its feature.")
with f2:
    st.plotly_chart(density_histogram(index.density), key="density_hist", config=chart_config())

# -- features active now ---------------------------------------------------------------------------------
st.subheader("Features active now")
splice = F.splice_now(handle, sae, hook, state.moves, k=12)  # one pass: the features firing now and the next token with and without the SAE
now = splice.features if splice is not None else []
if not now:
    st.info("Play a move (here or on the Board player) to see which features fire at the current position.")
else:
    a1, a2 = st.columns([1, 3])
    a1.plotly_chart(board_figure(state.board, None, last_move=state.last_squares, title=f"Current position (move {len(state.moves)})", cell_px=28, **game.board_style), key="now_board", width="content", config=chart_config())
    with a2:
        cols = st.columns(6)
        best_names = np.array(index.property_names + ["—"], dtype=object)
        for i, (feature, value) in enumerate(now):
            cols[i % 6].button(f"#{feature}: {value:.2f}", key=f"now_{feature}", on_click=select_feature, args=(feature,), help=f"best property: {best_names[index.best_property[feature]]} (F1 {index.best_f1[feature]:.2f})", width="stretch")
        if token_view:
            clean = caches.cached_predictions(handle.name, state.moves).probs
            spliced = F.on_squares(game, splice.spliced)
            legal = state.legal.reshape(-1)
            name = lambda s: game.square_label(int(s))  # noqa: E731
            what = "next token" if game.square_moves else "next token (the square the next move starts on)"
        else:
            clean, spliced = splice.clean, splice.spliced
            legal = token_squares.legal_tokens_now(state.moves, game)
            name = lambda t: repr(game.vocab[int(t)])  # noqa: E731
            what = "next character (the first of the next move)"
        top = np.argsort(-clean)[:5]
        top_sae = np.argsort(-spliced)[:5]
        fmt = lambda order, p: ", ".join(f"{name(s)}{'' if legal[s] else ' ✗'} {p[s]:.0%}" for s in order)  # noqa: E731
        st.markdown(f"**Top-5 {what} without the SAE:** {fmt(top, clean)}  \n**Top-5 with the SAE spliced in:** {fmt(top_sae, spliced)}  \n(✗ = illegal now; total variation distance {0.5 * np.abs(clean - spliced).sum():.3f})")
    b1, b2 = st.columns(2)
    b1.button("Random move", on_click=session.play_random_move, disabled=state.is_over)
    b2.button("Undo", on_click=session.undo_move, disabled=not state.moves)

# -- one feature ---------------------------------------------------------------------------------------
st.subheader("Feature dashboard")
default = int(now[0][0]) if now else int(np.argmax(index.best_f1))
linked_feature = session.url_choice("feature", range(index.d_sae), "feature number")
if linked_feature is not None:
    st.session_state[FEATURE] = linked_feature
messages.show_messages()
if FEATURE not in st.session_state or not 0 <= st.session_state[FEATURE] < index.d_sae:
    st.session_state[FEATURE] = default
s1, s2 = st.columns([1, 3])
feature = int(s1.number_input("Feature", 0, index.d_sae - 1, key=FEATURE, step=1))
with s2:
    unit_search(index, "feature", "feature_search", select_feature)
directions = F.residual_directions(handle, sae, hook)
steer.steering_panel(handle, steer.feature_unit(sae, hook, sae_name, feature, index), "steer_feature", state=state)
sets_link = feature_sets_panel(handle, sae, hook, index, "ablate_sets", state=state, feature=feature)
left = unit_dashboard(
    index, feature, game, name=f"Feature {feature}", effects=F.logit_effects(handle, directions, feature) if token_view else F.logit_effects_tokens(handle, directions, feature),
    effects_title="Direct logit effect of the decoder direction", key="feature",
    effects_note="direct path through the unembedding, centred over " + ("moves" if game.square_moves else "square tokens; a square's token is both a from- and a to-square" if token_view else "characters"),
)
positions, values = index.activations(feature)
if len(values):
    with left:
        st.markdown("**Nearest features** (decoder cosine)")
        ncols = st.columns(3)
        for i, (other, cos_value) in enumerate(F.decoder_neighbours(sae, feature)):
            ncols[i % 3].button(f"#{other} · {cos_value:.2f}", key=f"nb_{other}", on_click=select_feature, args=(other,), width="stretch")

    rank1_bottom = game.board_style.get("rank1_bottom", False)
    probe_hook = F.probe_hook_for(hook, n_layers)
    target = game.board_target
    board_probes = caches.probe_set(handle.name, target)
    if probe_hook and probe_hook in board_probes:
        weight = board_probes[probe_hook].weight
        if game.square_moves:
            cos = F.probe_cosines(directions[feature], weight)
            what = "the mine/theirs/empty probe"
        else:
            cos = F.class_cosines(directions[feature], weight, list(board_targets.targets_for(game)[target]))
            what = f"the {target} probe's class directions (class − mean of classes), the two it aligns with most"
        st.markdown(f"**Decoder direction vs {what} at {panels.layer_label(probe_hook)}** (cosine per square)")
        st.plotly_chart(value_boards_figure(list(cos.values()), list(cos), game.rows, rank1_bottom=rank1_bottom), key="probe_cosines", width="content", config=chart_config("feature-probe-cosines"))
    else:
        st.info(f"No {target} probe at this layer: train one on the Probe viewer to compare the feature with the probe directions.")

session.sync_url(({"sae": sae_name, "feature": str(feature)} if not sae_name.endswith("(this session)") else {"feature": str(feature)}) | steer.link_params("steer_feature") | sets_link)
