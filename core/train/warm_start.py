"""Train a bundled model further: its weights start a new run, its card's stages go with it.

A bundle ships the model, not the training checkpoint (the optimiser state would double its size),
so a model trained on one machine can be continued on another only from its weights. The new run
starts a fresh optimiser and learning-rate schedule and its own game seed; the card of the model it
exports lists every stage (command, steps, games, wall time, learning curve), so the totals and
the curve cover the whole training and the commands reproduce it stage by stage.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from core.devices import SettingError
from core.models.bundle import WEIGHTS, load_bundle
from core.models.convert import tl_config_for, tl_to_gpt_state_dict
from core.models.errors import ModelLoadError
from core.models.gpt import GPTConfig

RUN_FIELDS = ("command", "steps", "games_seen", "wall_time_s", "history", "timing")  # a card's fields of one run
STAGE_FIELDS = (*RUN_FIELDS, "planned_steps", "seed")


def stages_of(card: dict) -> list[dict]:
    """A bundle card's training as a list of stages (a card made in one run is one stage)."""
    if isinstance(card.get("stages"), list):
        return [dict(s) for s in card["stages"] if isinstance(s, dict)]
    train_config = card.get("train_config") if isinstance(card.get("train_config"), dict) else {}
    stage = {k: card.get(k) for k in RUN_FIELDS}
    stage.update(planned_steps=train_config.get("steps"), seed=train_config.get("seed"))
    return [stage]


def warm_start(bundle: str | Path, cfg: GPTConfig, game: str, tokenizer: str, board_size: int) -> tuple[dict[str, torch.Tensor], list[dict]]:
    """``(GPT state dict, the bundle's stages)`` for a run of shape ``cfg`` on ``game``.

    ``SettingError`` when the bundle is missing, damaged (``load_bundle`` checks its sha256), or a
    different model (game, tokenizer, board size or any size in its config): a run only continues
    the model it was given.
    """
    try:
        model, config, card = load_bundle(bundle)
    except ModelLoadError as exc:
        raise SettingError(f"--init-from {bundle}: {exc}") from None
    expected = tl_config_for(cfg)
    theirs = config["tl_config"]
    differ = [k for k in expected if k != "original_architecture" and theirs.get(k) != expected[k]]
    if config.get("game") != game or (game == "chess" and (config.get("tokenizer") or "uci-squares") != (tokenizer or "uci-squares")) or config.get("board_size") != board_size:
        differ.insert(0, "game")
    if differ:
        shown = ", ".join(f"{k} {theirs.get(k, config.get(k))!r} (run: {expected.get(k, game)!r})" for k in differ[:4])
        raise SettingError(f"--init-from {bundle}: a different model from this run's settings: {shown}")
    stages = stages_of(card)
    stages[-1]["weights_sha256"] = config["sha256"][WEIGHTS] if isinstance(config.get("sha256"), dict) else None
    return tl_to_gpt_state_dict(model.state_dict(), cfg), json.loads(json.dumps(stages))


def combined_card_fields(earlier: list[dict], this_stage: dict) -> dict:
    """The card's totals and learning curve over every stage: steps and games add up, and each
    stage's evaluations are placed after the steps of the stages before it."""
    stages = [*earlier, this_stage]
    history, timing, offset = [], [], 0
    for stage in stages:
        for entry in stage.get("history") or []:
            history.append({**entry, "step": offset + int(entry["step"])})
        for entry in stage.get("timing") or []:
            timing.append({**entry, "step": offset + int(entry["step"])})
        offset += int(stage.get("steps") or 0)
    total = lambda key: sum(s.get(key) or 0 for s in stages)  # noqa: E731
    return {
        "steps": offset,
        "games_seen": int(total("games_seen")),
        "wall_time_s": round(float(total("wall_time_s")), 1),
        "history": history,
        "timing": timing,
        "stages": [{k: s.get(k) for k in (*STAGE_FIELDS, "init_from", "weights_sha256") if k in s} for s in stages],
    }
