"""Figures for the logit lens page: legality by depth, DLA grids, attention grids."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go


def lens_legality_figure(result: dict) -> go.Figure:
    """Top-1 legal rate and illegal probability mass at each lens point."""
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=result["labels"], y=result["top1_legal"], mode="lines+markers", name="top-1 legal"))
    fig.add_trace(go.Scatter(x=result["labels"], y=result["illegal_mass"], mode="lines+markers", name="illegal probability mass", line=dict(dash="dot")))
    for kind, values in result.get("by_kind", {}).items():
        n = result.get("kind_positions", {}).get(kind, 0)
        fig.add_trace(go.Scatter(x=result["labels"], y=values, mode="lines", name=f"top-1 legal: {kind} ({n:,})", line=dict(dash="dash", width=1.5)))
    fig.update_layout(
        # The legend sits under the axis: with one line per token kind it would cover the curves.
        # Two legend entries a row while they fit; with many kinds they wrap one a row.
        height=300 + 22 * ((2 + len(result.get("by_kind", {})) + 1) // 2 if len(result.get("by_kind", {})) <= 4 else 2 + len(result.get("by_kind", {}))),
        margin=dict(l=40, r=10, t=30, b=30), yaxis=dict(tickformat=".0%", range=[0, 1]),
        xaxis_title="read out after", legend=dict(orientation="h", y=-0.5, yanchor="top", x=0),
        title=dict(text=f"Logit lens over {result['games']} games ({result['positions']:,} positions)", font=dict(size=13)),
    )
    return fig


def dla_figure(values: np.ndarray, labels: list[str], kinds: list[str], layers: list[int], n_heads: int, title: str) -> go.Figure:
    """Layer x (heads, attention bias, MLP) heatmap of direct effects; embeddings in the title."""
    n_layers = max(layers) + 1
    grid = np.zeros((n_layers, n_heads + 2))
    text = [["" for _ in range(n_heads + 2)] for _ in range(n_layers)]
    head_i = {}
    for v, label, kind, layer in zip(values, labels, kinds, layers):
        if kind == "head":
            col = head_i.get(layer, 0)
            head_i[layer] = col + 1
        elif kind == "attn_bias":
            col = n_heads
        elif kind == "mlp":
            col = n_heads + 1
        else:
            continue
        grid[layer, col] = v
        text[layer][col] = f"{label}: {v:+.3f}"
    embed = sum(v for v, k in zip(values, kinds) if k == "embed")
    lim = float(np.abs(grid).max()) or 1.0
    x = [f"H{h}" for h in range(n_heads)] + ["attn bias", "MLP"]
    y = [f"L{layer}" for layer in range(n_layers)]
    fig = go.Figure(go.Heatmap(z=grid, x=x, y=y, hoverinfo="skip", colorscale="RdBu", zmid=0, zmin=-lim, zmax=lim, colorbar=dict(thickness=12, title="effect")))
    # Heatmaps cannot be selected in plotly: an invisible marker per cell carries the hover and,
    # for heads, the click (``customdata`` = layer, head).
    cells = [(layer, col) for layer in range(n_layers) for col in range(n_heads + 2)]
    fig.add_trace(go.Scatter(
        x=[x[c] for _, c in cells], y=[y[layer] for layer, _ in cells], mode="markers", marker=dict(size=18, symbol="square", opacity=0),
        customdata=[[layer, c] if c < n_heads else [layer] for layer, c in cells],
        hovertext=[text[layer][c] + ("<br>click: its attention pattern" if c < n_heads else "") for layer, c in cells], hoverinfo="text", showlegend=False,
    ))
    fig.update_layout(height=60 + 34 * n_layers, margin=dict(l=40, r=10, t=40, b=30), yaxis=dict(autorange="reversed"),
                      title=dict(text=f"{title} · embeddings {embed:+.2f}", font=dict(size=13)), dragmode=False, clickmode="event+select", hovermode="closest")
    return fig


def attention_grid_figure(patterns: np.ndarray, dest: int, move_labels: list[str]) -> go.Figure:
    """Every head's attention from position ``dest`` to earlier moves: rows = heads, columns = moves."""
    n_layers, n_heads = patterns.shape[:2]
    rows = patterns[:, :, dest, : dest + 1].reshape(n_layers * n_heads, dest + 1)
    names = [f"L{layer}H{h}" for layer in range(n_layers) for h in range(n_heads)]
    x = [f"{i + 1}. {m}" for i, m in enumerate(move_labels[: dest + 1])]
    hover = [[f"{names[r]} at move {dest + 1} ({move_labels[dest]}) → move {c + 1} ({move_labels[c]}): {rows[r, c]:.3f}" for c in range(dest + 1)] for r in range(len(names))]
    fig = go.Figure(go.Heatmap(z=rows, x=x, y=names, text=hover, hoverinfo="text", colorscale="Greys", zmin=0, zmax=1, colorbar=dict(thickness=12, title="attn")))
    fig.update_layout(height=max(300, 14 * len(names) + 80), margin=dict(l=60, r=10, t=30, b=60), yaxis=dict(autorange="reversed", tickfont=dict(size=11, color="#333")),
                      xaxis=dict(type="category", tickfont=dict(size=9)), title=dict(text=f"Attention from move {dest + 1} ({move_labels[dest]})", font=dict(size=13)))
    return fig


def gap_figure(gap: np.ndarray, components: list[str], positions: list[str]) -> go.Figure:
    """Components x positions: direct effect on mean legal minus mean illegal logit (diverging, 0
    white, positive blue as in ``dla_figure``)."""
    lim = float(np.abs(gap).max()) or 1.0
    hover = [[f"{c} at {p}: {gap[i, j]:+.3f}" for j, p in enumerate(positions)] for i, c in enumerate(components)]
    fig = go.Figure(go.Heatmap(z=gap, x=list(range(len(positions))), y=components, text=hover, hoverinfo="text", colorscale="RdBu", zmin=-lim, zmax=lim, colorbar=dict(thickness=12, title="gap")))
    fig.update_layout(
        height=max(260, 18 * len(components) + 90), margin=dict(l=70, r=10, t=10, b=70), yaxis=dict(autorange="reversed", tickfont=dict(size=11, color="#333")),
        xaxis=dict(tickmode="array", tickvals=list(range(len(positions))), ticktext=positions, tickfont=dict(size=11, color="#333"), tickangle=0 if len(positions) <= 12 or max(map(len, positions)) <= 2 else -45),
    )
    return fig


def _shown_token(token: str) -> str:
    return "␣" if token == " " else token


def char_lens_figure(next_token: np.ndarray, labels: list[str], vocab: tuple[str, ...], legal: np.ndarray, top: int = 8) -> go.Figure:
    """Lens points x tokens: each read-out's probability of the next token (a move's first
    character), columns for the tokens that are ever among a read-out's ``top`` or legal, legal
    ones marked with a dot under their label."""
    order = np.argsort(-next_token, axis=1)[:, :top]
    shown = sorted(set(order.reshape(-1).tolist()) | set(np.flatnonzero(legal).tolist()), key=lambda t: (-float(next_token[-1, t]), t))
    z = next_token[:, shown]
    names = [_shown_token(vocab[t]) + (" •" if legal[t] else "") for t in shown]
    hover = [[f"{labels[p]} → {_shown_token(vocab[t])}: {next_token[p, t]:.3f}{' (legal)' if legal[t] else ' (illegal)'}" for t in shown] for p in range(len(labels))]
    fig = go.Figure(go.Heatmap(z=z, x=names, y=labels, text=hover, hoverinfo="text", colorscale="Blues", zmin=0, zmax=max(float(z.max()), 1e-9), colorbar=dict(thickness=12, title="p")))
    fig.update_layout(
        height=80 + 22 * len(labels), margin=dict(l=70, r=10, t=34, b=40), yaxis=dict(autorange="reversed", tickfont=dict(size=11, color="#333")),
        xaxis=dict(tickfont=dict(size=13, color="#333"), type="category"), title=dict(text="Next character after each layer (• legal as a move's first character)", font=dict(size=13)),
    )
    return fig


def token_effects_figure(values: np.ndarray, vocab: tuple[str, ...], title: str, k: int = 12) -> go.Figure:
    """The tokens a unit's output pushes up and down most (a direction read through the
    unembedding), for games whose tokens are not squares: a horizontal bar per token."""
    order = np.argsort(values)
    picked = list(order[:k // 2]) + list(order[-(k - k // 2):])
    picked = sorted(set(int(i) for i in picked), key=lambda i: values[i])
    fig = go.Figure(go.Bar(
        x=[float(values[i]) for i in picked], y=[f"'{_shown_token(vocab[i])}'" for i in picked], orientation="h",
        marker_color=["#2166ac" if values[i] > 0 else "#b2182b" for i in picked], hovertemplate="%{y}: %{x:+.3f}<extra></extra>",
    ))
    fig.update_layout(height=60 + 20 * len(picked), margin=dict(l=50, r=10, t=34, b=30), title=dict(text=title, font=dict(size=13)), xaxis_title="logit effect", yaxis=dict(type="category", tickfont=dict(size=13)))
    return fig
