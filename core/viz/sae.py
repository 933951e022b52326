"""Figures for the SAE feature browser: grids of boards where a feature fires, and histograms."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go

from core.viz.board import square_label
from core.viz.chess_pieces import piece_shapes
from core.viz.fast import figure, grid_axes



def board_grid_figure(
    boards: list[np.ndarray], last_moves: list, titles: list[str], cols: int = 6, cell_px: int = 17, hover: list[str] | None = None, pieces: str = "discs",
    rank1_bottom: bool = False, matched: int | None = None, **_style,
) -> go.Figure:
    """Small boards in a grid (pieces, the move just played outlined, ``matched``: a square framed
    in purple on every board, e.g. the square of a feature's best-matching property), one title
    each, columns and rows labelled on every board.

    One figure with a few traces per board, so a dozen boards draw as fast as one. ``last_moves``:
    one square per board, or a tuple of squares (a chess move's from and to). ``pieces="chess"``
    draws signed piece types with the board player's piece outlines (shapes, not font glyphs) on a
    checkered board, rank 1 at the bottom.
    """
    n = len(boards)
    if n == 0:
        return go.Figure()
    size = boards[0].shape[0]
    rows = (n + cols - 1) // cols
    refs, axes, domains = grid_axes(rows, cols, 0.03, 0.16 / max(rows, 1) + 0.05)
    squares = np.arange(size * size)
    shapes: list[dict] = []
    data: list[dict] = []
    r, c = np.divmod(squares, size)
    labels = [square_label(int(s), size) for s in squares]
    square_colour = np.where((r + c) % 2 == 1, "#ebd8b7", "#b58863").tolist() if pieces == "chess" else "#2e8b57"

    def points(at, marker: dict, xref: str, yref: str, **trace) -> dict:
        return dict(type="scatter", x=c[at], y=r[at], mode="markers", marker=marker, xaxis=xref, yaxis=yref, showlegend=False, **trace)

    for i, (board, last) in enumerate(zip(boards, last_moves)):
        xref, yref = refs[i]
        flat = board.reshape(-1)
        # The board's hover (its moves) once, in the template: not copied onto each of its squares.
        template = "%{text}" + (f"<br>{hover[i]}" if hover else "") + "<extra></extra>"
        data.append(points(squares, dict(symbol="square", size=cell_px - (1 if pieces == "chess" else 2), color=square_colour), xref, yref, text=labels, hovertemplate=template))
        if pieces == "chess":
            shapes += [dict(shape, xref=xref, yref=yref) for shape in piece_shapes(board, rank1_bottom)]
        else:
            for colour, value, edge in (("#111111", 1, "#444444"), ("#fafafa", -1, "#777777")):
                data.append(points(flat == value, dict(symbol="circle", size=cell_px * 0.62, color=colour, line=dict(color=edge, width=1)), xref, yref, hoverinfo="skip"))
        marked = [s for s in np.atleast_1d(last) if 0 <= s < size * size]
        if marked:
            data.append(points(marked, dict(symbol="square-open", size=cell_px - 2, color="#ffbf00", line=dict(width=3)), xref, yref, hoverinfo="skip"))
        if matched is not None and 0 <= matched < size * size:
            data.append(points([matched], dict(symbol="square-open", size=cell_px + 1, color="#9467bd", line=dict(width=2)), xref, yref, hoverinfo="skip"))
    # Column letters under and row numbers beside every board, however small.
    ticks = dict(tickfont=dict(size=7, color="#666666"), ticks="", showticklabels=True, showgrid=False, zeroline=False, fixedrange=True, tickvals=list(range(size)))
    for i, (xref, yref) in enumerate(refs):
        axes["xaxis" + xref[1:]].update(ticks, range=[-0.5, size - 0.5], ticktext=[chr(ord("a") + k) for k in range(size)], side="bottom")
        axes["yaxis" + yref[1:]].update(ticks, range=[-0.5, size - 0.5] if rank1_bottom else [size - 0.5, -0.5], ticktext=[str(k + 1) for k in range(size)], scaleanchor=xref)
    titles = [
        dict(text=title, x=(x0 + x1) / 2, y=y1, xref="paper", yref="paper", xanchor="center", yanchor="bottom", showarrow=False, font=dict(size=11))
        for title, (x0, x1, _, y1) in zip(titles, domains)
    ]
    layout = dict(axes, annotations=titles, height=rows * (cell_px * size + 46) + 10, width=cols * (cell_px * size + 24), margin=dict(l=12, r=5, t=24, b=12), plot_bgcolor="white", dragmode=False)
    if shapes:
        layout["shapes"] = shapes
    return figure(data, layout)


def activation_histogram(values: np.ndarray, n_positions: int, title: str) -> go.Figure:
    """Distribution of a feature's non-zero activations (and how often it is zero, in the title)."""
    fig = go.Figure(go.Histogram(x=values, nbinsx=40, marker_color="#6a51a3"))
    density = len(values) / max(n_positions, 1)
    fig.update_layout(
        title=dict(text=f"{title} · fires on {density:.2%} of positions", font=dict(size=13)), height=230,
        margin=dict(l=40, r=10, t=35, b=30), xaxis_title="activation (when non-zero)", yaxis_title="positions", bargap=0.05,
    )
    return fig


def density_histogram(density: np.ndarray) -> go.Figure:
    """log10 firing density over all features; dead features (never fire) counted apart."""
    alive = density > 0
    fig = go.Figure(go.Histogram(x=np.log10(density[alive]), nbinsx=50, marker_color="#2171b5"))
    fig.update_layout(
        title=dict(text=f"Feature density (log10 fraction of positions) · {int((~alive).sum())} of {len(density)} never fire", font=dict(size=13)),
        height=230, margin=dict(l=40, r=10, t=35, b=30), xaxis_title="log10 density", yaxis_title="features", bargap=0.05,
    )
    return fig


def curve_figure(points: list[dict], x: str = "l0", y: str = "fvu", label: str = "name") -> go.Figure:
    """A trade-off curve (e.g. FVU against L0 over several SAEs), one labelled point each."""
    fig = go.Figure(go.Scatter(
        x=[p[x] for p in points], y=[p[y] for p in points], mode="markers+lines+text",
        text=[p.get(label, "") + (f" · {p['tokens'] / 1e6:g}M" if p.get("tokens") else "") for p in points],
        # Labels to the right of each point, above it where the curve falls and below where it
        # rises, so the line to the next point does not run through them.
        textposition=[("top right" if i + 1 < len(points) and points[i + 1][y] < p[y] else "bottom right") for i, p in enumerate(points)],
        marker=dict(size=9, color="#d94801"),
    ))
    # Room around the points for their labels: the end points' labels were cut by the axes.
    xs, ys = [p[x] for p in points], [p[y] for p in points]
    x_pad = 0.15 * (max(xs) - min(xs) or 1.0)
    y_pad = 0.15 * (max(ys) - min(ys) or 1.0)
    fig.update_layout(
        height=280, margin=dict(l=40, r=10, t=20, b=40), xaxis_title=x.upper(), yaxis_title=y.upper(),
        xaxis_range=[min(xs) - x_pad, max(xs) + 2.5 * x_pad], yaxis_range=[min(ys) - 1.5 * y_pad, max(ys) + 1.5 * y_pad],
    )
    return fig
