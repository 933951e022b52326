"""Attention patterns per head: destination x source heatmaps, as circuitsvis draws them.

``patterns (n_layers, n_heads, pos, pos)``: row = the position attending (destination), column =
the position attended to (source); causal, so everything right of the diagonal is 0.
"""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go

from core.viz.fast import figure

THUMB_POSITIONS = 40  # thumbnails show the last positions only: 64 heads x 256^2 cells would be ~4M values


def head_pattern_figure(pattern: np.ndarray, labels: list[str], head: str, current: int | None = None) -> go.Figure:
    """One head, large: every destination x source with the tokens' labels, hover values, and the
    ``current`` destination (the position the page reads) framed."""
    n = pattern.shape[0]
    ticks = [f"{i + 1}. {m}" for i, m in enumerate(labels[:n])]
    hover = [[f"{head}: {ticks[d]} attends to {ticks[s]}: {pattern[d, s]:.3f}" if s <= d else "" for s in range(n)] for d in range(n)]
    fig = go.Figure(go.Heatmap(z=pattern, x=ticks, y=ticks, text=hover, hoverinfo="text", colorscale="Blues", zmin=0, zmax=1, colorbar=dict(thickness=12, title="attn")))
    if current is not None and 0 <= current < n:
        fig.add_shape(type="rect", x0=-0.5, x1=current + 0.5, y0=current - 0.5, y1=current + 0.5, line=dict(color="#ff7f0e", width=2))
    side = min(720, max(320, 16 * n + 140))
    fig.update_layout(
        height=side, width=side + 60, margin=dict(l=90, r=10, t=40, b=90), title=dict(text=f"{head}: destination (rows) attends to source (columns)", font=dict(size=13)),
        yaxis=dict(type="category", autorange="reversed", tickfont=dict(size=9), title="destination"), xaxis=dict(type="category", tickfont=dict(size=9), tickangle=-60, title="source"),
    )
    return fig


def thumbnail_block(patterns: np.ndarray, layer: int, head: int) -> tuple[slice, slice]:
    """Where head ``(layer, head)`` sits in ``head_grid_thumbnails``'s one matrix: ``(rows, columns)``."""
    shown = min(patterns.shape[2], THUMB_POSITIONS)
    step = shown + 1  # one empty row and column between heads
    return slice(layer * step, layer * step + shown), slice(head * step, head * step + shown)


def head_grid_thumbnails(patterns: np.ndarray, labels: list[str]) -> go.Figure:
    """Layer x head grid of small patterns on one 0..1 scale (the last ``THUMB_POSITIONS``
    positions of a long game), hover naming the head and both positions (``labels``: the tokens,
    for the positions' count).

    One heatmap holds every head (a gap row and column between heads): a subplot per head made 64
    axis pairs for an 8 x 8 model, which took a browser over a second to lay out each time the
    section opened. Each row and column has its own label (``L3 · 5``: layer 3, position 5;
    ``H2 · 4``), so the hover names the head and both positions without a string per cell."""
    n_layers, n_heads, n = patterns.shape[:3]
    first = max(0, n - THUMB_POSITIONS)
    shown = n - first
    step = shown + 1
    z = np.full((n_layers * step - 1, n_heads * step - 1), np.nan)
    for layer in range(n_layers):
        for h in range(n_heads):
            rows, cols = thumbnail_block(patterns, layer, h)
            z[rows, cols] = np.round(patterns[layer, h, first:, first:], 3)
    positions = range(first + 1, n + 1)
    # Gap rows and columns need labels of their own (categories are unique): spaces of growing length.
    y = [label for layer in range(n_layers) for label in [f"L{layer} · {p}" for p in positions] + ([" " * (layer + 1)] if layer < n_layers - 1 else [])]
    x = [label for h in range(n_heads) for label in [f"H{h} · {p}" for p in positions] + (["\u2009" * (h + 1)] if h < n_heads - 1 else [])]
    data = [dict(type="heatmap", z=z, x=x, y=y, hoverongaps=False, hovertemplate="destination %{y} attends to source %{x}: %{z:.2f}<extra></extra>",
                 colorscale="Blues", zmin=0, zmax=1, colorbar=dict(thickness=10, title=dict(text="attn"), len=0.5, x=1.06, xanchor="left"))]
    label = dict(xref="x", yref="y", showarrow=False, font=dict(size=11))
    titles = [dict(label, text=f"H{h}", x=h * step + (shown - 1) / 2, y=-0.6, xanchor="center", yanchor="bottom") for h in range(n_heads)]
    titles += [dict(label, text=f"L{layer}", x=n_heads * step - 1, y=layer * step + (shown - 1) / 2, xanchor="left", yanchor="middle", xshift=4, textangle=90) for layer in range(n_layers)]
    cell = 62
    axis = dict(type="category", showticklabels=False, showgrid=False, zeroline=False, ticks="")
    layout = dict(
        xaxis=axis, yaxis=dict(axis, autorange="reversed"), annotations=titles, plot_bgcolor="white",
        height=cell * n_layers + 100, width=cell * n_heads + 160, margin=dict(l=10, r=100, t=75, b=10),  # the colour bar right of the L labels
        title=dict(text="Every head (rows: layers; each square: destination down, source across)" + (f", last {THUMB_POSITIONS} positions" if first else ""), font=dict(size=12), y=0.98, yanchor="top"),
    )
    return figure(data, layout)
