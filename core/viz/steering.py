"""Figures for steering: a strength sweep, the unit beside its random control."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots


def sweep_figure(strengths: np.ndarray, panels: list[tuple[str, np.ndarray, bool]], unit_name: str, control_name: str, strength_name: str, current: float | None = None) -> go.Figure:
    """One small chart per read-out, ``panels = [(title, values (2, S): unit and control, is a
    probability)]``: the unit solid, the control dashed, the strength on screen marked."""
    fig = make_subplots(rows=1, cols=len(panels), subplot_titles=[p[0] for p in panels], horizontal_spacing=0.07)
    for col, (title, values, is_prob) in enumerate(panels, start=1):
        for row, (name, dash, colour) in enumerate(((unit_name, "solid", "#1f77b4"), (control_name, "dash", "#7f7f7f"))):
            fig.add_trace(
                go.Scatter(x=strengths, y=values[row], mode="lines+markers", name=name, line=dict(dash=dash, color=colour), marker=dict(size=4), showlegend=col == 1,
                           hovertemplate=f"{name}<br>{strength_name} %{{x:.3g}}<br>{title} %{{y:{'.1%' if is_prob else '.3f'}}}<extra></extra>"),
                row=1, col=col,
            )
        if is_prob:
            fine = float(np.nanmax(values)) < 0.1  # small probabilities: whole percents would all read 0%
            fig.update_yaxes(tickformat=".1%" if fine else ".0%", rangemode="tozero", row=1, col=col)
        else:
            fig.update_yaxes(rangemode="tozero", row=1, col=col)
        if current is not None:
            fig.add_vline(x=current, line=dict(color="#d62728", width=1, dash="dot"), row=1, col=col)
    fig.update_xaxes(title_text=strength_name, title_font=dict(size=11))
    fig.update_annotations(font_size=12)
    fig.update_layout(height=290, margin=dict(l=40, r=10, t=40, b=40), legend=dict(orientation="h", y=-0.32, yanchor="top", x=0))
    return fig
