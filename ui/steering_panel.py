"""The steering panel: one control for every unit a page opens (an SAE feature, an MLP neuron, an
attention head). Turn it on, pick what to do to the unit and where, and see the next move (or
token) before and after, side by side on one scale, with a verdict against a random unit of the
same kind; optionally a strength sweep of both in one batched forward. Streamlit side; the
computation is ``core.interp.steering``.

Link parameters (read once per session, by the first panel shown): ``steer=<operation>:<value>``
(e.g. ``clamp:2``), ``steer_from=<p>`` (every position from move or token ``p`` on; absent: this
position only), ``sweep=1``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd
import streamlit as st
import torch

from core.interp.shared.token_squares import legal_tokens_now
from core.interp.steering import edits as E
from core.interp.steering import outcome as O
from core.interp.steering.sweep import STRENGTHS, active_features, batched_next, output_norm, random_unit, strength_sweep
from core.interp.steering.verdict import describe, nats
from core.models.handle import ModelHandle
from core.viz.board import board_figure
from core.viz.steering import sweep_figure
from ui import messages
from ui.export import chart_config

OPERATION_NAMES = {
    "zero": "Ablate (set to 0)",
    "mean": "Ablate to its mean",
    "clamp": "Clamp to × its max activation",
    "scale": "Scale by a factor",
    "add": "Add its direction × its max activation × strength",
}
HEAD_OPERATIONS = ("zero", "mean", "scale")
DEFAULT_VALUE = {"zero": 0.0, "mean": 0.0, "clamp": 2.0, "scale": 2.0, "add": 2.0}
WHERE = ("this position", "from position p on")
MEAN_GAMES = 64
LINK_SEEN = "_steer_link_read"


@dataclass
class SteerUnit:
    """A unit as a page opens it: what the core edits, its name on screen, and what the panel
    needs to scale and control its edits."""

    unit: E.Unit
    name: str  # "feature 142", "L5N721", "L1H3"
    kind: str  # "feature", "neuron", "head"
    key: str  # identifies the unit in caches ("sae-name/142", "L5N721")
    max_activation: float | None = None  # over the corpus: clamp and add are in units of it
    control_max: np.ndarray | None = None  # every unit's max activation, by index: the control's own units
    candidates: list[int] | None = None  # where the control is drawn from (live features)
    mean_games: np.ndarray | None = None  # board games: the games a mean ablation averages over
    mean_tokens: torch.Tensor | None = None  # text: the windows it averages over


def feature_unit(sae, hook: str, sae_name: str, feature: int, index=None, windows: torch.Tensor | None = None) -> SteerUnit:
    """An SAE feature, scaled and controlled by its index (``index``: a board game's FeatureIndex
    or a text model's TokenIndex, None where there is none)."""
    max_act = float(index.max_activation[feature]) if index is not None else 0.0
    return SteerUnit(
        E.Feature(sae, hook, int(feature)), f"feature {feature}", "feature", f"{sae_name}/{feature}", max_activation=max_act if max_act > 0 else None,
        control_max=None if index is None else index.max_activation, candidates=None if index is None else np.flatnonzero(index.density > 0).tolist(),
        mean_games=getattr(index, "games", None), mean_tokens=windows,
    )


def neuron_unit(layer: int, neuron: int, index=None, windows: torch.Tensor | None = None) -> SteerUnit:
    """An MLP neuron, scaled by its layer's neuron index where there is one."""
    max_act = float(index.max_activation[neuron]) if index is not None else 0.0
    return SteerUnit(E.Neuron(int(layer), int(neuron)), f"L{layer}N{neuron}", "neuron", f"L{layer}N{neuron}", max_activation=max_act if max_act > 0 else None,
                     control_max=None if index is None else index.max_activation, mean_games=getattr(index, "games", None), mean_tokens=windows)


def head_unit(layer: int, head: int, windows: torch.Tensor | None = None) -> SteerUnit:
    """An attention head (its output ``hook_z``): ablated or scaled."""
    return SteerUnit(E.Head(int(layer), int(head)), f"L{layer}H{head}", "head", f"L{layer}H{head}", mean_tokens=windows)


def token_name(handle: ModelHandle, token: int) -> str:
    """A next token as people read it: a square (Othello, UCI chess), a character, a text token."""
    if handle.kind == "text":
        return repr(handle.tokenizer.decode([token]))
    square = int(handle.game.token_square()[token])
    return handle.game.square_label(square) if square >= 0 else repr(handle.game.vocab[token])


def _read_link(key: str, operations: tuple[str, ...]) -> None:
    """Set the panel's widgets from the link once per session; a bad value is said, not used."""
    if st.session_state.get(LINK_SEEN):
        return
    st.session_state[LINK_SEEN] = True
    params = st.query_params
    if "steer" in params:
        op, _, value = params["steer"].partition(":")
        try:
            number = float(value) if value else DEFAULT_VALUE.get(op, 0.0)
        except ValueError:
            number = float("nan")
        if op not in operations:
            messages.flash("error", f"steer={params['steer']!r} in the link: the operation must be one of {', '.join(operations)} here; the panel starts off.")
        elif not math.isfinite(number) or abs(number) > 1e6:
            messages.flash("error", f"steer={params['steer']!r} in the link: the value must be a finite number of size at most 1e6; the panel starts off.")
        else:
            st.session_state.update({f"{key}_on": True, f"{key}_op": op, f"{key}_value": number})
    if "steer_from" in params:
        text = params["steer_from"]
        if text.isdigit() and 1 <= int(text) <= 100_000:
            st.session_state.update({f"{key}_where": WHERE[1], f"{key}_from": int(text)})
        else:
            messages.flash("error", f"steer_from={text!r} in the link: a position from 1 on; the edit stays at this position.")
    if params.get("sweep") == "1":
        st.session_state[f"{key}_sweep"] = True


@st.cache_resource(show_spinner="Averaging the unit over the corpus…", max_entries=64)
def _mean(model: str, unit_key: str, _handle: ModelHandle, _target: SteerUnit):
    if _target.mean_tokens is not None:
        return E.unit_mean(_handle, _target.unit, tokens=_target.mean_tokens)
    if _handle.kind == "text":
        raise ValueError("this model has no held-out text to average the unit over: zero or scale it instead")
    games = _target.mean_games if _target.mean_games is not None else _handle.game.random_games(MEAN_GAMES, seed=0)
    return E.unit_mean(_handle, _target.unit, games[:MEAN_GAMES])


def _absolute(target: SteerUnit, op: str, strength: float) -> float:
    """Clamp and add are set in units of the unit's maximum activation (1 where none is known)."""
    return strength * (target.max_activation or 1.0) if op in ("clamp", "add") else strength


def _edit(handle: ModelHandle, target: SteerUnit, op: str, strength: float, at: int | None, start: int | None) -> E.Edit:
    value = _mean(handle.name, target.key, handle, target) if op == "mean" else _absolute(target, op, strength)
    return E.Edit(target.unit, op, value, from_position=start, at=at)


@st.cache_resource(show_spinner=False, max_entries=64)
def active_here(model: str, sae_key: str, tokens: tuple[int, ...], position: int, _handle: ModelHandle, _sae, _hook: str) -> np.ndarray:
    """The SAE's features active at ``position`` of ``tokens``, strongest first, once per position."""
    return active_features(_handle, torch.tensor(tokens), _sae, _hook, position)


def _control(handle: ModelHandle, target: SteerUnit, edit: E.Edit, strength: float, tokens: torch.Tensor) -> tuple[E.Edit, str, float]:
    """The same edit of a random unit of the same kind: clamp in its own maximum's units, add with
    the same norm in the stream, zero / mean / scale as they are. Returns (edit, name, the
    factor that turns a strength into its value)."""
    candidates = target.candidates
    if isinstance(target.unit, E.Feature) and edit.operation in ("zero", "mean", "scale"):
        # An ablation's control is another feature active here: one that is not changes nothing.
        position = edit.at if edit.at is not None else -1
        active = active_here(handle.name, target.key.rsplit("/", 1)[0], tuple(int(t) for t in tokens), position, _handle=handle, _sae=target.unit.sae, _hook=target.unit.hook)
        active = [int(f) for f in active]
        candidates = [f for f in active if f != target.unit.index] or candidates
    other = random_unit(handle, target.unit, seed=target.unit.index, candidates=candidates)  # one control per unit, the same on every run
    index = other.index
    name = f"random {target.kind} {('L%dH%d' % (other.layer, index)) if target.kind == 'head' else ('L%dN%d' % (other.layer, index)) if target.kind == 'neuron' else index}"
    factor = 1.0
    if edit.operation == "clamp":
        own = float(target.control_max[index]) if target.control_max is not None and index < len(target.control_max) else 0.0
        factor = own if own > 0 else target.max_activation or 1.0
    elif edit.operation == "add":
        factor = (target.max_activation or 1.0) * output_norm(handle, target.unit) / max(output_norm(handle, other), 1e-12)
    value = edit.value if edit.operation in ("zero", "mean") else strength * factor
    if edit.operation == "mean":
        control_target = SteerUnit(other, name, target.kind, f"{target.key}/control{index}", mean_games=target.mean_games, mean_tokens=target.mean_tokens)
        value = _mean(handle.name, control_target.key, handle, control_target)
    return E.Edit(other, edit.operation, value, from_position=edit.from_position, at=edit.at), name, factor


@st.cache_resource(show_spinner=False, max_entries=64)
def _unedited(model: str, moves: tuple[int, ...], rows_hooked: bool, _handle: ModelHandle, _state) -> O.Unedited:
    """A position's unedited predictions, once per position: every edit of it compares with them."""
    return O.unedited(_handle, _state, rows_hooked)


def _control_kl(handle: ModelHandle, tokens: torch.Tensor, control: E.Edit) -> float:
    """The control's KL on the very next token: one batch of two short rows (unedited, edited)."""
    probs = batched_next(handle, tokens, 2, [replace(control, rows=(1, 2))])
    return O.kl_divergence(probs[0], probs[1])


def _settings(handle: ModelHandle, target: SteerUnit, key: str, n_positions: int, position_word: str, here: str | None = None):
    """The panel's controls; None while it is off."""
    operations = HEAD_OPERATIONS if target.kind == "head" else tuple(OPERATION_NAMES)
    _read_link(key, operations)
    messages.show_messages()
    if not st.toggle(f"Steer or ablate {target.name}", key=f"{key}_on", help="Change this unit while the model reads the current position, and see what it then predicts."):
        return None
    if st.session_state.get(f"{key}_op") not in operations:
        st.session_state[f"{key}_op"] = operations[0]
    c1, c2, c3, c4 = st.columns([3, 2, 3, 2])
    op = c1.selectbox("Edit", operations, key=f"{key}_op", format_func=OPERATION_NAMES.get)
    if f"{key}_value" not in st.session_state:
        st.session_state[f"{key}_value"] = DEFAULT_VALUE[op]
    strength = float(c2.number_input("Strength" if op != "scale" else "Factor", min_value=-1e6, max_value=1e6, key=f"{key}_value", disabled=op in ("zero", "mean"), step=0.5,
                                     help="Clamp and add: in units of the unit's maximum activation over the corpus. Scale: 0 ablates, 1 changes nothing."))
    where = c3.radio("Where", WHERE, key=f"{key}_where", horizontal=True, format_func=lambda w: (here or w.replace("position", position_word)) if w == WHERE[0] else w.replace("position", position_word))
    start = None
    if where == WHERE[1]:
        if st.session_state.get(f"{key}_from", 1) > n_positions:
            st.session_state[f"{key}_from"] = n_positions
        start = int(c4.number_input(f"p ({position_word})", 1, max(n_positions, 1), key=f"{key}_from"))
    sweep = st.toggle("Strength sweep with its random control (one batched forward)", key=f"{key}_sweep")
    return op, strength, start, sweep


def link_params(key: str) -> dict[str, str]:
    """The panel's settings as link parameters (empty while it is off)."""
    if not st.session_state.get(f"{key}_on"):
        return {}
    op = st.session_state.get(f"{key}_op", "zero")
    out = {"steer": f"{op}:{st.session_state.get(f'{key}_value', 0.0):g}" if op not in ("zero", "mean") else op}
    if st.session_state.get(f"{key}_where") == WHERE[1]:
        out["steer_from"] = str(st.session_state.get(f"{key}_from", 1))
    if st.session_state.get(f"{key}_sweep"):
        out["sweep"] = "1"
    return out


def _edit_words(target: SteerUnit, op: str, strength: float, start: int | None, position_word: str) -> str:
    what = {"zero": f"Ablating {target.name} (to 0)", "mean": f"Ablating {target.name} to its mean", "clamp": f"Clamping {target.name} to {strength:g}× its max activation",
            "scale": f"Scaling {target.name} by {strength:g}", "add": f"Adding {target.name}'s direction × {strength:g}× its max activation"}[op]
    return what + (f" from {position_word} {start} on" if start else f" at this {position_word}")


def _sweep_strengths(op: str, strength: float) -> tuple[str, np.ndarray]:
    """What the sweep varies: clamp and add up to twice the strength set (to 4 where it is 0);
    scale from 0 to twice the factor; an ablation sweeps the scale from 0 (ablated) to 2."""
    if op in ("clamp", "add"):
        top = 2 * strength if strength else 4.0
        return op, np.linspace(0.0, top, STRENGTHS)
    return "scale", np.linspace(0.0, max(2.0, 2 * strength if op == "scale" else 2.0), STRENGTHS)


def _sweep(handle, target, tokens, edit, op, strength, legal, chosen, start, at) -> None:
    sweep_op, strengths = _sweep_strengths(op, strength)
    template = E.Edit(target.unit, sweep_op, 0.0, from_position=None if at is not None else edit.from_position, at=at)
    control, control_name, factor = _control(handle, target, E.Edit(target.unit, sweep_op, 0.0, from_position=template.from_position, at=at), 1.0, tokens)
    scale = (target.max_activation or 1.0) if sweep_op in ("clamp", "add") else 1.0
    sw = strength_sweep(handle, tokens, template, control, strengths * scale, strengths * (factor if sweep_op != "scale" else 1.0), legal=legal, chosen=chosen, control_name=control_name)
    panels = [(f"P({token_name(handle, sw.top_token)}), top before", sw.p_top, True), (f"P({token_name(handle, sw.chosen_token)}), top with the edit", sw.p_chosen, True)]
    if sw.illegal is not None:
        panels.append(("illegal mass", sw.illegal, True))
    panels.append(("KL (nats)", sw.kl, False))
    unit_strength = {"clamp": "× max activation", "add": "× max activation", "scale": "factor"}[sweep_op]
    st.plotly_chart(sweep_figure(strengths, panels, target.name, control_name, f"{sweep_op} ({unit_strength})", current=strength if sweep_op == op else None), key=f"steer_sweep_{target.key}", config=chart_config("steering-sweep"))
    st.caption(f"{STRENGTHS} strengths of {target.name} and of {control_name} (dashed; {'its own max activation' if sweep_op == 'clamp' else 'the same norm in the stream' if sweep_op == 'add' else 'the same factor'}), "
               f"all in one batched forward; read at the next token ({'a move is one token' if handle.kind != 'text' and handle.game.square_moves else 'the first token of the next move' if handle.kind != 'text' else 'after the prompt'}).")


def steering_panel(handle: ModelHandle, target: SteerUnit, key: str, state=None, tokens: torch.Tensor | None = None, at_position: int | None = None) -> None:
    """The panel for ``target`` at the page's current position: a board game's ``state``, or a
    text model's ``tokens (pos,)``. "This position" is the last token, or ``at_position`` (a
    token position: the patching lab's site)."""
    board = handle.kind != "text"
    game = handle.game if board else None
    if board:
        if not state.moves or state.is_over:
            st.toggle(f"Steer or ablate {target.name}", key=f"{key}_on", disabled=True, help="Play a move first" if not state.moves else "The game is over")
            return
        tokens = torch.from_numpy(game.game_tokens(state.moves).astype(np.int64))
        n_positions, position_word = len(state.moves), "move"
    else:
        n_positions, position_word = len(tokens), "token"
    here = None if at_position is None else f"the site's position ({min(max(at_position, 0), len(tokens) - 1) + 1})"
    settings = _settings(handle, target, key, n_positions, position_word, here)
    if settings is None:
        return
    op, strength, start, sweep = settings
    length = len(tokens)
    at = (length - 1 if at_position is None else min(max(at_position, 0), length - 1)) if start is None else None
    from_position = None
    if start is not None:
        from_position = len(game.game_tokens(state.moves[: start - 1])) if board else start - 1
        from_position = min(max(from_position, 0), length - 1)
    try:
        edit = _edit(handle, target, op, strength, at, from_position)
        control, control_name, _ = _control(handle, target, edit, strength, tokens)
        if board:
            result = O.steer_position(handle, state, [edit], before=_unedited(handle.name, state.moves, O.rows_hooked([edit]), _handle=handle, _state=state))
        else:
            result = O.steer_text(handle, tokens, [edit])
        control_kl = _control_kl(handle, tokens, control)
    except (E.EditError, ValueError) as exc:
        messages.error(f"This edit cannot run: {exc}")
        return
    words = _edit_words(target, op, strength, start, position_word if at_position is None or at is None else f"position ({at + 1})")
    if board:
        _board_view(handle, state, result, key)
        p = {r.move: r for r in result.rows}
        text = describe(words, "move", (result.move_before, p[result.move_before].before if result.move_before in p else None, result.move_before_legal),
                        (result.move_after, p[result.move_after].after if result.move_after in p else None, result.move_after_legal), result.kl, control_kl, control_name,
                        (result.illegal_before, result.illegal_after))
        st.info(text)
        legal = legal_tokens_now(state.moves, game)
        # The sweep follows the token the model puts first with the edit as set.
        chosen = int(np.argmax(result.after.next_token)) if result.after.next_token is not None else game.square_token(int(result.after.top1))
    else:
        _text_view(handle, result)
        top_b, top_a = int(np.argmax(result.probs_before)), int(np.argmax(result.probs_after))
        decode = lambda t: handle.tokenizer.decode([t])  # noqa: E731
        st.info(describe(words, "token", (decode(top_b), float(result.probs_before[top_b]), None), (decode(top_a), float(result.probs_after[top_a]), None), result.kl, control_kl, control_name))
        legal, chosen = None, top_a
    if sweep:
        _sweep(handle, target, tokens, edit, op, strength, legal, chosen, from_position, at)


def _board_view(handle: ModelHandle, state, result: O.BoardOutcome, key: str) -> None:
    game = handle.game
    legal = np.asarray(state.legal).reshape(-1)
    zmax = float(max(result.before.probs.max(), result.after.probs.max(), 1e-6))
    c1, c2 = st.columns(2)
    what = "next move" if game.square_moves else "the square the next move starts from"
    for column, pred, title in ((c1, result.before, "Before"), (c2, result.after, "After the edit")):
        column.plotly_chart(
            board_figure(state.board, pred.probs, legal=legal if game.square_moves else None, outline=int(pred.top1) if pred.top1 >= 0 else None, zmax=zmax, title=f"{title}: {what}", cell_px=30, **game.board_style),
            key=f"{key}_{title[:5]}", width="content", config=chart_config(f"steering-{title[:5].lower()}"),
        )
    m1, m2, m3 = st.columns(3)
    m1.metric("Move", result.move_after or "none", delta=None if result.move_after == result.move_before else f"was {result.move_before or 'none'}", delta_color="off", delta_arrow="off")
    m2.metric("Illegal probability", f"{result.illegal_after:.1%}", delta=f"{result.illegal_after - result.illegal_before:+.1%}", delta_color="inverse")
    m3.metric("KL(before ‖ after)", f"{nats(result.kl)} nats")
    if not game.square_moves:
        how = "writes greedily, character by character to the space, with the edit in place" if game.move_end_token is not None else "scores highest (the product of its tokens' probabilities)"
        st.caption(f"The move the model {how}: {result.move_before or 'none'} ({'legal' if result.move_before_legal else 'illegal'}) before, "
                   f"{result.move_after or 'none'} ({'legal' if result.move_after_legal else 'illegal'}, as python-chess judges it) after.")
    table = pd.DataFrame([{"move": r.move, "before": r.before, "after": r.after, "change": r.change, "legal": "✓" if r.legal else "✗"} for r in result.rows])
    st.dataframe(table, hide_index=True, width="stretch", height=35 * (len(table) + 1) + 3, column_config={c: st.column_config.NumberColumn(format="percent") for c in ("before", "after", "change")})
    st.caption("The top moves before and after, by the larger of the two probabilities; boards on one colour scale, legal moves dotted, the likeliest square framed.")


def _text_view(handle: ModelHandle, result: O.TextOutcome) -> None:
    decode = lambda ids: handle.tokenizer.decode(list(ids))  # noqa: E731
    rows = [{"token": repr(decode([t])), "before": b, "after": a, "change": a - b} for t, b, a in result.top()]
    c1, c2 = st.columns([2, 3])
    c1.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch", height=35 * (len(rows) + 1) + 3, column_config={c: st.column_config.NumberColumn(format="percent") for c in ("before", "after", "change")})
    with c2:
        st.metric("KL(before ‖ after)", f"{nats(result.kl)} nats")
        st.markdown(f"**Greedy continuation, {O.CONTINUATION_TOKENS} tokens**")
        st.text("Without the edit:\n" + decode(result.continuation_before) + "\n\nWith the edit:\n" + decode(result.continuation_after))
