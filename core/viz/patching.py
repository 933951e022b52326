"""Figures for the patching lab: layer x position maps per component, head grids, agreement."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

COMPONENT_NAMES = ("residual stream (resid_pre)", "attention output", "MLP output")
HEAD_NAMES = ("head output", "query", "key", "value", "pattern")


def block_maps_figure(values: np.ndarray, move_labels: list[str], title: str) -> go.Figure:
    """``values (3, n_layers, n_pos)``: one layer x position heatmap per component, shared colour scale."""
    n_layers, n_pos = values.shape[1:]
    lim = float(np.nanmax(np.abs(values))) or 1.0
    fig = make_subplots(rows=3, cols=1, subplot_titles=COMPONENT_NAMES, vertical_spacing=0.08)
    x = [f"{i + 1}. {m}" for i, m in enumerate(move_labels[:n_pos])]
    y = [f"L{layer}" for layer in range(n_layers)]
    for c in range(3):
        hover = [[f"{COMPONENT_NAMES[c]}, layer {layer}, move {p + 1} ({move_labels[p]}): {values[c, layer, p]:+.3f}<br>click: this site in detail below" for p in range(n_pos)] for layer in range(n_layers)]
        fig.add_trace(go.Heatmap(z=values[c], x=x, y=y, hoverinfo="skip", colorscale="RdBu", zmid=0, zmin=-lim, zmax=lim, showscale=c == 0, colorbar=dict(thickness=12)), row=c + 1, col=1)
        # Heatmaps cannot be selected in plotly: an invisible marker on every cell carries the click
        # (``customdata`` = component, layer, position) and the hover text.
        layers, positions = np.meshgrid(np.arange(n_layers), np.arange(n_pos), indexing="ij")
        fig.add_trace(
            go.Scatter(
                x=[x[p] for p in positions.ravel()], y=[y[layer] for layer in layers.ravel()], mode="markers",
                marker=dict(size=14, symbol="square", opacity=0), customdata=[[c, int(layer), int(p)] for layer, p in zip(layers.ravel(), positions.ravel())],
                hovertext=[hover[layer][p] for layer, p in zip(layers.ravel(), positions.ravel())], hoverinfo="text", showlegend=False,
            ),
            row=c + 1, col=1,
        )
    fig.update_yaxes(autorange="reversed")
    fig.update_xaxes(tickfont=dict(size=8))
    fig.update_layout(
        height=200 + 3 * (40 + 22 * n_layers), margin=dict(l=40, r=10, t=60, b=40), title=dict(text=title, font=dict(size=13)),
        dragmode=False, clickmode="event+select", hovermode="closest",
    )
    return fig


def head_grid_figure(values: np.ndarray, title: str) -> go.Figure:
    """``values (5, n_layers, n_heads)``: head output / q / k / v / pattern, side by side."""
    n_layers, n_heads = values.shape[1:]
    lim = float(np.nanmax(np.abs(values))) or 1.0
    fig = make_subplots(rows=1, cols=5, subplot_titles=HEAD_NAMES, horizontal_spacing=0.03)
    for i in range(5):
        hover = [[f"{HEAD_NAMES[i]} of L{layer}H{h}: {values[i, layer, h]:+.3f}" for h in range(n_heads)] for layer in range(n_layers)]
        fig.add_trace(go.Heatmap(z=values[i], x=[f"H{h}" for h in range(n_heads)], y=[f"L{layer}" for layer in range(n_layers)], text=hover, hoverinfo="text", colorscale="RdBu", zmid=0, zmin=-lim, zmax=lim, showscale=i == 4, colorbar=dict(thickness=12)), row=1, col=i + 1)
        if i:  # layer labels once, on the left: repeated, they crowd the panel before
            fig.update_yaxes(showticklabels=False, row=1, col=i + 1)
    fig.update_yaxes(autorange="reversed")
    fig.update_layout(height=120 + 26 * n_layers, margin=dict(l=40, r=10, t=60, b=30), title=dict(text=title, font=dict(size=13)))
    return fig


def agreement_figure(exact: np.ndarray, approx: np.ndarray, move_labels: list[str] | None = None, units: str = "patched metric") -> go.Figure:
    """Attribution patching (gradient approximation) against exact patching, one dot per site
    (``(3, n_layers, n_pos)`` each), hover naming the site, in the maps' ``units``."""
    n_pos = exact.shape[-1]
    labels = move_labels or [str(p + 1) for p in range(n_pos)]
    sites = [f"{COMPONENT_NAMES[c]}, layer {layer}, {p + 1}. {labels[p]}" for c in range(exact.shape[0]) for layer in range(exact.shape[1]) for p in range(n_pos)]
    x, y = exact.reshape(-1), approx.reshape(-1)
    corr = float(np.corrcoef(x, y)[0, 1]) if x.size > 1 and x.std() > 0 and y.std() > 0 else float("nan")
    hover = [f"{site}<br>exact {a:+.3f} · approximation {b:+.3f}" for site, a, b in zip(sites, x, y)]
    fig = go.Figure(go.Scatter(x=x, y=y, mode="markers", marker=dict(size=5, opacity=0.6), hovertext=hover, hoverinfo="text"))
    lo, hi = float(min(x.min(), y.min())), float(max(x.max(), y.max()))
    fig.add_trace(go.Scatter(x=[lo, hi], y=[lo, hi], mode="lines", line=dict(dash="dot", color="grey"), hoverinfo="skip", showlegend=False))
    fig.update_layout(height=340, margin=dict(l=40, r=10, t=40, b=40), showlegend=False, xaxis_title=f"exact patching ({units})", yaxis_title=f"attribution patching ({units})",
                      title=dict(text=f"Gradient approximation vs exact (r = {corr:.2f}): {agreement_words(corr)}", font=dict(size=13)))
    return fig


def agreement_words(r: float) -> str:
    """What a correlation between approximate and exact patching lets one trust."""
    if not np.isfinite(r):
        return "nothing to compare"
    if r >= 0.9:
        return "the fast approximation can stand in for the sweep"
    if r >= 0.6:
        return "it finds the big sites; check values with the exact sweep"
    return "it misleads here; trust the exact sweep"
