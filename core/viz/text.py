"""Figures and HTML for token sequences: shaded text, per-token losses, the lens as a table.

Token texts arrive as plain strings (any user text); every builder escapes them, so a prompt that
holds HTML or markdown shows as the characters it is.
"""

from __future__ import annotations

import html

import numpy as np
import plotly.graph_objects as go


SHADE = (255, 120, 0)  # orange: activation or loss
NEWLINE = "↵"


def visible(text: str) -> str:
    """A token's text with its whitespace made visible (a table cell or an axis label)."""
    return text.replace("\n", NEWLINE).replace("\t", "⇥").replace(" ", "·") if text.strip() == "" or text != text.strip() else text


def label(text: str) -> str:
    """A token's text for a plotly label: whitespace visible, HTML escaped (plotly reads tags)."""
    return html.escape(visible(text), quote=False)  # plotly reads &lt; &gt; &amp; but shows &quot; as typed


def token_html(spans: list[str], values: np.ndarray | None = None, vmax: float | None = None, titles: list[str] | None = None, mark: int | None = None) -> str:
    """The text as spans, each shaded by ``values`` (0..vmax), with ``titles`` on hover; the token
    at ``mark`` is outlined. Newlines break the line and show as ↵."""
    values = np.zeros(len(spans)) if values is None else np.nan_to_num(np.asarray(values, dtype=float))
    top = float(vmax if vmax else max(values.max(initial=0.0), 1e-9))
    parts = []
    for i, text in enumerate(spans):
        alpha = float(np.clip(values[i] / top, 0.0, 1.0)) if top > 0 else 0.0
        style = f"background: rgba({SHADE[0]},{SHADE[1]},{SHADE[2]},{alpha:.2f});"
        if mark is not None and i == mark:
            style += "outline: 2px solid #1f77b4;"
        title = f' title="{html.escape(titles[i], quote=True)}"' if titles else ""
        body = html.escape(text).replace("\n", f'<span style="color:#aaa">{NEWLINE}</span><br>')
        parts.append(f'<span style="{style}"{title}>{body}</span>')
    return '<div style="font-family: monospace; white-space: pre-wrap; line-height: 1.6; font-size: 0.9rem">' + "".join(parts) + "</div>"


def loss_strip_figure(labels: list[str], clean: np.ndarray, other: np.ndarray | None = None, other_name: str = "with the SAE") -> go.Figure:
    """Per-token loss of the real next token (and, with ``other``, its loss under a change)."""
    x = list(range(len(labels)))
    fig = go.Figure()
    fig.add_bar(x=x, y=clean, name="model", marker_color="#1f77b4", hovertext=[label(t) for t in labels], hovertemplate="%{hovertext}: %{y:.2f} nats<extra>model</extra>")
    if other is not None:
        fig.add_bar(x=x, y=other, name=other_name, marker_color="#ff7f0e", hovertext=[label(t) for t in labels], hovertemplate="%{hovertext}: %{y:.2f} nats<extra>" + other_name + "</extra>")
    fig.update_layout(barmode="group", height=260, margin=dict(l=40, r=10, t=30, b=60), title="Loss of the token that really comes next (nats)", legend=dict(orientation="h", y=1.15))
    fig.update_xaxes(tickmode="array", tickvals=x, ticktext=[label(t[:8]) for t in labels], tickangle=-60, type="category", tickfont=dict(size=11))
    return fig


def top_tokens_figure(names: list[str], probs: np.ndarray, title: str) -> go.Figure:
    """A horizontal bar chart of the top next tokens (the first on top)."""
    fig = go.Figure(go.Bar(x=probs[::-1], y=[f"{label(n)} " for n in names[::-1]], orientation="h", marker_color="#1f77b4", text=[f"{p:.1%}" for p in probs[::-1]], textposition="auto"))
    fig.update_layout(height=40 + 24 * len(names), margin=dict(l=10, r=10, t=30, b=20), title=title, xaxis=dict(tickformat=".0%"))
    fig.update_yaxes(type="category", tickfont=dict(size=12, family="monospace"))
    return fig


def lens_table_figure(point_labels: list[str], token_labels: list[str], top_names: list[list[str]], top_probs: np.ndarray, first_position: int = 0) -> go.Figure:
    """The logit lens as a table: one row per position (the token read there), one column per lens
    point; each cell is the top next token after that point, shaded by its probability."""
    n_points, n_pos = top_probs.shape
    text = [[label(top_names[i][p][:14]) for i in range(n_points)] for p in range(n_pos)]
    rows = [f"{first_position + p}: {label(t[:12])}" for p, t in enumerate(token_labels)]
    fig = go.Figure(go.Heatmap(
        z=top_probs.T, x=point_labels, y=rows, text=text, texttemplate="%{text}", textfont=dict(size=13, family="monospace"),
        colorscale="Blues", zmin=0, zmax=1, colorbar=dict(title="p", tickformat=".0%"), xgap=2, ygap=2,
        hovertemplate="at %{y}, after %{x}: %{text} (%{z:.1%})<extra></extra>",
    ))
    fig.update_layout(height=90 + 24 * n_pos, margin=dict(l=140, r=10, t=60, b=10), title="Top next token after each layer (logit lens)")
    fig.update_xaxes(type="category", side="top", tickfont=dict(size=13))
    fig.update_yaxes(type="category", autorange="reversed", tickfont=dict(size=12, family="monospace"))
    return fig


def contribution_figure(labels: list[str], values: np.ndarray, title: str) -> go.Figure:
    """Direct effect of each component on a logit (bars, positive up)."""
    colours = ["#2ca02c" if v >= 0 else "#d62728" for v in values]
    fig = go.Figure(go.Bar(x=labels, y=values, marker_color=colours, hovertemplate="%{x}: %{y:.3f}<extra></extra>"))
    fig.update_layout(height=300, margin=dict(l=40, r=10, t=40, b=80), title=title)
    fig.update_xaxes(type="category", tickangle=-45, tickfont=dict(size=12))
    return fig


def histogram_figure(values: np.ndarray, title: str) -> go.Figure:
    fig = go.Figure(go.Histogram(x=values, nbinsx=50, marker_color="#ff7f0e"))
    fig.update_layout(height=220, margin=dict(l=40, r=10, t=40, b=30), title=title, yaxis=dict(type="log", title="firings"), bargap=0.05)
    return fig
