"""Figures for probes: the probe's board, accuracy by layer, intervention sweeps."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go

from core.viz.board import board_figure, percent_format


def probe_board_figure(probs: np.ndarray, truth: np.ndarray, board: np.ndarray | None, title: str | None = None, cell_px: int = 40, show_scale: bool = True, style: dict | None = None) -> go.Figure:
    """The board a probe reads: its most likely class per square, confidence as colour, errors crossed.

    ``probs (rows, cols, n_classes)``; ``truth (rows, cols)`` classes; ``board``: the probe's most
    likely classes already turned into the game's pieces (None for a yes/no target, drawn as
    P(yes) colours); ``style``: the game's ``board_style``.
    """
    confidence = probs.max(-1).reshape(-1)
    errors = (probs.argmax(-1) != truth).reshape(-1)
    style = style or {}
    if board is None:
        empty = np.zeros(probs.shape[:2], dtype=np.int8)
        return board_figure(empty, probs[..., 1].reshape(-1), errors=errors, value_name="P(yes)", colorscale="Purples", zmax=1.0, title=title, cell_px=cell_px, show_scale=show_scale, **{**style, "pieces": style.get("pieces", "discs")})
    return board_figure(board, confidence, errors=errors, piece_opacity=confidence, value_name="confidence", colorscale="Greens", zmin=1 / probs.shape[-1], zmax=1.0, title=title, cell_px=cell_px, show_scale=show_scale, **style)


def layer_accuracy_figure(summary: dict, targets: list[str] | None = None) -> go.Figure:
    """Held-out accuracy per layer for each target, with the random-init baseline dashed."""
    fig = go.Figure()
    palette = ["#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#e377c2"]
    for i, (target, entry) in enumerate(summary.items()):
        if targets and target not in targets:
            continue
        layers = [h.replace("blocks.", "L").replace(".hook_resid_", " ") for h in entry["hooks"]]
        colour = palette[i % len(palette)]
        fig.add_trace(go.Scatter(x=layers, y=entry["accuracy"], mode="lines+markers", name=target, line=dict(color=colour)))
        if "random_accuracy" in entry:
            fig.add_trace(go.Scatter(x=layers, y=entry["random_accuracy"], mode="lines", name=f"{target} (random-init model)", line=dict(color=colour, dash="dot")))
    shown = [y for trace in fig.data for y in trace.y]
    fig.update_layout(margin=dict(l=40, r=10, t=30, b=30), yaxis=dict(title="held-out accuracy per square", tickformat=percent_format(shown)), xaxis_title="layer", legend=dict(font=dict(size=10), orientation="h", y=-0.3), height=420)
    return fig


def sweep_figure(sweep: dict, measure: str = "legal-set error") -> go.Figure:
    """A measure against the edited board by scale (legal-set error; or, for models that write
    moves, the share of moves legal on it): probe direction vs random direction."""
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=sweep["scale"], y=sweep["probe"], mode="lines+markers", name="probe direction"))
    fig.add_trace(go.Scatter(x=sweep["scale"], y=sweep["random"], mode="lines+markers", name="random direction (control)", line=dict(dash="dot")))
    share = measure != "legal-set error"
    fig.update_layout(height=280, margin=dict(l=40, r=10, t=30, b=30), xaxis_title="edit scale (0 = no edit)",
                      yaxis=dict(title=measure, rangemode="tozero", **({"tickformat": ".0%", "range": [0, 1]} if share else {})))
    return fig


def skill_figure(result: dict) -> go.Figure:
    """The skill probe's held-out accuracy by layer: the model, its random-init copy (dotted) and
    the majority bin (chance, dashed grey)."""
    layers = [h.replace("blocks.", "L").replace(".hook_resid_", " ") for h in result["hooks"]]
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=layers, y=result["accuracy"], mode="lines+markers", name="trained model", line=dict(color="#1f77b4")))
    if result.get("random_accuracy"):
        fig.add_trace(go.Scatter(x=layers, y=result["random_accuracy"], mode="lines+markers", name="random-init model", line=dict(color="#1f77b4", dash="dot")))
    fig.add_trace(go.Scatter(x=layers, y=[result["chance"]] * len(layers), mode="lines", name="chance (majority bin)", line=dict(color="#999999", dash="dash")))
    shown = [y for trace in fig.data for y in trace.y]
    fig.update_layout(height=320, margin=dict(l=40, r=10, t=30, b=30), xaxis_title="layer",
                      yaxis=dict(title="held-out accuracy", tickformat=percent_format(shown)), legend=dict(orientation="h", y=-0.3, font=dict(size=10)))
    return fig
