"""Plotly figures from plain dicts, without plotly's per-property validation.

Building a ``go.Figure`` trace by trace validates every property in Python: ~10 ms for one small
board, ~170 ms for a 6 x 8 grid of attention heads made with ``make_subplots``. A page that draws a
dozen boards after every move spends most of its time there. The dicts built here are the same
figures (plotly.js reads the same JSON); what validation also did is done explicitly: named
colour scales are resolved to plotly's own lists (plotly.js knows fewer names, and reads some of
them, e.g. "RdBu" and "Blues", the other way round), and subplot grids get their axis domains
from ``grid_axes``.
"""

from __future__ import annotations

from functools import lru_cache

import plotly.colors
import plotly.graph_objects as go


@lru_cache(maxsize=64)
def _scale(name: str) -> tuple[tuple[float, str], ...]:
    return tuple((float(p), c) for p, c in plotly.colors.get_colorscale(name))


def resolve_colorscale(scale):
    """A named colour scale as plotly Python means it, as an explicit list; anything else as is."""
    return [list(stop) for stop in _scale(scale)] if isinstance(scale, str) else scale


def figure(data: list[dict], layout: dict) -> go.Figure:
    """A figure from trace dicts (each with its ``type``) and a layout dict, not validated."""
    for trace in data:
        if "colorscale" in trace:
            trace["colorscale"] = resolve_colorscale(trace["colorscale"])
        marker = trace.get("marker")
        if isinstance(marker, dict) and "colorscale" in marker:
            marker["colorscale"] = resolve_colorscale(marker["colorscale"])
    return go.Figure({"data": data, "layout": layout}, _validate=False)


def grid_axes(rows: int, cols: int, h_spacing: float, v_spacing: float) -> tuple[list[tuple[str, str]], dict, list[tuple[float, float, float, float]]]:
    """Axes for a ``rows x cols`` grid of subplots, as ``make_subplots`` lays them out.

    Returns the ``(xref, yref)`` of each cell in reading order (``x``/``y``, ``x2``/``y2``, ...),
    the layout entries of their axes (each with its domain and anchor), and each cell's domain
    ``(x0, x1, y0, y1)`` for titles placed above it.
    """
    width = (1 - h_spacing * (cols - 1)) / cols
    height = (1 - v_spacing * (rows - 1)) / rows
    refs, axes, domains = [], {}, []
    for i in range(rows * cols):
        r, c = divmod(i, cols)
        n = "" if i == 0 else str(i + 1)
        # Rounded into [0, 1]: a sum of spacings can land a hair outside, which plotly refuses.
        x0, x1 = (min(max(round(v, 9), 0.0), 1.0) for v in (c * (width + h_spacing), c * (width + h_spacing) + width))
        y0, y1 = (min(max(round(v, 9), 0.0), 1.0) for v in (1 - r * (height + v_spacing) - height, 1 - r * (height + v_spacing)))
        refs.append((f"x{n}", f"y{n}"))
        axes[f"xaxis{n}"] = {"domain": [x0, x1], "anchor": f"y{n}"}
        axes[f"yaxis{n}"] = {"domain": [y0, y1], "anchor": f"x{n}"}
        domains.append((x0, x1, y0, y1))
    return refs, axes, domains
