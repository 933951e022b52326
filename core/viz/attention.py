"""Attention patterns per head: destination x source heatmaps, as circuitsvis draws them.

``patterns (n_layers, n_heads, pos, pos)``: row = the position attending (destination), column =
the position attended to (source); causal, so everything right of the diagonal is 0.
"""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go

from core.viz.fast import figure, grid_axes

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


def head_grid_thumbnails(patterns: np.ndarray, labels: list[str]) -> go.Figure:
    """Layer x head grid of small patterns on one 0..1 scale (the last ``THUMB_POSITIONS``
    positions of a long game), hover naming the head and both positions (``labels``: the tokens,
    for the positions' count)."""
    n_layers, n_heads, n = patterns.shape[:3]
    first = max(0, n - THUMB_POSITIONS)
    refs, axes, domains = grid_axes(n_layers, n_heads, 0.01, 0.01)
    positions = list(range(first + 1, n + 1))
    data = []
    for i, (xref, yref) in enumerate(refs):
        layer, h = divmod(i, n_heads)
        # Position numbers and a template, not a label per cell: 64 heads x 59^2 hover strings
        # took 0.5 s and 2.8 MB per redraw (the large view below has the move labels).
        data.append(dict(
            type="heatmap", z=np.round(patterns[layer, h, first:, first:], 3), x=positions, y=positions, xaxis=xref, yaxis=yref,
            hovertemplate=f"L{layer}H{h}: position %{{y}} attends to %{{x}}: %{{z:.2f}}<extra></extra>",
            colorscale="Blues", zmin=0, zmax=1, showscale=i == 0, colorbar=dict(thickness=10, title=dict(text="attn"), len=0.5, x=1.06, xanchor="left"),
        ))
    for name in axes:
        axes[name].update(showticklabels=False, **({"autorange": "reversed"} if name.startswith("y") else {}))
    # The L/H labels, where make_subplots puts row and column titles.
    label = dict(xref="paper", yref="paper", showarrow=False, font=dict(size=11))
    titles = [dict(label, text=f"H{h}", x=(domains[h][0] + domains[h][1]) / 2, y=1.0, xanchor="center", yanchor="bottom") for h in range(n_heads)]
    titles += [dict(label, text=f"L{layer}", x=1.0, y=(domains[layer * n_heads][2] + domains[layer * n_heads][3]) / 2, xanchor="left", yanchor="middle", xshift=4, textangle=90) for layer in range(n_layers)]
    cell = 62
    layout = dict(
        axes, annotations=titles, height=cell * n_layers + 100, width=cell * n_heads + 160, margin=dict(l=10, r=100, t=75, b=10),  # the colour bar right of the L labels
        title=dict(text="Every head (rows: layers; each square: destination down, source across)" + (f", last {THUMB_POSITIONS} positions" if first else ""), font=dict(size=12), y=0.98, yanchor="top"),
    )
    return figure(data, layout)
