"""A model card: its learning curve by step, and how its training is summed up and reproduced."""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go

from core.viz.fast import figure

CURVE_COLOURS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b")


def learning_curve_table(history: list[dict]) -> pd.DataFrame:
    """Steps as the index; columns: all tokens, then each token kind."""
    rows = {h["step"]: {"all tokens": h["top1_legal"], **h.get("by_kind", {})} for h in history}
    return pd.DataFrame.from_dict(rows, orient="index").sort_index()


def learning_curve_figure(table: pd.DataFrame, y_title: str, percent: bool = False, height: int = 190, dashed: tuple[str, ...] = ()) -> go.Figure:
    """One line per column of ``table`` (steps as its index), for the sidebar's model card;
    the columns named in ``dashed`` (a baseline) are dotted.

    Built from plain dicts (``core.viz.fast``): the card is in the sidebar of every page, so it is
    drawn on every rerun, where a native ``st.line_chart`` costs ~50 ms of Altair conversion
    (and ~1.4 s to import Altair on a process's first page)."""
    steps = [int(s) for s in table.index]
    data = []
    for i, column in enumerate(table.columns):
        values = table[column].astype(float)
        data.append({
            "type": "scatter", "mode": "lines", "name": str(column), "x": steps, "y": [None if pd.isna(v) else float(v) for v in values],
            "line": {"color": CURVE_COLOURS[i % len(CURVE_COLOURS)], "width": 2, "dash": "dot" if column in dashed else "solid"},
            "hovertemplate": f"step %{{x:,}}<br>{column}: %{{y:{'.1%' if percent else '.3f'}}}<extra></extra>",
        })
    legend_rows = len(data) if len(data) > 1 else 0  # the sidebar is narrow: one name a row
    layout = {
        # The x axis is the training step (the caption above says so); the legend sits under its
        # tick labels, with room made for it, so no label runs into another.
        "height": height + 20 * legend_rows, "margin": {"l": 44, "r": 8, "t": 8, "b": 24 + 20 * legend_rows},
        "xaxis": {"tickformat": ",d"},
        "yaxis": {"title": {"text": y_title}, "tickformat": ".0%" if percent else ".2f"},
        "showlegend": len(data) > 1, "legend": {"orientation": "h", "x": 0, "y": 0, "yref": "container", "yanchor": "bottom", "font": {"size": 10}},
    }
    return figure(data, layout)


def training_summary(card: dict) -> str:
    """One line on how a bundled model was trained, saying so when the run stopped before the
    steps its command plans (the command's ``--steps`` would otherwise read as what was done)."""
    steps = card.get("steps")
    planned = (card.get("train_config") or {}).get("steps") if isinstance(card.get("train_config"), dict) else None
    hours = float(card.get("wall_time_s") or 0) / 3600
    games = card.get("games_seen")
    text = f"{steps:,} steps" if isinstance(steps, int) else f"{steps or '?'} steps"
    text += f", {games:,} games" if isinstance(games, int) else f", {games or '?'} games"
    text += f", {hours:.1f} h of training."
    stages = [st for st in card.get("stages") or [] if isinstance(st, dict)]
    if len(stages) > 1:
        return text + " " + stages_summary(stages)
    if isinstance(steps, int) and isinstance(planned, int) and steps < planned:
        text += (f" The run stopped early, at {steps:,} of the {planned:,} steps its command plans (the learning-rate schedule is"
                 f" the planned one, cut there). The command below trains all of them from scratch, or resumes a run folder that holds the checkpoint.")
    return text


def stages_summary(stages: list[dict]) -> str:
    """How a model trained in stages got there: each later stage started from the weights the
    one before exported, with a fresh optimiser, schedule and game seed."""
    parts = []
    for i, stage in enumerate(stages, 1):
        steps, planned = stage.get("steps"), stage.get("planned_steps")
        part = f"stage {i}: {steps:,} steps" if isinstance(steps, int) else f"stage {i}: ? steps"
        if isinstance(steps, int) and isinstance(planned, int) and steps < planned:
            part += f" (stopped early, of {planned:,} planned)"
        part += " from random weights" if i == 1 else f" from stage {i - 1}'s weights, fresh optimiser and schedule"
        if stage.get("seed") is not None:
            part += f", game seed {stage['seed']}"
        parts.append(part)
    return f"Trained in {len(stages)} stages: " + "; ".join(parts) + ". The commands below reproduce them in order."


def stage_commands(card: dict) -> str:
    """Every command that made the model, one stage per line (``--until-step`` where a stage
    stopped before its planned steps, and the export between stages)."""
    stages = [st for st in card.get("stages") or [] if isinstance(st, dict)]
    if len(stages) < 2:
        return str(card.get("command", ""))
    name = card.get("name", "model")
    lines = []
    for stage in stages:
        command = str(stage.get("command", ""))
        steps, planned = stage.get("steps"), stage.get("planned_steps")
        if isinstance(steps, int) and isinstance(planned, int) and steps < planned:
            command += f" --until-step {steps}"
        run = command.split()[4] if len(command.split()) > 4 else f"runs/{name}"
        lines += [command, f"python -m core.train export {run} assets/models/{name} --name {name}"]
    return "\n".join(lines)
