"""Figures for the SAE feature browser: grids of boards where a feature fires, and histograms."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go

from core.viz.chess_pieces import boards_piece_shapes
from core.viz.fast import figure



def board_grid_figure(
    boards: list[np.ndarray], last_moves: list, titles: list[str], cols: int = 6, cell_px: int = 17, hover: list[str] | None = None, pieces: str = "discs",
    rank1_bottom: bool = False, matched: int | None = None, **_style,
) -> go.Figure:
    """Small boards in a grid (pieces, the move just played outlined, ``matched``: a square framed
    in purple on every board, e.g. the square of a feature's best-matching property), one title
    each, columns and rows labelled on every board, ``hover`` (e.g. the moves that led there) on
    every square of its board.

    All boards share one plot, side by side in data coordinates: one trace for every square, one
    for each board's hover (an invisible marker covering the board), one for all the discs of a
    colour, all amber frames, all purple frames, all labels and all titles. Subplots made three to five traces and an axis pair per board, which plotly copies and
    checks on every run (~45 ms for 21 boards). ``last_moves``: one square per board, or a tuple
    of squares (a chess move's from and to). ``pieces="chess"`` draws signed piece types with the
    board player's piece outlines (shapes, not font glyphs) on a checkered board, rank 1 at the
    bottom.
    """
    n = len(boards)
    if n == 0:
        return go.Figure()
    size = boards[0].shape[0]
    rows = (n + cols - 1) // cols
    gap_x, gap_y = 1.6, 2.4  # room for the row numbers and between boards; for the letters and the title
    squares = np.arange(size * size)
    r, c = np.divmod(squares, size)
    shown_row = (size - 1 - r) if rank1_bottom else r  # one downward axis: rank 1 at the bottom for chess
    square_colour = np.where((r + c) % 2 == 1, "#ebd8b7", "#b58863").tolist() if pieces == "chess" else "#2e8b57"
    data: list[dict] = []
    discs: dict[int, tuple[list, list]] = {1: ([], []), -1: ([], [])}
    frames: dict[str, tuple[list, list]] = {"#ffbf00": ([], []), "#9467bd": ([], [])}
    text_x, text_y, text = [], [], []
    on_boards: list[tuple[np.ndarray, tuple[float, float]]] = []  # chess boards and where they go: their pieces as one set of shapes
    title_x: list[float] = []
    title_y: list[float] = []
    square_x: list[float] = []
    square_y: list[float] = []
    centre_x: list[float] = []
    centre_y: list[float] = []
    for i, (board, last) in enumerate(zip(boards, last_moves)):
        x0, y0 = (i % cols) * (size + gap_x), (i // cols) * (size + gap_y)
        xs, ys = x0 + c, y0 + shown_row
        square_x += xs.tolist()
        square_y += ys.tolist()
        centre_x.append(x0 + (size - 1) / 2)
        centre_y.append(y0 + (size - 1) / 2)
        flat = board.reshape(-1)
        if pieces == "chess":
            on_boards.append((board[::-1] if rank1_bottom else board, (x0, y0)))
        else:
            for value, (px, py) in discs.items():
                at = flat == value
                px += xs[at].tolist()
                py += ys[at].tolist()
        for colour, marked in (("#ffbf00", [s for s in np.atleast_1d(last) if 0 <= s < size * size]), ("#9467bd", [matched] if matched is not None and 0 <= matched < size * size else [])):
            frames[colour][0].extend(xs[marked].tolist())
            frames[colour][1].extend(ys[marked].tolist())
        # Column letters under and row numbers beside every board, however small.
        text_x += [x0 + k for k in range(size)] + [x0 - 0.9] * size
        text_y += [y0 + size] * size + [y0 + k for k in range(size)]
        text += [chr(ord("a") + k) for k in range(size)] + [str(size - k if rank1_bottom else k + 1) for k in range(size)]
        title_x.append(x0 + (size - 1) / 2)
        title_y.append(y0 - 1.0)
    # Every board's squares in one trace, and one invisible marker the size of a board at each
    # board's centre carrying its hover (its title and the moves that led there): two traces where
    # a trace per board cost plotly ~15 ms a board to draw in a browser.
    data.insert(0, dict(type="scatter", x=square_x, y=square_y, mode="markers", marker=dict(symbol="square", size=cell_px - (1 if pieces == "chess" else 2),
                                                                                              color=square_colour if isinstance(square_colour, str) else square_colour * n), hoverinfo="skip", showlegend=False))
    data.append(dict(type="scatter", x=centre_x, y=centre_y, mode="markers", marker=dict(symbol="square", size=cell_px * size, opacity=0), showlegend=False,
                     hovertext=[titles[i] + (f"<br>{hover[i]}" if hover else "") for i in range(len(centre_x))], hoverinfo="text"))
    for value, (px, py) in discs.items():
        colour, edge = ("#111111", "#444444") if value == 1 else ("#fafafa", "#777777")
        data.append(dict(type="scatter", x=px, y=py, mode="markers", marker=dict(symbol="circle", size=cell_px * 0.62, color=colour, line=dict(color=edge, width=1)), hoverinfo="skip", showlegend=False))
    for colour, (px, py) in frames.items():
        size_px, width = (cell_px - 2, 3) if colour == "#ffbf00" else (cell_px + 1, 2)
        data.append(dict(type="scatter", x=px, y=py, mode="markers", marker=dict(symbol="square-open", size=size_px, color=colour, line=dict(width=width)), hoverinfo="skip", showlegend=False))
    data.append(dict(type="scatter", x=text_x, y=text_y, mode="text", text=text, textfont=dict(size=7, color="#666666"), hoverinfo="skip", showlegend=False))
    # The titles: one text trace (plotly lays out each annotation on its own, ~10 ms apiece in a browser).
    data.append(dict(type="scatter", x=title_x, y=title_y, mode="text", text=list(titles[: len(title_x)]), textfont=dict(size=11, color="#222222"), hoverinfo="skip", showlegend=False))
    width_units, height_units = cols * (size + gap_x), rows * (size + gap_y)
    axis = dict(showgrid=False, zeroline=False, fixedrange=True, showticklabels=False, ticks="")
    layout = dict(
        xaxis=dict(axis, range=[-gap_x + 0.3, width_units - gap_x + 0.3]), yaxis=dict(axis, range=[height_units - gap_y + 0.6, -gap_y + 0.6], scaleanchor="x"),
        width=int(width_units * cell_px) + 20, height=int(height_units * cell_px) + 20, margin=dict(l=10, r=10, t=10, b=10),
        plot_bgcolor="white", dragmode=False, hovermode="closest",
    )
    if on_boards:
        layout["shapes"] = boards_piece_shapes(on_boards, False)
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
    """A trade-off curve (e.g. FVU against L0 over SAEs of several k, all trained on the same
    number of activations), one labelled point each; a point marked ``this`` (the SAE shown, often
    trained longer) is drawn apart, as a star, so the line only joins points of one budget."""
    curve = [p for p in points if not p.get("this")]
    own = [p for p in points if p.get("this")]

    def text(p: dict) -> str:
        return p.get(label, "") + (f" · {p['tokens'] / 1e6:g}M" if p.get("tokens") else "")

    fig = go.Figure(go.Scatter(
        x=[p[x] for p in curve], y=[p[y] for p in curve], mode="markers+lines+text", text=[text(p) for p in curve], name="same budget",
        # Labels to the right of each point, above it where the curve falls and below where it
        # rises, so the line to the next point does not run through them.
        textposition=[("top right" if i + 1 < len(curve) and curve[i + 1][y] < p[y] else "bottom right") for i, p in enumerate(curve)],
        marker=dict(size=9, color="#d94801"),
    ))
    if own:
        fig.add_trace(go.Scatter(x=[p[x] for p in own], y=[p[y] for p in own], mode="markers+text", text=[text(p) for p in own], name="this SAE",
                                 textposition="bottom left", marker=dict(size=13, symbol="star", color="#08519c")))
    # Room around the points for their labels: the end points' labels were cut by the axes.
    xs, ys = [p[x] for p in points], [p[y] for p in points]
    x_pad = 0.15 * (max(xs) - min(xs) or 1.0)
    y_pad = 0.15 * (max(ys) - min(ys) or 1.0)
    fig.update_layout(
        height=280, margin=dict(l=40, r=10, t=20, b=40), xaxis_title=x.upper(), yaxis_title=y.upper(), showlegend=False,
        xaxis_range=[min(xs) - 1.5 * x_pad, max(xs) + 2.5 * x_pad], yaxis_range=[min(ys) - 1.5 * y_pad, max(ys) + 1.5 * y_pad],
    )
    return fig
