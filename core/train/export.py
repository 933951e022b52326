"""Export a training run to the bundled model format that ``core.models.load_model`` reads."""

from __future__ import annotations

import platform
import time
from dataclasses import asdict
from pathlib import Path

import torch

from core.interp.shared.legality import evaluate_legality
from core.models.bundle import load_bundle, save_bundle
from core.models.convert import gpt_to_tl_state_dict, tl_config_for
from core.train.next_move import Trainer, held_out_games


def export_run(trainer: Trainer, out_dir: str | Path, name: str, command: str, eval_games: int = 2000) -> dict:
    """Write ``out_dir`` and return its card; the metrics are measured on the exported model."""
    cfg = trainer.cfg
    game = cfg.game_plugin()
    config = {
        "name": name,
        "game": game.name,
        "board_size": game.rows,
        **({"tokenizer": cfg.tokenizer or "uci-squares"} if game.name == "chess" else {}),
        "tl_config": tl_config_for(cfg.gpt_config()),
    }
    card = {
        "name": name,
        "description": f"{cfg.n_layers}-layer, {cfg.d_model}-wide next-move GPT for {game.title}, trained by BoardLens on synthetic (uniformly random legal) games.",
        "command": command,
        "train_config": asdict(cfg),
        "parameters": trainer.model.n_params(),
        "steps": trainer.state.step,
        "games_seen": trainer.state.games_seen,
        "wall_time_s": round(trainer.state.wall_time_s, 1),
        "history": trainer.state.history,
        "timing": trainer.state.timing,
        "exported": time.strftime("%Y-%m-%d %H:%M:%S"),
        "hardware": f"{platform.machine()}, trained on {', '.join(sorted({t.get('device', 'cpu') for t in trainer.state.timing} or {'cpu'}))}, torch {torch.__version__}",
    }
    if trainer.state.earlier:  # a warm start: the card covers every stage of the training
        from core.train.warm_start import RUN_FIELDS, combined_card_fields

        this_stage = {k: card[k] for k in RUN_FIELDS}
        this_stage.update(planned_steps=cfg.steps, seed=cfg.seed, init_from=cfg.init_from)
        card.update(combined_card_fields(trainer.state.earlier, this_stage))
    weights = {k: v.detach().cpu() for k, v in gpt_to_tl_state_dict(trainer.model).items()}
    save_bundle(out_dir, config, weights, card)
    model, _, _ = load_bundle(out_dir)
    games = held_out_games(eval_games, game)
    metrics = evaluate_legality(model, games, game)
    card["eval"] = {**metrics, "games_seed": "held-out seed (never a training seed)"}
    if game.move_end_token is not None:  # moves of several characters: also the moves it writes
        from core.interp.shared.move_legality import whole_move_legality
        from core.models.registry import load_model

        n = min(eval_games, WHOLE_MOVE_GAMES)
        card["eval"]["whole_move"] = {**whole_move_legality(load_model(str(out_dir)), games[:n]), "decoding": "greedy, from the true game so far, until the space that ends the move; legal: python-chess reads it as a legal move (parse_san, as push_san); exact: it is the standard SAN, check sign included"}
    save_bundle(out_dir, config, weights, card)
    return card


WHOLE_MOVE_GAMES = 500  # held-out games whose every move the model writes greedily for the card
