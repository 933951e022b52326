"""One dashboard for any unit that fires on positions (an SAE feature, an MLP neuron) and the
search that finds units by the board property they track. Streamlit side; the data is a
``core.interp.shared.unit_index.FeatureIndex`` (``neurons.neuron_index`` builds one for neurons).

Both the SAE browser and the logit lens's neuron view draw their units here, so a neuron and a
feature are read the same way: how often and how strongly it fires, the distinct positions where it
fires most (boards at a readable size, the move just played and the matched square marked, the
moves on hover), samples from lower activation bands, and what it writes to the next-move logits.
"""

from __future__ import annotations

import re

import numpy as np
import streamlit as st

from ui import messages
from ui import session
from core.games.base import Game
from core.interp.sae import features as F
from core.interp.shared import unit_index
from core.viz.board import board_figure
from core.viz.lens import token_effects_figure
from core.viz.sae import activation_histogram, board_grid_figure
from ui.export import chart_config

HOVER_MOVES = 16  # the last moves of a game shown on an example board's hover


def moves_hover(game: Game, moves: tuple[int, ...]) -> str:
    """The last moves of an example's game, eight to a line, for the hover of its board."""
    labels = [game.move_label(m) for m in moves[-HOVER_MOVES:]]
    lines = [" ".join(labels[i : i + 8]) for i in range(0, len(labels), 8)]
    return f"after move {len(moves)}: " + ("… " if len(moves) > HOVER_MOVES else "") + "<br>".join(lines)


@st.cache_resource(show_spinner=False, max_entries=64)
def example_boards(fingerprint: str, unit: int, matched: int | None, style: dict, _index: unit_index.FeatureIndex, _game: Game):
    """A unit's top and band examples and their board grids, once per unit: a move on the page
    leaves them as they are. Kept as objects (``cache_resource``, read-only), not pickled: a
    cache hit that unpickles a figure re-validates it, which cost ~90 ms a run."""
    examples = unit_index.top_examples(_index, unit, k=21)

    def grid(chosen: list[unit_index.Example], cols: int, cell_px: int = 17):
        return board_grid_figure(
            [e.board for e in chosen], [e.last_move for e in chosen], [f"{e.value:.2f} · move {e.move + 1}" for e in chosen], cols=cols, cell_px=cell_px,
            matched=matched, hover=[moves_hover(_game, e.moves) for e in chosen], **style,
        )

    contexts = [_game.token_context(_index.games[e.game], e.move) for e in examples]
    # The bands share one figure, a row each (one plotly figure draws in the browser in a fraction
    # of the time three do: opening a unit re-draws every figure of its dashboard).
    bands = [(band.split(" ")[0], e) for band, chosen in unit_index.quantile_examples(_index, unit) for e in chosen]
    band_grid = board_grid_figure(
        [e.board for _, e in bands], [e.last_move for _, e in bands], [f"{band}: {e.value:.2f}" for band, e in bands], cols=4, cell_px=15,
        matched=matched, hover=[moves_hover(_game, e.moves) for _, e in bands], **style,
    ) if bands else None
    return examples, grid(examples, 7, 15), band_grid, contexts


@st.cache_data(show_spinner=False, max_entries=256)
def label_check(fingerprint: str, unit: int, _index: unit_index.FeatureIndex, _game: Game) -> str:
    """What the unit's best-matching property says about its top examples, once per unit (the
    examples' games are replayed to read the property there)."""
    prop = int(_index.best_property[unit])
    examples = unit_index.top_examples(_index, unit, k=21)
    hits, classes = unit_index.property_in_examples(_index, _game, examples, prop)
    others = f" That square holds: {', '.join(f'{n} ({c})' for n, c in classes)}." if len(classes) > 1 else ""
    return f"{_index.property_names[prop]} holds at {hits} of the {len(examples)} positions below where it fires most.{others}"


def matched_square(index: unit_index.FeatureIndex, unit: int, game: Game) -> int | None:
    """The square named by the unit's best-matching property (``mine d3`` -> d3), if any."""
    if index.best_property[unit] < 0:
        return None
    found = re.findall(r"\b([a-z][0-9]{1,2})\b", index.property_names[index.best_property[unit]])
    square_of = {game.square_label(q): q for q in range(game.n_squares)}
    return square_of.get(found[-1]) if found else None


def example_properties(names: list[str], k: int = 3) -> list[str]:
    """A few property names to show how a query reads: one near the middle of the board for each
    of the kinds people ask about first."""
    by_kind: dict[str, list[str]] = {}
    for name in names:
        by_kind.setdefault(name.rsplit(" ", 1)[0], []).append(name)
    kinds = [k for k in ("mine", "legal", "flipped", "white knight", "legal destination", "black pawn") if k in by_kind]
    return [by_kind[kind][min(len(by_kind[kind]) - 1, 19 * len(by_kind[kind]) // 64)] for kind in kinds][:k] or names[:k]


def unit_search(index: unit_index.FeatureIndex, unit_word: str, key: str, on_pick, unit_name=None) -> None:
    """"Which units track …": a board property in words, the units with the best F1 for it as
    buttons (``on_pick(unit)`` opens one) named by ``unit_name(unit)`` (default "feature 12")."""
    unit_name = unit_name or (lambda unit: f"{unit_word} {unit}")
    examples = example_properties(index.property_names)
    query = st.text_input(
        f"Which {unit_word}s track a board property?", key=key, placeholder="e.g. " + ", ".join(examples),
        help=f"A property ({', '.join(examples)}, …) or words in it (a square such as d3: every property of that square). {unit_word.capitalize()}s are ranked by their best F1 for it, as in the table of board-game metrics.",
    )
    if not query.strip():
        return
    found, n_props = unit_index.search_units(index, query[:200], k=8)
    if not n_props:
        st.caption(f"No board property matches {messages.plain(query, 60)}. Properties read like: {', '.join(examples)}.")
        return
    if not found:
        st.caption(f"No {unit_word} of this set fires with those {n_props} properties.")
        return
    st.caption(f"Best {unit_word}s for {n_props} matching propert{'y' if n_props == 1 else 'ies'} (F1 of 'fires above t × max' as a predictor):")
    cols = st.columns(3)  # three to a row: the label's F1 stays in sight
    for i, (unit, prop, f1) in enumerate(found):
        cols[i % 3].button(f"{unit_name(unit)} · {prop} · F1 {f1:.2f}", key=f"{key}_{unit}", on_click=on_pick, args=(unit,), width="stretch", help=f"{unit_name(unit)}: best F1 {f1:.2f} for {prop}")


def unit_dashboard(index: unit_index.FeatureIndex, unit: int, game: Game, *, name: str, effects: np.ndarray, effects_title: str, effects_note: str, key: str):
    """Everything about one unit; returns the left column (under the histogram), where a page
    adds what only its kind of unit has (an SAE's nearest features)."""
    positions, values = index.activations(unit)
    prop = index.best_property[unit]
    st.markdown(
        f"**{name}** fires on {len(values):,} of {index.n_positions:,} positions ({len(values) / max(index.n_positions, 1):.2%}) of {len(index.games)} held-out games; "
        + (f"max {values[0]:.2f}; best-matching board property **{index.property_names[prop]}** (F1 {index.best_f1[unit]:.2f})." if len(values) else "it never fires on these games (dead).")
    )
    if not len(values):
        return st.container()
    if prop >= 0:
        st.caption(label_check(index.fingerprint, unit, _index=index, _game=game))
    left, right = st.columns([2, 3])
    left.plotly_chart(activation_histogram(values, index.n_positions, name), key=f"{key}_hist", config=chart_config())
    if len(effects) == game.n_squares:
        lim = float(np.abs(effects).max()) or 1.0
        right.plotly_chart(
            board_figure(np.zeros((game.rows, game.cols), dtype=np.int8), effects, value_name="logit effect", colorscale="RdBu", zmin=-lim, zmax=lim, title=effects_title, cell_px=30, rank1_bottom=game.board_style.get("rank1_bottom", False)),
            key=f"{key}_effects", width="content", config=chart_config(),
        )
        up, down = F.extreme_squares(effects, game)
    else:  # one value per token: the tokens are not squares (PGN characters)
        right.plotly_chart(token_effects_figure(effects, game.vocab, effects_title), key=f"{key}_effects", config=chart_config())
        order = np.argsort(effects)
        up = [(repr(game.vocab[t]), float(effects[t])) for t in order[::-1][:4]]
        down = [(repr(game.vocab[t]), float(effects[t])) for t in order[:4]]
    right.caption("Promotes " + ", ".join(f"{s} {v:+.2f}" for s, v in up) + "; suppresses " + ", ".join(f"{s} {v:+.2f}" for s, v in down) + f" ({effects_note}; blue up, red down, as every diverging scale here).")

    matched = matched_square(index, unit, game)
    examples, top_figure, band_figure, contexts = example_boards(index.fingerprint, unit, matched, game.board_style, _index=index, _game=game)
    st.markdown(
        "**Top-activating positions**, each position once (amber: the move just played"
        + ("; its player is 'mine' in the mine / theirs properties" if game.square_moves else "")
        + "; hover a board for the moves that led there"
        + (f"; purple: {game.square_label(matched)}, the square of the best-matching property" if matched is not None else "") + ")"
    )
    st.plotly_chart(top_figure, key=f"{key}_top", config=chart_config())
    if any(c is not None for c in contexts):
        with st.expander(f"The text around each top example (in brackets, the character it fires on: one of {game.read_positions})", expanded=True):
            st.code("\n".join(
                f"#{i + 1:<2} {e.value:6.2f}  {('' if c[0].startswith(';') else '…') + c[0]:>25}[{c[1]}]{c[2]}…" for i, (e, c) in enumerate(zip(examples, contexts)) if c is not None
            ), language=None)
    if band_figure is not None:
        st.markdown("**Samples below the top**: random positions from each third of the maximum activation (title: the band, then the activation)")
        st.plotly_chart(band_figure, key=f"{key}_bands", config=chart_config())
    o1, o2 = st.columns([3, 1])
    pick = o1.selectbox("Open a top example as the shared game", range(len(examples)), key=f"{key}_open", format_func=lambda i: f"#{i + 1}: activation {examples[i].value:.2f}, after move {examples[i].move + 1}")
    o2.button("Open in every page", key=f"{key}_open_button", on_click=session.set_moves, args=(examples[pick].moves,), width="stretch")
    return left
