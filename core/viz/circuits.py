"""The pruned attribution graph drawn layer by layer: x is the position in the input (a move, a
character, a token), y the layer; input tokens along the bottom, the targets on top. Edges are
drawn blue when they push the target node up and red when they push it down, wider the larger
they are. Feature nodes are circles sized by influence, error nodes grey diamonds, tokens and
targets squares. A node's ``custom`` value (its name) comes back in a chart selection."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go

from core.viz.fast import figure

KIND_STYLE = {  # marker symbol, colour
    "feature": ("circle", "#4c78a8"),
    "error": ("diamond", "#9e9e9e"),
    "token": ("square", "#54a24b"),
    "target": ("square", "#e45756"),
}
GROUP_COLOURS = ("#f58518", "#b279a2", "#72b7b2", "#eeca3b", "#ff9da6", "#9d755d")
WIDTHS = (1.0, 2.5, 5.0)


def node_positions(nodes: list[dict], n_layers: int) -> None:
    """Set ``x`` and ``y`` on each node: its position spread among the nodes sharing its cell."""
    cells: dict[tuple[int, float], list[dict]] = {}
    for n in nodes:
        y = -1.0 if n["kind"] == "token" else float(n_layers) if n["kind"] == "target" else n["layer"] + (0.25 if n["kind"] == "error" else 0.0)
        n["y"] = y
        cells.setdefault((n["pos"], y), []).append(n)
    for (pos, y), group in cells.items():
        k = len(group)
        if y == float(n_layers):  # targets: a row ending at the position they are read at
            for i, n in enumerate(group):
                n["x"] = pos - (k - 1 - i) * 0.6
            continue
        for i, n in enumerate(sorted(group, key=lambda n: -n["influence"])):
            n["x"] = pos + (0.0 if k == 1 else (i - (k - 1) / 2) * min(0.9 / k, 0.25))


def circuit_figure(nodes: list[dict], edges: list[tuple[int, int, float]], n_layers: int, x_labels: dict[int, str], selected: str | None = None, groups: dict[str, list[str]] | None = None, height: int = 620) -> go.Figure:
    """``nodes``: dicts with ``node, name, kind, layer, pos, influence, label``; ``edges``:
    (source node, target node, weight) among them; ``x_labels``: position -> tick label."""
    node_positions(nodes, n_layers)
    at = {n["node"]: n for n in nodes}
    traces = []
    weights = np.array([abs(w) for _, _, w in edges]) if edges else np.zeros(0)
    cut = np.quantile(weights, [0.5, 0.9]) if len(weights) else np.zeros(2)
    levels = np.searchsorted(cut, weights, side="right")
    signs = np.sign([w for _, _, w in edges]) if edges else np.zeros(0)
    for sign, colour in ((1, "rgba(31,119,180,0.45)"), (-1, "rgba(214,39,40,0.45)")):
        for level, width in enumerate(WIDTHS):
            xs, ys = [], []
            for i in np.nonzero((signs == sign) & (levels == level))[0]:
                s, t, _ = edges[i]
                if s in at and t in at:
                    xs += [at[s]["x"], at[t]["x"], None]
                    ys += [at[s]["y"], at[t]["y"], None]
            if xs:
                traces.append({"type": "scatter", "x": xs, "y": ys, "mode": "lines", "line": {"color": colour, "width": width}, "hoverinfo": "skip", "showlegend": False})
    member = {name: g for g, names in (groups or {}).items() for name in names}
    colours = {g: GROUP_COLOURS[i % len(GROUP_COLOURS)] for i, g in enumerate(groups or {})}
    top = max([n["influence"] for n in nodes] + [1e-12])
    for kind, (symbol, colour) in KIND_STYLE.items():
        these = [n for n in nodes if n["kind"] == kind]
        if not these:
            continue
        sizes = [10 + 22 * np.sqrt(n["influence"] / top) if kind in ("feature", "error") else 16 for n in these]
        line_colours = [colours[member[n["name"]]] if n["name"] in member else ("#000" if n["name"] == selected else "white") for n in these]
        line_widths = [4 if n["name"] in member or n["name"] == selected else 1 for n in these]
        traces.append({
            "type": "scatter", "x": [n["x"] for n in these], "y": [n["y"] for n in these], "mode": "markers+text" if kind == "target" else "markers", "name": kind,
            "textposition": "top center", "textfont": {"size": 11},
            **({"texttemplate": [n.get("short", "")[:12] for n in these]} if kind == "target" else {}),
            "marker": {"symbol": symbol, "color": colour, "size": sizes, "line": {"color": line_colours, "width": line_widths}},
            "text": [n["label"] for n in these], "customdata": [n["name"] for n in these],
            "hovertemplate": "%{text}<extra></extra>",
        })
    for g, names in (groups or {}).items():
        inside = [at_n for at_n in nodes if at_n["name"] in names]
        if inside:
            traces.append({"type": "scatter", "x": [np.mean([n["x"] for n in inside])], "y": [max(n["y"] for n in inside) + 0.35], "mode": "text", "text": [g], "textfont": {"color": colours[g], "size": 13}, "showlegend": False, "hoverinfo": "skip"})
    positions = sorted({n["pos"] for n in nodes})
    layout = {
        "height": height, "margin": {"l": 60, "r": 20, "t": 30, "b": 90}, "plot_bgcolor": "white",
        "xaxis": {"tickmode": "array", "tickvals": positions, "ticktext": [x_labels.get(p, str(p)) for p in positions], "tickangle": -60, "showgrid": True, "gridcolor": "#eee", "zeroline": False, "title": {"text": "position (move played)"}},
        "yaxis": {"tickmode": "array", "tickvals": [-1] + list(range(n_layers)) + [n_layers], "ticktext": ["input"] + [f"L{layer}" for layer in range(n_layers)] + ["target"], "showgrid": True, "gridcolor": "#eee", "zeroline": False, "range": [-1.6, n_layers + 0.8]},
        "legend": {"orientation": "h", "y": 1.06, "x": 0}, "dragmode": False, "clickmode": "event+select", "hovermode": "closest",
    }
    return figure(traces, layout)
