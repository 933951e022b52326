"""Plotly boards: squares coloured by a value, pieces, legal moves and highlights.

Boards are scatter traces of square markers, never heatmaps: Streamlit returns click selections for
scatter points only (DESIGN.md §6). Every trace carries ``customdata`` = square index, so a click on
a square, a piece or a marker all name the square.
"""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go

from core.games.base import grid_label
from core.viz.chess_pieces import piece_shapes
from core.viz.fast import figure

CELL_PX = 46
DISC_NAMES = {1: "black", -1: "white", 0: "empty"}


square_label = grid_label


def _grid(size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    squares = np.arange(size * size)
    rows, cols = np.divmod(squares, size)
    return squares, cols, rows


def board_figure(
    board: np.ndarray,
    values: np.ndarray | None = None,
    *,
    legal: np.ndarray | None = None,
    outline: int | None = None,
    outline_color: str = "#d62728",
    last_move: int | None = None,
    value_name: str = "probability",
    colorscale: str = "Blues",
    zmin: float = 0.0,
    zmax: float | None = None,
    title: str | None = None,
    cell_px: int = CELL_PX,
    show_scale: bool = True,
    errors: np.ndarray | None = None,
    piece_opacity: np.ndarray | None = None,
    pieces: str = "discs",
    rank1_bottom: bool = False,
    piece_names: dict[int, str] | None = None,
    picked: int | None = None,
) -> go.Figure:
    """A board figure.

    ``board``: int8 (size, size), +1 black / -1 white / 0 empty. ``values``: float (size*size,)
    shown as square colours (e.g. next-move probabilities). ``legal``: bool (size*size,) marked
    with dots. ``outline``: a square drawn with a thick frame (e.g. the model's top-1).
    ``errors``: bool (size*size,) squares crossed out in red (e.g. where a probe is wrong).
    ``piece_opacity``: float (size*size,) per-piece opacity (e.g. a probe's confidence).
    ``pieces``: ``"discs"`` (Othello: +1 black, -1 white) or ``"chess"`` (signed piece types,
    drawn as outlines); ``rank1_bottom`` draws row 0 at the bottom (chess); ``piece_names`` names
    board values in the hover text; ``picked``: a square ringed as the chosen piece. ``last_move``
    may be one square or several (a chess move's from and to squares).
    """
    size = board.shape[0]
    squares, cols, rows = _grid(size)
    flat = board.reshape(-1)
    labels = [square_label(int(s), size) for s in squares]
    legal = np.zeros(size * size, dtype=bool) if legal is None else np.asarray(legal, dtype=bool)
    names = piece_names or DISC_NAMES
    hover = [
        f"<b>{labels[s]}</b> · {names.get(int(flat[s]), 'empty')}" + (" · legal" if legal[s] else "")
        + (f"<br>{value_name}: {values[s]:.3f}" if values is not None else "")
        for s in squares
    ]

    def points(at, marker: dict, extra_hover: str = "", **trace) -> dict:
        """A scatter of square markers at the squares ``at`` (a mask or a list of squares)."""
        at = np.flatnonzero(at) if np.asarray(at).dtype == bool else np.asarray(at, dtype=int)
        return dict(
            type="scatter", x=cols[at], y=rows[at], mode="markers", customdata=squares[at], hovertext=[hover[s] + extra_hover for s in at],
            hoverinfo="text", marker=marker, showlegend=False, **trace,
        )

    data = []
    everywhere = np.ones(size * size, dtype=bool)
    if values is not None:
        zmax = float(np.nanmax(values)) if zmax is None else zmax
        marker = dict(
            symbol="square", size=cell_px - 3, color=np.asarray(values, dtype=float), colorscale=colorscale,
            cmin=zmin, cmax=max(zmax, zmin + 1e-6), line=dict(width=0),
            showscale=show_scale, colorbar=dict(title=dict(text=value_name, side="right"), thickness=12, len=0.9),
        )
    elif pieces == "chess":
        light = (rows + cols) % 2 == 1
        marker = dict(symbol="square", size=cell_px - 1, color=np.where(light, "#ebd8b7", "#b58863").tolist(), line=dict(width=0))
    else:
        marker = dict(symbol="square", size=cell_px - 3, color="#2e8b57", line=dict(width=0))
    data.append(points(everywhere, marker, name="squares"))
    for colour, value, edge in (("#111111", 1, "#444444"), ("#fafafa", -1, "#777777")) if pieces == "discs" else ():
        at = flat == value
        if at.any():
            opacity = None if piece_opacity is None else np.clip(np.asarray(piece_opacity)[at], 0.15, 1.0)
            data.append(points(at, dict(symbol="circle", size=cell_px * 0.62, color=colour, line=dict(color=edge, width=1.5), **({} if opacity is None else {"opacity": opacity}))))
    if legal.any():
        data.append(points(legal, dict(symbol="circle-open", size=cell_px * 0.3, color="#ff7f0e", line=dict(width=2.5)), name="legal"))
    last = () if last_move is None else (last_move,) if np.isscalar(last_move) else tuple(last_move)
    frames = [(sq, "#ffbf00", 3) for sq in last] + [(outline, outline_color, 4), (picked, "#9467bd", 4)]
    for square, colour, width in frames:
        if square is not None and 0 <= square < size * size:
            data.append(points([square], dict(symbol="square-open", size=cell_px - 4, color=colour, line=dict(width=width))))
    if errors is not None and np.any(errors):
        data.append(points(np.asarray(errors, dtype=bool), dict(symbol="x-thin", size=cell_px * 0.5, color="#d62728", line=dict(width=3, color="#d62728")), "<br>probe is wrong here"))
    axis = dict(showgrid=False, zeroline=False, fixedrange=True, tickmode="array", tickvals=list(range(size)))
    y_range = [-0.5, size - 0.5] if rank1_bottom else [size - 0.5, -0.5]
    width = cell_px * size + (120 if values is not None and show_scale else 50)
    layout = dict(
        # Column letters sit on top of an Othello board: a title needs room above them.
        width=width, height=cell_px * size + (80 if title else 50) + (18 if title and not rank1_bottom else 0),
        margin=dict(l=30, r=10, t=(58 if not rank1_bottom else 40) if title else 10, b=10),
        xaxis=dict(axis, ticktext=[chr(ord("a") + c) for c in range(size)], side="bottom" if rank1_bottom else "top", range=[-0.5, size - 0.5]),
        yaxis=dict(axis, ticktext=[str(r + 1) for r in range(size)], scaleanchor="x", range=y_range, **({} if rank1_bottom else {"autorange": "reversed"})),
        plot_bgcolor=("#1f5f3f" if pieces == "discs" else "#7a5c3e") if values is None else "#dddddd", dragmode=False, clickmode="event+select", hovermode="closest",
    )
    if title:
        layout["title"] = dict(text=title, x=0.02, font=dict(size=14))
    if pieces == "chess":
        layout["shapes"] = piece_shapes(board, rank1_bottom, piece_opacity)
    return figure(data, layout)


def percent_format(values) -> str:
    """A percent tick format with the decimals the data needs: on an axis up to 0.4 %, or one that
    spans 64 %–65 %, ".0%" labels every tick alike ("0%", or "65%")."""
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    if not len(v):
        return ".0%"
    top, span = float(np.abs(v).max()), float(v.max() - v.min())
    scale = min(top, span) if span > 0 else top
    return ".0%" if scale >= 0.1 else ".1%" if scale >= 0.01 else ".2%" if scale >= 0.001 else ".3%"


def history_figure(top1_legal: np.ndarray, illegal_mass: np.ndarray, moves: list[str], top1: list[str]) -> go.Figure:
    """Per move played: illegal probability mass (bars) and whether the top-1 move was legal."""
    x = np.arange(1, len(moves) + 1)
    ok = top1_legal == 1.0
    bad = top1_legal == 0.0
    hover = [f"after move {i} ({m}): top-1 {t}" for i, m, t in zip(x, moves, top1)]
    fig = go.Figure()
    fig.add_trace(go.Bar(x=x, y=illegal_mass, name="illegal probability mass", marker_color="#9ecae1", hovertext=hover))
    fig.add_trace(go.Scatter(x=x[ok], y=np.zeros(ok.sum()), mode="markers", name="top-1 legal", marker=dict(symbol="circle", color="#2ca02c", size=8)))
    fig.add_trace(go.Scatter(x=x[bad], y=np.zeros(bad.sum()), mode="markers", name="top-1 illegal", marker=dict(symbol="x", color="#d62728", size=10)))
    fig.update_layout(
        height=260, margin=dict(l=40, r=10, t=30, b=30), xaxis=dict(title="move number", tickformat="d", dtick=max(1, len(moves) // 12)),
        yaxis_title="illegal mass", yaxis_tickformat=percent_format(illegal_mass),
        yaxis=dict(rangemode="tozero"), legend=dict(orientation="h", y=1.15), bargap=0.1,
    )
    return fig


def value_boards_figure(values: list[np.ndarray], titles: list[str], size: int, *, value_name: str = "cosine", colorscale: str = "RdBu", rank1_bottom: bool = False, cell_px: int = 30) -> go.Figure:
    """Boards of square values side by side in one figure, on one symmetric colour scale (one
    colour bar): e.g. a feature's cosine with each probe direction per square. One figure draws
    in the browser in a fraction of the time of one figure per board."""
    lim = max(max(float(np.abs(v).max()) for v in values), 1e-6) if values else 1.0
    squares, cols, rows = _grid(size)
    shown_row = (size - 1 - rows) if rank1_bottom else rows
    gap = 2.0
    data, annotations, text_x, text_y, text = [], [], [], [], []
    for i, (v, title) in enumerate(zip(values, titles)):
        x0 = i * (size + gap)
        data.append(dict(
            type="scatter", x=(x0 + cols).tolist(), y=shown_row.tolist(), mode="markers", showlegend=False,
            marker=dict(symbol="square", size=cell_px - 2, color=np.asarray(v, float).reshape(-1).tolist(), colorscale=colorscale, cmin=-lim, cmax=lim,
                        showscale=i == len(values) - 1, colorbar=dict(thickness=12, title=dict(text=value_name, side="right"))),
            customdata=squares.tolist(), text=[f"{square_label(int(s), size)}: {float(x):+.3f}" for s, x in zip(squares, np.asarray(v).reshape(-1))], hovertemplate="%{text}<extra></extra>",
        ))
        annotations.append(dict(text=title, x=x0 + (size - 1) / 2, y=-1.0, xref="x", yref="y", xanchor="center", yanchor="bottom", showarrow=False, font=dict(size=13)))
        text_x += [x0 + k for k in range(size)] + [x0 - 0.9] * size
        text_y += [size - 0.3] * size + list(range(size))
        text += [chr(ord("a") + k) for k in range(size)] + [str(size - k if rank1_bottom else k + 1) for k in range(size)]
    data.append(dict(type="scatter", x=text_x, y=text_y, mode="text", text=text, textfont=dict(size=10, color="#666666"), hoverinfo="skip", showlegend=False))
    width_units = len(values) * (size + gap)
    axis = dict(showgrid=False, zeroline=False, fixedrange=True, showticklabels=False, ticks="")
    return figure(data, dict(
        xaxis=dict(axis, range=[-gap + 0.5, width_units - gap + 0.5]), yaxis=dict(axis, range=[size + 0.3, -1.8], scaleanchor="x"),
        annotations=annotations, width=int(width_units * cell_px) + 110, height=int((size + 2.4) * cell_px) + 20, margin=dict(l=10, r=10, t=10, b=10),
        plot_bgcolor="white", dragmode=False,
    ))
