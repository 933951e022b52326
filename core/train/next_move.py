"""Train a next-move GPT on synthetic games streamed from the engine.

Every step draws fresh uniformly random games (the published "synthetic" data set), so the model
must learn the rules rather than memorise games. Each game is seeded by ``(seed, step, its
index in the batch)`` (``game_stream``): a resumed run sees exactly the games an uninterrupted one
would have seen, and under ``torchrun`` each rank makes its own slice of every step's games.

Targets: ``"legal"`` (default) trains against the uniform distribution over the legal next moves,
which is the exact expectation of the sampled next move of a uniformly random player, so it
minimises the same expected loss with far less gradient noise; ``"sample"`` uses the sampled move.
"""

from __future__ import annotations

import json
import math
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F

from core.checksums import mismatch, sha256_of
from core.devices import bf16_is_fast
from core.games.base import Game
from core.games.registry import as_game, get_game
from core.interp.shared.legality import evaluate_legality
from core.train import distributed
from core.train.game_stream import GameStream, step_games
from core.models.gpt import GPT, GPTConfig

HELD_OUT_SEED = 2_000_000_007  # the evaluation games' seed; training games come from Philox counters


@dataclass
class TrainConfig:
    game: str = "othello"
    tokenizer: str = ""  # chess: "uci-squares"
    n_ctx: int = 0  # 0: the game's default context (Othello: the longest game; chess: 256 tokens)
    size: int = 8
    n_layers: int = 4
    d_model: int = 256
    n_heads: int = 8
    d_mlp: int = 1024
    batch_size: int = 256
    steps: int = 20_000
    lr: float = 1e-3
    min_lr_frac: float = 0.1
    warmup_steps: int = 300
    decay_steps: int = 0  # cosine decay ends here (0: at ``steps``); later steps train at the minimum LR
    weight_decay: float = 0.01
    grad_clip: float = 1.0
    target: str = "legal"
    seed: int = 0
    bf16: bool = True  # bf16 autocast where the device is fast at it (core.devices.bf16_is_fast); float32 elsewhere
    compile: bool = False  # torch.compile the training forward (~25 % faster here after ~1 min of compiling)
    eval_every: int = 1000
    eval_games: int = 500
    checkpoint_every_s: float = 120.0
    threads: int = 0  # 0: torch's default
    game_seeding: str = "per-game"  # "per-step": the stream of runs made before per-game seeds (one rank only)
    device: str = "auto"  # "auto": CUDA when available, else CPU
    workers: int = 0  # processes making games (0: a background thread of the trainer)
    init_from: str = ""  # a bundle folder: a new run starts from its weights (``warm_start``)

    def game_plugin(self) -> Game:
        return get_game(self.game, self.size, self.tokenizer, self.n_ctx)

    def gpt_config(self) -> GPTConfig:
        game = self.game_plugin()
        return GPTConfig(
            n_layers=self.n_layers,
            d_model=self.d_model,
            n_heads=self.n_heads,
            d_mlp=self.d_mlp,
            d_vocab=game.d_vocab,
            n_ctx=game.n_ctx,
        )


# Fields a resumed run may change without changing what it has learned so far. ``steps`` may only
# grow: the cosine decay keeps its end (``decay_steps``) and the extra steps run at the minimum LR,
# so ``--steps N --decay-steps D`` from scratch reproduces the extended run exactly.
OVERRIDABLE = ("eval_every", "eval_games", "checkpoint_every_s", "threads", "steps", "compile", "device", "workers")


@dataclass
class TrainState:
    step: int = 0
    games_seen: int = 0
    wall_time_s: float = 0.0
    history: list[dict] = field(default_factory=list)
    timing: list[dict] = field(default_factory=list)  # per evaluation: share of step time waiting for games, tokens/s
    earlier: list[dict] = field(default_factory=list)  # the stages of the bundle a warm start began from


def held_out_games(n: int, game: Game | int) -> np.ndarray:
    """The fixed evaluation games: drawn from a seed no training step uses."""
    return as_game(game).random_games(n, seed=HELD_OUT_SEED)


def make_batch(cfg: TrainConfig, step: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """All of a step's games: ``tokens``, ``target`` and ``valid`` (see ``game_stream.step_games``)."""
    return step_games(cfg, step)


def loss_sum(logits: torch.Tensor, target: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """Cross-entropy summed over the valid positions (ranks add these, then divide once)."""
    logp = F.log_softmax(logits.float(), dim=-1)
    if target.dtype == torch.int64:
        per_pos = -logp.gather(-1, target.unsqueeze(-1)).squeeze(-1)
    else:
        per_pos = -(target * logp).sum(-1)
    return (per_pos * valid).sum()


def loss_fn(logits: torch.Tensor, target: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy over the valid positions."""
    return loss_sum(logits, target, valid) / valid.sum().clamp(min=1)


def learning_rate(cfg: TrainConfig, step: int) -> float:
    if step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    decay = cfg.decay_steps or cfg.steps
    progress = min(1.0, (step - cfg.warmup_steps) / max(1, decay - cfg.warmup_steps))
    return cfg.lr * (cfg.min_lr_frac + (1 - cfg.min_lr_frac) * 0.5 * (1 + math.cos(math.pi * progress)))


def make_optimizer(model: GPT, cfg: TrainConfig) -> torch.optim.Optimizer:
    decay = [p for n, p in model.named_parameters() if p.dim() >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.dim() < 2]
    groups = [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=cfg.lr, betas=(0.9, 0.98))


CHECKPOINT_RECORD = "checkpoint.json"  # the checkpoint's sha256 and step, written after it


def write_checkpoint(run_dir: Path, name: str, payload: dict, step: int) -> None:
    """Save ``payload`` as ``run_dir/name`` with its sha256 in ``checkpoint.json``: both go to
    temporaries first and are renamed, so a kill never leaves half a file (``read_checkpoint``)."""
    tmp = run_dir / (name + ".tmp")
    torch.save(payload, tmp)
    record = json.dumps({"sha256": sha256_of(tmp), "step": step}) + "\n"
    (run_dir / (CHECKPOINT_RECORD + ".tmp")).write_text(record)
    os.replace(tmp, run_dir / name)
    os.replace(run_dir / (CHECKPOINT_RECORD + ".tmp"), run_dir / CHECKPOINT_RECORD)


class CheckpointError(ValueError):
    """A run's checkpoint that cannot be resumed (damaged, replaced or not a checkpoint)."""


def read_checkpoint(path: Path) -> dict:
    """The saved payload, after checking the file against the sha256 in ``checkpoint.json``.

    A save writes both files to temporaries and renames the checkpoint first: a kill between the
    two renames leaves the new record in ``checkpoint.json.tmp``, which is then the right one.
    """
    problems = []
    for record in (path.parent / CHECKPOINT_RECORD, path.parent / (CHECKPOINT_RECORD + ".tmp")):
        try:
            expected = json.loads(record.read_text()).get("sha256")
        except (OSError, ValueError, AttributeError):
            continue  # no record (a run saved before records were kept) or an unreadable one
        problem = mismatch(path, expected, record.name)
        if problem is None:
            break
        problems.append(problem)
    else:
        if problems:
            raise CheckpointError(problems[0] + "; resume from a copy or start the run again")
    try:
        saved = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - zip, pickle and tensor errors all mean the same here
        raise CheckpointError(f"{path}: not a readable checkpoint ({type(exc).__name__}: {str(exc)[:200]})") from None
    if not isinstance(saved, dict) or not {"config", "model", "optimizer", "state_json"} <= set(saved):
        raise CheckpointError(f"{path}: not a BoardLens training checkpoint")
    return saved


class Trainer:
    """Owns model, optimiser and state of one run directory; checkpoints atomically.

    Under ``torchrun`` every rank builds one (same seed, same weights), trains its slice of each
    step's global batch through ``DistributedDataParallel``, and rank 0 alone evaluates and writes
    checkpoints. Nothing saved depends on the number of ranks, so a run resumes on any number.
    """

    CHECKPOINT = "checkpoint.pt"

    def __init__(self, cfg: TrainConfig, run_dir: str | Path, overrides: dict | None = None):
        """A new run with ``cfg``, or the run saved in ``run_dir`` (then ``cfg`` is ignored).

        ``overrides`` may change, on resume, the fields that do not change what is learned
        (``OVERRIDABLE``: evaluation cadence, checkpoint interval, threads, device, workers).
        """
        self.run_dir = Path(run_dir)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        ckpt = self.run_dir / self.CHECKPOINT
        overrides = {k: v for k, v in (overrides or {}).items() if k in OVERRIDABLE}
        if ckpt.exists():
            saved = read_checkpoint(ckpt)
            # A run saved before per-game seeds keeps the stream it was trained on.
            saved_cfg = {"game_seeding": "per-step", **saved["config"]}
            old = TrainConfig(**saved_cfg)
            steps = overrides.get("steps", old.steps)
            done = json.loads(saved["state_json"])["step"]
            if steps < max(done, old.steps):
                raise distributed.SettingError(f"{run_dir}: --steps can only extend a run ({old.steps} planned, {done} done), not shorten it to {steps}")
            if steps != old.steps and not old.decay_steps:
                overrides["decay_steps"] = old.steps
            cfg = TrainConfig(**{**saved_cfg, **overrides})
        else:
            cfg = TrainConfig(**{**asdict(cfg), **overrides})
        self.cfg = cfg
        self.device = distributed.resolve_device(cfg.device, distributed.ranks_from_env().local_rank)
        self.autocast_bf16 = cfg.bf16 and bf16_is_fast(self.device)
        self.ranks = distributed.ranks_from_env()
        self.batch_start, self.batch_stop = self.ranks.batch_slice(cfg.batch_size)
        if cfg.game_seeding == "per-step" and self.ranks.world > 1:
            raise distributed.SettingError(f"{run_dir}: this run seeds games per step (made before per-game seeds): resume it on one rank")
        if cfg.threads:
            torch.set_num_threads(cfg.threads)
        distributed.start(self.device)
        torch.manual_seed(cfg.seed)
        self.model = GPT(cfg.gpt_config())
        self.model.to(self.device)
        self.optimizer = make_optimizer(self.model, cfg)
        self.state = TrainState()
        if ckpt.exists():
            self.model.load_state_dict(saved["model"])
            self.optimizer.load_state_dict(saved["optimizer"])
            self.state = TrainState(**json.loads(saved["state_json"]))
            torch.set_rng_state(saved["torch_rng"])
        elif cfg.init_from:
            from core.train.warm_start import warm_start

            game = cfg.game_plugin()
            weights, self.state.earlier = warm_start(cfg.init_from, self.model.cfg, game.name, cfg.tokenizer, game.rows)
            self.model.load_state_dict(weights)
        self._eval_games = held_out_games(cfg.eval_games, cfg.game_plugin()) if self.ranks.is_main else None
        self._train_model = self.model
        if self.ranks.world > 1:
            from torch.nn.parallel import DistributedDataParallel

            self._train_model = DistributedDataParallel(self.model, device_ids=[self.device.index] if self.device.type == "cuda" else None)
        if cfg.compile:
            try:
                self._train_model = torch.compile(self._train_model)
            except Exception as exc:  # noqa: BLE001 - no compiler here: train eagerly, say so
                print(f"torch.compile unavailable ({type(exc).__name__}: {exc}); training eagerly", flush=True)

    def save(self) -> None:
        """Write the checkpoint to a temporary file, then rename: a kill never leaves half a file."""
        if not self.ranks.is_main:
            return
        payload = {
            "config": asdict(self.cfg),
            "model": {k: v.detach().cpu() for k, v in self.model.state_dict().items()},
            "optimizer": self.optimizer.state_dict(),
            "state_json": json.dumps(asdict(self.state)),
            "torch_rng": torch.get_rng_state(),
        }
        write_checkpoint(self.run_dir, self.CHECKPOINT, payload, self.state.step)

    def close(self) -> None:
        """Leave the process group (after every rank is done)."""
        distributed.stop()

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.autocast_bf16):
            return self._train_model(tokens)

    def evaluate(self, games: np.ndarray | None = None) -> dict[str, float]:
        """Legality of the model on the held-out games (float32, on the model's device)."""
        self.model.eval()
        try:
            with torch.inference_mode():
                forward = lambda t: self.model(t.to(self.device)).float().cpu()  # noqa: E731
                return evaluate_legality(forward, self._eval_games if games is None else games, self.cfg.game_plugin())
        finally:
            self.model.train()

    def train(self, until_step: int | None = None, progress: Callable[[int, int, dict], None] | None = None) -> TrainState:
        """Train up to ``until_step`` (default: ``cfg.steps``), checkpointing as it goes.

        ``progress(step, total, info)`` is called after every step (for bars in a CLI or a page).
        """
        cfg, state = self.cfg, self.state
        until = min(cfg.steps, until_step or cfg.steps)
        if state.step >= until:
            return state
        self.model.train()
        stream = GameStream(cfg, state.step, until, self.batch_start, self.batch_stop, cfg.workers, pin_memory=self.device.type == "cuda")
        return self._train_loop(until, stream, progress)

    def _step(self, tokens: torch.Tensor, target: torch.Tensor, valid: torch.Tensor) -> tuple[float, int]:
        """One optimiser step on this rank's games -> (the global batch's mean loss, its valid positions).

        Each rank's loss is its share of the global mean (its sum over the global count); DDP
        averages gradients over ranks, so the loss is scaled by the number of ranks to make their
        average the gradient of the global mean, exactly what one rank with every game computes.
        """
        device, world = self.device, self.ranks.world
        tokens, target, valid = (t.to(device, non_blocking=True) for t in (tokens, target, valid))
        local = loss_sum(self.forward(tokens), target, valid)
        count = distributed.all_sum(valid.sum().float()).clamp(min=1)
        loss = local * world / count if world > 1 else local / count
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.cfg.grad_clip)
        self.optimizer.step()
        mean = distributed.all_sum(local.detach()) / count if world > 1 else loss.detach()
        return mean.item(), int(count.item())

    def _train_loop(self, until: int, stream: GameStream, progress: Callable[[int, int, dict], None] | None) -> TrainState:
        cfg, state = self.cfg, self.state
        main = self.ranks.is_main
        last_ckpt = time.monotonic()
        window_tokens, window_start, window_wait = 0, time.monotonic(), 0.0
        step_start = time.monotonic()
        for step, (tokens, target, valid) in stream:
            for group in self.optimizer.param_groups:
                group["lr"] = learning_rate(cfg, step)
            loss, n_tokens = self._step(tokens, target, valid)
            state.step = step + 1
            state.games_seen += cfg.batch_size
            window_tokens += n_tokens
            now = time.monotonic()
            state.wall_time_s += now - step_start
            info = {
                "loss": loss,
                "tokens_per_s": window_tokens / max(now - window_start, 1e-9),
                "gen_share": (stream.wait_s - window_wait) / max(now - window_start, 1e-9),
            }
            if main and (state.step % cfg.eval_every == 0 or state.step == until):
                info.update(self.evaluate())
                entry = {"step": state.step, "games_seen": state.games_seen, "loss": info["loss"], "top1_legal": info["top1_legal"], "illegal_mass": info["illegal_mass"]}
                # Timing is kept apart from the history: the history is reproducible, timing is not.
                state.timing.append({"step": state.step, "gen_share": round(info["gen_share"], 4), "tokens_per_s": round(info["tokens_per_s"], 1), "device": self.device.type, "bf16": self.autocast_bf16, "ranks": self.ranks.world, "workers": cfg.workers})
                if "by_kind" in info:
                    entry["by_kind"] = {k: round(v["top1_legal"], 5) for k, v in info["by_kind"].items()}
                state.history.append(entry)
                state.wall_time_s += time.monotonic() - now
                window_tokens, window_start, window_wait = 0, time.monotonic(), stream.wait_s
            if progress and main:
                progress(state.step, until, info)
            if now - last_ckpt > cfg.checkpoint_every_s or state.step == until:
                self.save()
                last_ckpt = now
            if time.monotonic() - window_start > 30:
                window_tokens, window_start, window_wait = 0, time.monotonic(), stream.wait_s
            step_start = time.monotonic()
        return state
