"""A model card's learning curve: held-out top-1 legal rate (overall and per token kind) by step."""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go


def learning_curve_table(history: list[dict]) -> pd.DataFrame:
    """Steps as the index; columns: all tokens, then each token kind (for a small native chart)."""
    rows = {h["step"]: {"all tokens": h["top1_legal"], **h.get("by_kind", {})} for h in history}
    return pd.DataFrame.from_dict(rows, orient="index").sort_index()


def learning_curve_figure(history: list[dict], height: int = 220) -> go.Figure:
    """``history``: the card's evaluations (``step``, ``top1_legal``, optional ``by_kind``)."""
    fig = go.Figure()
    steps = [h["step"] for h in history]
    fig.add_trace(go.Scatter(x=steps, y=[h["top1_legal"] for h in history], mode="lines+markers", name="all tokens"))
    kinds = sorted({k for h in history for k in h.get("by_kind", {})})
    for kind in kinds:
        points = [(h["step"], h["by_kind"][kind]) for h in history if kind in h.get("by_kind", {})]
        fig.add_trace(go.Scatter(x=[p[0] for p in points], y=[p[1] for p in points], mode="lines", name=kind, line=dict(dash="dot")))
    fig.update_layout(
        height=height, margin=dict(l=40, r=10, t=30, b=30), xaxis_title="training step", yaxis=dict(title="top-1 legal", range=[0, 1]),
        legend=dict(orientation="h", y=1.2, font=dict(size=10)), title=dict(text="Held-out top-1 legal rate", font=dict(size=12)),
    )
    return fig
