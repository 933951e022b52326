"""Attention patterns per head: destination x source heatmaps, as circuitsvis draws them.

``patterns (n_layers, n_heads, pos, pos)``: row = the position attending (destination), column =
the position attended to (source); causal, so everything right of the diagonal is 0.
"""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

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
        yaxis=dict(autorange="reversed", tickfont=dict(size=9), title="destination"), xaxis=dict(tickfont=dict(size=9), tickangle=-60, title="source"),
    )
    return fig


def head_grid_thumbnails(patterns: np.ndarray, labels: list[str]) -> go.Figure:
    """Layer x head grid of small patterns on one 0..1 scale (the last ``THUMB_POSITIONS``
    positions of a long game), hover naming the head and both positions (``labels``: the tokens,
    for the positions' count)."""
    n_layers, n_heads, n = patterns.shape[:3]
    first = max(0, n - THUMB_POSITIONS)
    fig = make_subplots(rows=n_layers, cols=n_heads, horizontal_spacing=0.01, vertical_spacing=0.01, row_titles=[f"L{layer}" for layer in range(n_layers)], column_titles=[f"H{h}" for h in range(n_heads)])
    positions = list(range(first + 1, n + 1))
    for layer in range(n_layers):
        for h in range(n_heads):
            # Position numbers and a template, not a label per cell: 64 heads x 59^2 hover strings
            # took 0.5 s and 2.8 MB per redraw (the large view below has the move labels).
            z = np.round(patterns[layer, h, first:, first:], 3)
            fig.add_trace(
                go.Heatmap(
                    z=z, x=positions, y=positions, hovertemplate=f"L{layer}H{h}: position %{{y}} attends to %{{x}}: %{{z:.2f}}<extra></extra>",
                    colorscale="Blues", zmin=0, zmax=1, showscale=layer == 0 and h == 0, colorbar=dict(thickness=10, title="attn", len=0.5),
                ),
                row=layer + 1, col=h + 1,
            )
    fig.update_xaxes(showticklabels=False)
    fig.update_yaxes(showticklabels=False, autorange="reversed")
    fig.update_annotations(font_size=11)  # the L/H labels
    cell = 62
    fig.update_layout(
        height=cell * n_layers + 100, width=cell * n_heads + 130, margin=dict(l=10, r=70, t=75, b=10),
        title=dict(text="Every head (rows: layers; each square: destination down, source across)" + (f", last {THUMB_POSITIONS} positions" if first else ""), font=dict(size=12), y=0.98, yanchor="top"),
    )
    return fig
