"""Patching lab: change one move of the game and find the activations that carry the difference."""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import streamlit as st
import torch

from ui import caches
from ui import messages
from ui import session
from ui import shell
from ui import panels
from ui import steering_panel as steer
from core.words import count
from core.interp.patching import sweeps as PT
from core.interp.shared import token_squares
from core.interp.shared.token_squares import lens_square_probs
from core.interp.shared.predictions import game_tokens
from core.viz.board import board_figure
from core.viz.patching import HEAD_NAMES, agreement_figure, block_maps_figure, head_grid_figure, next_token_change_figure
from ui.export import chart_config

spec, state, handle = shell.analysis_page("Patching lab", serves=lambda g: True)
game = handle.game
token_view = game.tokens_name_squares  # else (PGN characters) targets are characters or whole moves
size = game.rows
moves = tuple(state.moves)
room = 1 if game.tokens_name_squares else 9  # keep room to read the next move (PGN: to write one, ~8 characters)
while moves and len(game.game_tokens(moves)) + room > game.n_ctx:
    moves = moves[:-1]
if len(moves) < 2:
    st.info("Play at least two moves (here via the Board player, or open a link with ?moves=...) to patch between two games.")
    session.sync_url()
    st.stop()

labels = [game.move_label(m) if token_view else game.move_text(moves[:i], m) for i, m in enumerate(moves)]
st.markdown(f"**Clean game** ({len(moves)} moves): `{game.format_moves(moves)}`")

# -- the corrupted game --------------------------------------------------------------------------
c1, c2 = st.columns([3, 2])
numbers = list(range(1, len(moves) + 1))
session.linked_setting("pl_change", "change", numbers, [str(n) for n in numbers], "move number of this game", max(1, len(moves) // 2))
index = c1.slider("Move to change", 1, len(moves), key="pl_change", help="The corrupted game plays another legal move here; later moves are replayed while they stay legal.") - 1
# Same number of tokens as the changed move, so both games' tokens line up position by position.
n_changed = len(game.move_tokens(moves[index], moves[:index]))
alternatives = [int(m) for m in game.state(moves[:index]).legal_moves if m != moves[index] and len(game.move_tokens(m, moves[:index])) == n_changed]
if not alternatives:
    st.warning(f"Move {index + 1} ({labels[index]}) has no legal alternative written with as many tokens ({n_changed}): choose another move to change.")
    session.sync_url()
    st.stop()
kept = {s: len(PT.corrupt_game(moves, index, s, game)[1]) for s in alternatives}
alternatives.sort(key=lambda s: -kept[s])  # default: the replacement that keeps the most later moves legal
session.linked_setting("pl_instead", "instead", alternatives, [game.url_moves((s,)) for s in alternatives], f"legal replacement of move {index + 1}", alternatives[0])
same_length = "" if token_view else f" (only moves written with {n_changed} characters keep the games aligned)"
replacement = c2.selectbox(f"Play instead of {labels[index]}{same_length}", alternatives, key="pl_instead", format_func=lambda s: f"{game.move_label(s) if token_view else game.san(moves[:index], s)} (keeps {count(kept[s], 'move')})")
clean_moves, corrupted_moves, dropped = PT.corrupt_game(moves, index, replacement, game)
if dropped:
    why = PT.why_cut(moves, corrupted_moves, game)  # "move 4 (f5) is illegal after the change"
    st.warning(f"{why[:1].upper()}{why[1:]}: both games are cut to {len(corrupted_moves)} moves ({dropped} dropped).")
clean_state, corr_state = game.state(clean_moves), game.state(corrupted_moves)
legal_clean, legal_corr = clean_state.legal, corr_state.legal  # squares a legal next move starts on

# -- metric ---------------------------------------------------------------------------------------
m1, m2, m3 = st.columns(3)
METRICS = ["logit", "log-prob", "logit difference"] + ([] if token_view else ["whole-move log-prob"])
session.linked_setting("pl_metric", "metric", METRICS, [k.replace(" ", "-") for k in METRICS], "metric", METRICS[0])
metric_kind = m1.radio("Metric", METRICS, key="pl_metric", help="Read at the last position: the prediction of the next move." + ("" if token_view else " Whole-move log-prob: the sum of the log-probabilities of a move's characters and the space after it, the move written after both games."))
tail: tuple[int, ...] = ()  # tokens written after both games (a whole move scored character by character)
if token_view:
    differs = [int(s) for s in np.flatnonzero(legal_clean != legal_corr)]
    targets = sorted(int(s) for s in game.token_square() if s >= 0)
    target_name = game.square_label
    default_target = differs[0] if differs else int(np.flatnonzero(legal_clean)[0]) if legal_clean.any() else targets[0]
    target_help = None if game.square_moves else "The next token after the game names the from-square of the next move."
    target_label = "Target move" if game.square_moves else "Target from-square"
else:
    # Characters: the next move's first character; those legal in one game but not the other first.
    first_clean = token_squares.legal_tokens_now(clean_moves, game)
    first_corr = token_squares.legal_tokens_now(corrupted_moves, game)
    differs = [int(t) for t in np.flatnonzero(first_clean != first_corr)]
    targets = [int(t) for t in np.flatnonzero(game.candidate_tokens())]
    target_name = lambda t: repr(game.vocab[t])  # noqa: E731
    default_target = differs[0] if differs else int(np.flatnonzero(first_clean)[0]) if first_clean.any() else targets[0]
    target_help = "A character: the first of the next move (a piece letter, a file, O for castling)."
    target_label = "Target character"
if metric_kind == "whole-move log-prob":
    legal_next = sorted(clean_state.legal_moves, key=lambda m: game.san(clean_moves, m))
    session.linked_setting("pl_target_move", "target_move", legal_next, [game.url_moves((m,)) for m in legal_next], "legal next move of the clean game", legal_next[0])
    target_move = m2.selectbox("Target move", legal_next, key="pl_target_move", format_func=lambda m: game.san(clean_moves, m), help="A legal next move of the clean game, written after both games.")
    tail = tuple(game.move_tokens(target_move, clean_moves)) + (game.vocab.index(" "),)
    tok = other_tok = tail[0]
    target, other, target_text = target_move, None, game.san(clean_moves, target_move)
else:
    names = [target_name(q) for q in targets]
    session.linked_setting("pl_target", "target", targets, names, "target", default_target)
    target = m2.selectbox(target_label, targets, key="pl_target", format_func=lambda s: f"{target_name(s)}{' (legality differs)' if s in differs else ''}", help=target_help)
    others = [q for q in targets if q != target]
    session.linked_setting("pl_minus", "minus", others, [target_name(q) for q in others], "target other than the first", others[0])
    other = m3.selectbox("minus", others, key="pl_minus", disabled=metric_kind != "logit difference", format_func=target_name)
    tok, other_tok = (game.square_token(target), game.square_token(other)) if token_view else (target, other)
    target_text = target_name(target)
clean_t, corrupted_t = (PT.with_tail(game_tokens(g, game), tail) for g in (clean_moves, corrupted_moves))
token_labels = game.token_labels(clean_moves) + [f"+{game.vocab[t]}" for t in tail[:-1]]

metric = PT.next_move_metric(metric_kind, tok, other_tok, tail)


# -- side by side ---------------------------------------------------------------------------------
pair = PT.run_pair(handle, clean_t, corrupted_t)  # both games line up token by token: one pass for both
n_game = clean_t.shape[1] - len(tail[:-1])  # positions of the games themselves (before a scored move)
clean_logits, corr_logits = pair[0][:, n_game - 1].float().cpu()  # the prediction of the next move
clean_v, corr_v = (float(metric(pair[0][i : i + 1].float().cpu())[0]) for i in (0, 1))
b1, b2 = st.columns(2)
outline = target if token_view else game.move_squares(target)[0] if tail else None
for col, name, st_, logits, legal, value in ((b1, "Clean", clean_state, clean_logits, legal_clean, clean_v), (b2, "Corrupted", corr_state, corr_logits, legal_corr, corr_v)):
    probs = lens_square_probs(logits[None], game)[0] if token_view else caches.cached_predictions(handle.name, st_.moves).probs
    col.plotly_chart(board_figure(st_.board, probs, legal=legal, outline=outline, outline_color="#9467bd", last_move=st_.last_squares, title=f"{name}: metric {value:+.3f}", cell_px=36, **game.board_style), key=f"board_{name}", width="content", config=chart_config())
if token_view:
    st.caption(f"Purple frame: the target {'move' if game.square_moves else 'from-square'} {game.square_label(target)} ({'legal' if legal_clean[target] else 'illegal'} in the clean game, {'legal' if legal_corr[target] else 'illegal'} in the corrupted one). Colour: the model's next-move probabilities.")
elif tail:
    st.caption(f"Purple frame: where the target move {target_text} starts ({'legal' if target in corr_state.legal_moves else 'illegal'} in the corrupted game). Colour: the model's next-move probabilities summed by from-square.")
else:
    st.caption(f"Target: the next move's first character {target_text} ({'legal' if first_clean[target] else 'illegal'} in the clean game, {'legal' if first_corr[target] else 'illegal'} in the corrupted one). Colour: the model's next-move probabilities summed by from-square.")

# -- patching ---------------------------------------------------------------------------------------
n_layers, n_pos = handle.cfg.n_layers, clean_t.shape[1]
DIRECTIONS = ["denoising: clean → corrupted run", "noising: corrupted → clean run"]
session.linked_setting("pl_direction", "direction", DIRECTIONS, ["denoising", "noising"], "direction", DIRECTIONS[0])
direction = st.radio("Direction", DIRECTIONS, key="pl_direction", horizontal=True)
denoising = direction.startswith("denoising")
base_t, source_t = (corrupted_t, clean_t) if denoising else (clean_t, corrupted_t)
st.caption(f"Block sweep: {3 * n_layers * n_pos} patched runs, batched by layer into {n_layers} groups; heads: {5 * n_layers * handle.cfg.n_heads} runs. Each starts at its layer from cached activations.")
session.linked_setting("pl_normalise", "normalise", [True, False], ["1", "0"], "switch (1 or 0)", abs(clean_v - corr_v) > 1e-6)
normalised = st.toggle(
    "Normalise: 1 = the patch " + ("restores the clean result" if denoising else "destroys the clean result") + ", 0 = no effect",
    key="pl_normalise",
    help="Denoising: (patched − corrupted) / (clean − corrupted). Noising: (clean − patched) / (clean − corrupted). Either way 1 means this one site carries the whole difference.",
)


SWEEPS_KEPT = 32


@st.cache_data(show_spinner="Patching every site…", max_entries=SWEEPS_KEPT)
def exact_sweep(name: str, base: tuple[int, ...], source: tuple[int, ...], kind: str, tok: int, other_tok: int, tail: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    """Activation patching at every block site and every head: one patched run per site."""
    h = caches.cached_model(name)
    b, s = (PT.with_tail(game_tokens(g, h.game), tail) for g in (base, source))
    m = PT.next_move_metric(kind, tok, other_tok, tail)
    return PT.act_patch_block_every(h, b, s, m).numpy(), PT.act_patch_head_all_pos_every(h, b, s, m).numpy()


@st.cache_data(show_spinner=False, max_entries=32)
def attribution_sweep(name: str, base: tuple[int, ...], source: tuple[int, ...], kind: str, tok: int, other_tok: int, tail: tuple[int, ...], _source_cache: dict) -> np.ndarray:
    """Attribution patching: every block site from one forward and one backward (the source
    game's activations come from the page's pass over both games)."""
    h = caches.cached_model(name)
    b, s = (PT.with_tail(game_tokens(g, h.game), tail) for g in (base, source))
    return PT.attribution_patch_block_every(h, b, s, PT.next_move_metric(kind, tok, other_tok, tail), clean_cache=_source_cache).numpy()


@st.cache_resource
def sweep_record() -> dict:
    """Process-wide: the exact sweeps computed (their cache keys, the latest as many as
    ``exact_sweep`` keeps), each model's seconds per token-block and per block call (timed once),
    and the measured/priced ratio of its latest sweep, which corrects the next price."""
    return {"done": {}, "rates": {}, "correction": {}}


def block_rates(h, tokens: torch.Tensor) -> tuple[float, float]:
    """``(seconds per token-block, seconds per block call)`` of the model, from its TransformerLens
    forward (the sweep's own path) on the game as 1 row and as 32 rows, the fastest of three each
    after an untimed pass (a first pass pays one-off set-up: it priced a first sweep 40x high)."""
    def timed(rows: int) -> float:
        batch = tokens.expand(rows, -1)
        best = float("inf")
        with h.session() as m, torch.inference_mode():
            m(batch)
            for _ in range(3):
                t0 = time.perf_counter()
                m(batch)
                best = min(best, time.perf_counter() - t0)
        return best

    one, many = timed(1), timed(32)
    blocks = h.cfg.n_layers * tokens.shape[-1]
    per_token = max(many - one, 0.0) / (31 * blocks)
    return per_token, max(one - blocks * per_token, 0.0) / h.cfg.n_layers


# The rest of the lab takes ~0.15 s after a move: an exact sweep expected to take longer than the
# other half of a 0.3 s page waits for a click that states its cost.
SWEEP_BUDGET_S = 0.15
base_moves, source_moves = (corrupted_moves, clean_moves) if denoising else (clean_moves, corrupted_moves)
sweep_key = (handle.name, base_moves, source_moves, metric_kind, tok, other_tok, tail)
n_runs = 3 * n_layers * n_pos + 5 * n_layers * handle.cfg.n_heads
record = sweep_record()
if handle.name not in record["rates"]:
    record["rates"][handle.name] = block_rates(handle, base_t)
differ = (base_t[0] != source_t[0]).nonzero()
work_tokens, work_calls = PT.sweep_work(n_layers, handle.cfg.n_heads, n_pos, int(differ[0, 0]) if len(differ) else n_pos)
per_token, per_call = record["rates"][handle.name]
priced = work_tokens * per_token + work_calls * per_call
measured = handle.name in record["correction"]
estimate = priced * record["correction"].get(handle.name, 1.0)
if session.url_choice("exact", ["1"], "exact sweep (1)") == "1":
    st.session_state["pl_exact"] = sweep_key
messages.show_messages()
auto = st.toggle("Run the exact sweep after every change", key="pl_auto", value=False, help=f"Otherwise a sweep expected to take over {SWEEP_BUDGET_S:g} s waits for the button below; attribution patching (a fast linear estimate of the same map) shows at once.")
exact_now = auto or estimate <= SWEEP_BUDGET_S or sweep_key in record["done"] or st.session_state.get("pl_exact") == sweep_key
source_row = slice(0, 1) if denoising else slice(1, 2)  # run_pair: row 0 clean, row 1 corrupted
approx = attribution_sweep(*sweep_key, _source_cache={name: value[source_row] for name, value in pair[1].items()})
if exact_now:
    t0 = time.perf_counter()
    block, heads = exact_sweep(*sweep_key)
    if sweep_key not in record["done"]:
        record["done"][sweep_key] = True
        for old in list(record["done"])[:-SWEEPS_KEPT]:  # bounded like the cache it stands for
            record["done"].pop(old, None)
        took = time.perf_counter() - t0
        record["correction"][handle.name] = took / max(priced, 1e-9)
        st.caption(f"Exact sweep: {n_runs} patched runs in {took:.2f} s (priced at {estimate:.2f} s).")
    st.session_state["pl_exact"] = sweep_key
else:
    block, heads = None, None
    st.button(f"Run the exact sweep: {n_runs} patched runs, about {estimate:.1f} s" + ("" if measured else " (priced from the model's forward time)"), type="primary", on_click=lambda: st.session_state.update(pl_exact=sweep_key))
    st.caption("Until then the map below is attribution patching: a linear estimate of every site's effect from two forwards and one backward. Sites it ranks high are worth confirming exactly.")


def score(values: np.ndarray) -> np.ndarray:
    """1 = the site carries the whole clean/corrupted difference, in either direction."""
    restored = PT.normalise(torch.from_numpy(values), clean_v, corr_v).numpy()
    return restored if denoising else 1.0 - restored


sites = block if block is not None else approx  # the exact map, or its attribution estimate until it runs
if normalised and (warning := PT.small_gap_warning(clean_v, corr_v)):
    st.warning(warning)
if normalised:
    try:
        block_show, heads_show = score(sites), None if heads is None else score(heads)
        what = "share of the difference " + ("restored" if denoising else "destroyed")
    except ValueError as exc:
        st.warning(messages.plain(exc))
        block_show, heads_show, what = sites, heads, "patched metric"
else:
    block_show, heads_show, what = sites, heads, "patched metric"
if block is None:
    what = f"attribution estimate of the {what}"


def on_site_click() -> None:
    """A click on a cell of the maps opens that site in detail below."""
    points = st.session_state["block_maps"].get("selection", {}).get("points", [])
    data = points[0].get("customdata") if points else None
    if isinstance(data, list) and len(data) == 3:
        st.session_state["pl_comp"], st.session_state["pl_layer"], st.session_state["pl_pos"] = (int(v) for v in data)


st.plotly_chart(
    block_maps_figure(block_show, token_labels, f"{what} per patched site ({metric_kind} of {target_text}, {'denoising' if denoising else 'noising'}) · click a cell to open it below"),
    key="block_maps", on_select=on_site_click, selection_mode="points", config=chart_config(),
)
def on_head_click() -> None:
    """A click on a head's cell opens that head below the grid."""
    points = st.session_state["head_grid"].get("selection", {}).get("points", [])
    data = points[0].get("customdata") if points else None
    if isinstance(data, list) and len(data) == 3:
        st.session_state["pl_head"] = tuple(int(v) for v in data)


if heads_show is not None:
    st.plotly_chart(head_grid_figure(heads_show, f"{what}: each head patched at every position · click a cell to open the head"), key="head_grid",
                    on_select=on_head_click, selection_mode="points", config=chart_config())
    part, head_layer, head_i = st.session_state.get("pl_head") or (0, *np.unravel_index(int(np.abs(heads_show[0]).argmax()), heads_show.shape[1:]))
    if not (0 <= part < 5 and 0 <= head_layer < n_layers and 0 <= head_i < handle.cfg.n_heads):
        part, head_layer, head_i = 0, 0, 0
    head_name = f"L{head_layer}H{head_i}"
    h1, h2 = st.columns([3, 2], vertical_alignment="center")
    h1.markdown(f"**{head_name}**, {HEAD_NAMES[part]} patched at every position: {heads_show[part, head_layer, head_i]:+.3f} ({what}).")
    if h2.button(f"Open {head_name}'s attention on the logit lens", key="pl_open_head", width="stretch"):
        panels.open_head_in_lens(head_name)
        messages.flash("info", f"{head_name}'s attention pattern on the clean game, opened from the patching lab.")
        st.switch_page("pages/logit_lens.py")
else:
    st.caption("Heads: patched one by one with the exact sweep (attribution patching estimates block sites only).")

# -- one site in detail ---------------------------------------------------------------------------
st.subheader("One site: its effect on the whole next-move distribution")
# Default: the attention or MLP output that moves the metric most. The residual stream at the
# changed move trivially carries the whole change (it holds the changed input), so it is not shown first.
effect = np.abs(sites - (corr_v if denoising else clean_v))
effect[0] = -1.0
best = np.unravel_index(int(effect.argmax()), sites.shape)
s1, s2, s3 = st.columns(3)
site = (handle.name, moves, index, replacement, metric_kind, target, direction)  # a new sweep starts at its own best site
if st.session_state.get("pl_site_of") != site:
    st.session_state["pl_site_of"] = site
    for key in ("pl_comp", "pl_layer", "pl_pos"):
        st.session_state.pop(key, None)
session.linked_setting("pl_comp", "component", [0, 1, 2], list(PT.BLOCK_KINDS), "component", int(best[0]))
session.linked_setting("pl_layer", "layer", list(range(n_layers)), [str(n) for n in range(n_layers)], "layer", int(best[1]))
session.linked_setting("pl_pos", "position", list(range(n_pos)), [str(p + 1) for p in range(n_pos)], "position", int(best[2]))
comp = s1.selectbox("Component", [0, 1, 2], key="pl_comp", format_func=lambda c: PT.BLOCK_KINDS[c])
layer = s2.selectbox("Layer", list(range(n_layers)), key="pl_layer")
pos = s3.selectbox("Position", list(range(n_pos)), key="pl_pos", format_func=lambda p: f"{p + 1}. {token_labels[p]}")
base_state = corr_state if denoising else clean_state
if token_view:
    site_logits = PT.patched_logits(handle, base_t, source_t, PT.BLOCK_KINDS[comp], layer, pos)
    site_probs = lens_square_probs(site_logits[None], game)[0]
    base_probs = lens_square_probs((corr_logits if denoising else clean_logits)[None], game)[0]
    d1, d2 = st.columns(2)
    d1.plotly_chart(board_figure(base_state.board, site_probs, legal=base_state.legal, outline=target, outline_color="#9467bd", title="Patched run: next-move probabilities", cell_px=34, **game.board_style), key="site_probs", width="content", config=chart_config())
    delta = site_probs - base_probs
    lim = float(np.abs(delta).max()) or 1.0
    d2.plotly_chart(board_figure(base_state.board, delta, legal=base_state.legal, colorscale="RdBu", zmin=-lim, zmax=lim, value_name="Δ prob", title="Change from the unpatched run", cell_px=34, **game.board_style), key="site_delta", width="content", config=chart_config())
else:
    read_at = max(pos, n_game - 1)  # a patch changes nothing before its own position
    site_logits = PT.patched_logits(handle, base_t, source_t, PT.BLOCK_KINDS[comp], layer, pos, read_at=read_at)
    base_logits = pair[0][1 if denoising else 0, read_at].float().cpu()
    st.plotly_chart(next_token_change_figure(base_logits.softmax(-1).numpy(), site_logits.softmax(-1).numpy(), game.vocab, f"Next character at position {read_at + 1} ({token_labels[read_at]}): unpatched and patched run"), key="site_chars", config=chart_config())

diffed = PT.neuron_diff_dla(handle, clean_t, corrupted_t, tok, position=n_game - 1, pair=pair)
# Steer a unit at this site: a head of its layer, or one of the layer's neurons the change moves most.
layer_neurons = [int(i) for i in diffed[layer].abs().topk(min(5, diffed.shape[1])).indices]
units = [f"L{layer}H{h}" for h in range(handle.cfg.n_heads)] + [f"L{layer}N{n}" for n in layer_neurons]
session.linked_setting("pl_steer_unit", "steer_unit", units, units, "unit to steer (a head or listed neuron of the site's layer)", st.session_state.get("pl_steer_unit"))
if st.session_state.get("pl_steer_unit") not in units:
    st.session_state["pl_steer_unit"] = units[0] if PT.BLOCK_KINDS[comp] != "mlp_out" else units[handle.cfg.n_heads]
picked = st.selectbox(f"Unit to steer at this site (position {pos + 1})", units, key="pl_steer_unit", help="A head of this layer, or one of its neurons whose activation the changed move moves most (the table below).")
kind, number = picked[len(f"L{layer}"):][0], int(picked[len(f"L{layer}") + 1:])
steer.steering_panel(handle, steer.head_unit(layer, number) if kind == "H" else steer.neuron_unit(layer, number), "steer_site", state=base_state, at_position=pos)

# -- seed parity: diffed neurons; attribution patching -------------------------------------------
n1, n2 = st.columns(2)
with n1:
    st.markdown(f"**DLA of diffed neurons** on {target_text if token_view or not tail else repr(game.vocab[tok]) + ', its first character'}: (clean − corrupted activation) × direct effect")
    top = diffed.abs().reshape(-1).topk(min(12, diffed.numel())).indices
    d_mlp = diffed.shape[1]
    st.dataframe(pd.DataFrame([{"neuron": f"L{int(i) // d_mlp}N{int(i) % d_mlp}", "contribution": float(diffed.reshape(-1)[i])} for i in top]), hide_index=True, width="stretch")
with n2:
    if block is None:
        st.caption("Attribution against exact patching, site by site, appears here once the exact sweep has run.")
    elif normalised and what != "patched metric":
        st.plotly_chart(agreement_figure(score(block), score(approx), token_labels, "share of the difference"), key="agreement", config=chart_config())
    else:
        st.plotly_chart(agreement_figure(block, approx, token_labels), key="agreement", config=chart_config())
    if block is not None:
        st.caption("Attribution patching: two forwards and one backward for every site at once; a fast preview of the exact sweep.")

session.sync_url(
    {
        "change": str(index + 1),
        "instead": game.url_moves((replacement,)),
        "metric": metric_kind.replace(" ", "-"),
        **({"target_move": game.url_moves((target,))} if tail else {"target": target_name(target)}),
        **({"minus": target_name(other)} if metric_kind == "logit difference" else {}),
        "direction": "denoising" if denoising else "noising",
        "normalise": "1" if normalised else "0",
        "component": PT.BLOCK_KINDS[comp],
        "layer": str(layer),
        "position": str(pos + 1),
        **({"exact": "1"} if block is not None else {}),
        **({"steer_unit": st.session_state["pl_steer_unit"]} if st.session_state.get("steer_site_on") else {}),
        **steer.link_params("steer_site"),
    }
)
