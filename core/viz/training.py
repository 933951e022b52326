"""A model card's learning curve: held-out top-1 legal rate (overall and per token kind) by step."""

from __future__ import annotations

import pandas as pd


def learning_curve_table(history: list[dict]) -> pd.DataFrame:
    """Steps as the index; columns: all tokens, then each token kind (for a small native chart)."""
    rows = {h["step"]: {"all tokens": h["top1_legal"], **h.get("by_kind", {})} for h in history}
    return pd.DataFrame.from_dict(rows, orient="index").sort_index()


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
    if isinstance(steps, int) and isinstance(planned, int) and steps < planned:
        text += (f" The run stopped early, at {steps:,} of the {planned:,} steps its command plans (the learning-rate schedule is"
                 f" the planned one, cut there). The command below trains all of them from scratch, or resumes a run folder that holds the checkpoint.")
    return text
