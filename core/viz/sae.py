"""Figures for the SAE feature browser: grids of boards where a feature fires, and histograms."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from core.viz.board import square_label
from core.viz.chess_pieces import piece_shapes



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
    fig = make_subplots(rows=rows, cols=cols, subplot_titles=titles, horizontal_spacing=0.03, vertical_spacing=0.16 / max(rows, 1) + 0.05)
    squares = np.arange(size * size)
    shapes: list[dict] = []
    r, c = np.divmod(squares, size)
    labels = [square_label(int(s), size) for s in squares]
    for i, (board, last) in enumerate(zip(boards, last_moves)):
        row, col = i // cols + 1, i % cols + 1
        flat = board.reshape(-1)
        text = [f"{labels[s]}" + (f"<br>{hover[i]}" if hover else "") for s in squares]
        square_colour = np.where((r + c) % 2 == 1, "#ebd8b7", "#b58863").tolist() if pieces == "chess" else "#2e8b57"
        fig.add_trace(go.Scatter(x=c, y=r, mode="markers", marker=dict(symbol="square", size=cell_px - (1 if pieces == "chess" else 2), color=square_colour), hovertext=text, hoverinfo="text", showlegend=False), row=row, col=col)
        if pieces == "chess":
            axis = "" if i == 0 else str(i + 1)  # make_subplots names the axes x, x2, x3, ... row by row
            shapes += [dict(shape, xref=f"x{axis}", yref=f"y{axis}") for shape in piece_shapes(board, rank1_bottom)]
        else:
            for colour, value, edge in (("#111111", 1, "#444444"), ("#fafafa", -1, "#777777")):
                at = flat == value
                fig.add_trace(go.Scatter(x=c[at], y=r[at], mode="markers", marker=dict(symbol="circle", size=cell_px * 0.62, color=colour, line=dict(color=edge, width=1)), hoverinfo="skip", showlegend=False), row=row, col=col)
        marked = [s for s in np.atleast_1d(last) if 0 <= s < size * size]
        if marked:
            fig.add_trace(go.Scatter(x=c[marked], y=r[marked], mode="markers", marker=dict(symbol="square-open", size=cell_px - 2, color="#ffbf00", line=dict(width=3)), hoverinfo="skip", showlegend=False), row=row, col=col)
        if matched is not None and 0 <= matched < size * size:
            fig.add_trace(go.Scatter(x=[c[matched]], y=[r[matched]], mode="markers", marker=dict(symbol="square-open", size=cell_px + 1, color="#9467bd", line=dict(width=2)), hoverinfo="skip", showlegend=False), row=row, col=col)
    # Column letters under and row numbers beside every board, however small.
    ticks = dict(tickfont=dict(size=7, color="#666666"), ticks="", showticklabels=True)
    axis = dict(showgrid=False, zeroline=False, fixedrange=True, range=[-0.5, size - 0.5])
    fig.update_xaxes(dict(axis, **ticks, tickvals=list(range(size)), ticktext=[chr(ord("a") + k) for k in range(size)], side="bottom"))
    fig.update_yaxes(dict(axis, **ticks, tickvals=list(range(size)), ticktext=[str(k + 1) for k in range(size)], range=[-0.5, size - 0.5] if rank1_bottom else [size - 0.5, -0.5]))
    for i in range(1, n + 1):
        fig.update_yaxes(scaleanchor=f"x{i if i > 1 else ''}", row=(i - 1) // cols + 1, col=(i - 1) % cols + 1)
    fig.update_annotations(font_size=11)
    if shapes:
        fig.update_layout(shapes=shapes)
    fig.update_layout(height=rows * (cell_px * size + 46) + 10, width=cols * (cell_px * size + 24), margin=dict(l=12, r=5, t=24, b=12), plot_bgcolor="white", dragmode=False)
    return fig


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
