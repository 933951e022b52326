"""Figures for the patching lab: layer x position maps per component, head grids, agreement."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go

from core.viz.fast import figure, grid_axes

COMPONENT_NAMES = ("residual stream (resid_pre)", "attention output", "MLP output")
HEAD_NAMES = ("head output", "query", "key", "value", "pattern")


def _titles(names, domains) -> list[dict]:
    """Subplot titles centred above their cells, as ``make_subplots`` places them."""
    return [
        dict(text=name, x=(x0 + x1) / 2, y=y1, xref="paper", yref="paper", xanchor="center", yanchor="bottom", showarrow=False, font=dict(size=14))
        for name, (x0, x1, _, y1) in zip(names, domains)
    ]


def block_maps_figure(values: np.ndarray, move_labels: list[str], title: str) -> go.Figure:
    """``values (3, n_layers, n_pos)``: one layer x position heatmap per component, shared colour scale."""
    n_layers, n_pos = values.shape[1:]
    lim = float(np.nanmax(np.abs(values))) or 1.0
    refs, axes, domains = grid_axes(3, 1, 0.0, 0.08)
    x = [f"{i + 1}. {m}" for i, m in enumerate(move_labels[:n_pos])]
    y = [f"L{layer}" for layer in range(n_layers)]
    layers, positions = np.meshgrid(np.arange(n_layers), np.arange(n_pos), indexing="ij")
    layers, positions = layers.ravel(), positions.ravel()
    data = []
    for c, (xref, yref) in enumerate(refs):
        data.append(dict(type="heatmap", z=values[c], x=x, y=y, xaxis=xref, yaxis=yref, hoverinfo="skip", colorscale="RdBu", zmid=0, zmin=-lim, zmax=lim, showscale=c == 0, colorbar=dict(thickness=12)))
        # Heatmaps cannot be selected in plotly: an invisible marker on every cell carries the click
        # (``customdata`` = component, layer, position) and the hover text.
        data.append(dict(
            type="scatter", x=[x[p] for p in positions], y=[y[layer] for layer in layers], xaxis=xref, yaxis=yref, mode="markers",
            marker=dict(size=22, symbol="square", opacity=0), customdata=[[c, int(layer), int(p)] for layer, p in zip(layers, positions)],
            hovertext=[f"{COMPONENT_NAMES[c]}, layer {layer}, move {p + 1} ({move_labels[p]}): {values[c, layer, p]:+.3f}<br>click: this site in detail below" for layer, p in zip(layers, positions)],
            hoverinfo="text", showlegend=False,
        ))
        # Categories, always: labels such as "2. 1" (a PGN character) would make plotly guess numbers.
        # Position labels once, under the last map: the three share them, and slanted labels of an
        # upper map would run into the map below it.
        axes["xaxis" + xref[1:]].update(type="category", tickfont=dict(size=11, color="#333"), tickangle=0 if n_pos <= 12 else -45, showticklabels=c == len(refs) - 1)
        axes["yaxis" + yref[1:]].update(type="category", autorange="reversed", tickfont=dict(size=11, color="#333"))
    # hoverdistance -1: the nearest cell's marker takes a click anywhere in the cell, not only
    # where its marker is (cells are wider than any one marker size on a wide page).
    return figure(data, dict(
        axes, annotations=_titles(COMPONENT_NAMES, domains), height=200 + 3 * (40 + 22 * n_layers) + (30 if n_pos > 12 else 0), margin=dict(l=40, r=10, t=60, b=40),
        title=dict(text=title, font=dict(size=13)), dragmode=False, clickmode="event+select", hovermode="closest", hoverdistance=-1,
    ))


def head_grid_figure(values: np.ndarray, title: str) -> go.Figure:
    """``values (5, n_layers, n_heads)``: head output / q / k / v / pattern, side by side."""
    n_layers, n_heads = values.shape[1:]
    lim = float(np.nanmax(np.abs(values))) or 1.0
    refs, axes, domains = grid_axes(1, 5, 0.03, 0.0)
    data = []
    for i, (xref, yref) in enumerate(refs):
        hover = [[f"{HEAD_NAMES[i]} of L{layer}H{h}: {values[i, layer, h]:+.3f}" for h in range(n_heads)] for layer in range(n_layers)]
        xs, ys = [f"H{h}" for h in range(n_heads)], [f"L{layer}" for layer in range(n_layers)]
        data.append(dict(type="heatmap", z=values[i], x=xs, y=ys, xaxis=xref, yaxis=yref, hoverinfo="skip", colorscale="RdBu", zmid=0, zmin=-lim, zmax=lim, showscale=i == 4, colorbar=dict(thickness=12)))
        # As in the block maps: an invisible marker per cell carries the click (``customdata`` =
        # patched part, layer, head) and the hover text.
        data.append(dict(
            type="scatter", x=[xs[h] for layer in range(n_layers) for h in range(n_heads)], y=[ys[layer] for layer in range(n_layers) for h in range(n_heads)],
            xaxis=xref, yaxis=yref, mode="markers", marker=dict(size=14, symbol="square", opacity=0), showlegend=False, hoverinfo="text",
            customdata=[[i, layer, h] for layer in range(n_layers) for h in range(n_heads)], hovertext=[f"{text}<br>click: open this head" for row in hover for text in row],
        ))
        # Layer labels once, on the left: repeated, they crowd the panel.
        axes["xaxis" + xref[1:]].update(type="category")
        axes["yaxis" + yref[1:]].update(type="category", autorange="reversed", showticklabels=i == 0)
    return figure(data, dict(axes, annotations=_titles(HEAD_NAMES, domains), height=120 + 26 * n_layers, margin=dict(l=40, r=10, t=60, b=30), title=dict(text=title, font=dict(size=13)),
                             dragmode=False, clickmode="event+select", hovermode="closest", hoverdistance=-1))


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
    fig.update_layout(height=340, margin=dict(l=40, r=10, t=60, b=40), showlegend=False, xaxis_title=f"exact patching ({units})", yaxis_title=f"attribution patching ({units})",
                      title=dict(text=f"Attribution vs exact patching (r = {corr:.2f})<br><sup>{agreement_words(corr)}</sup>", font=dict(size=13)))
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


def next_token_change_figure(base: np.ndarray, patched: np.ndarray, vocab: tuple[str, ...], title: str, k: int = 10) -> go.Figure:
    """The likeliest next tokens (of either run) with their probability unpatched and patched:
    one pair of bars per token, for games whose tokens are not squares."""
    shown = sorted(set(np.argsort(-base)[:k].tolist()) | set(np.argsort(-patched)[:k].tolist()), key=lambda t: -max(float(base[t]), float(patched[t])))[:k]
    names = ["␣" if vocab[t] == " " else vocab[t] for t in shown]
    fig = go.Figure([
        go.Bar(x=names, y=[float(base[t]) for t in shown], name="unpatched", marker_color="#bbbbbb"),
        go.Bar(x=names, y=[float(patched[t]) for t in shown], name="patched", marker_color="#9467bd"),
    ])
    fig.update_layout(barmode="group", height=280, margin=dict(l=40, r=10, t=40, b=30), yaxis=dict(tickformat=".0%"), xaxis=dict(type="category", tickfont=dict(size=14)),
                      title=dict(text=title, font=dict(size=13)), legend=dict(orientation="h", y=1.0, yanchor="bottom", x=1, xanchor="right"))
    return fig
