"""The trainer's game stream: every step's fresh games, made ahead of the step that needs them.

Each game is seeded by ``(seed, step, its index in the global batch)``: a counter-based generator
(Philox) keyed by the run's seed, its counter set to ``(step, index)``. So a rank that trains on
games ``[start, stop)`` of a step makes exactly those games, whatever the number of ranks or
worker processes, and a resumed run sees the games an unbroken one would.

Runs made before per-game seeding (``game_seeding = "per-step"``) drew a whole step's games from
one seed; they still resume with their own stream, on one rank.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from typing import Iterator

import numpy as np
import torch

from core.games.othello import engine as othello

SEEDINGS = ("per-game", "per-step")
_MASK64 = (1 << 64) - 1
Batch = tuple[torch.Tensor, torch.Tensor, torch.Tensor]  # tokens, target, valid


def game_uniforms(seed: int, step: int, start: int, stop: int, width: int) -> np.ndarray:
    """``float64 (stop - start, width)``: row i drives game ``start + i`` of ``step``."""
    rows = np.empty((stop - start, width))
    for i, index in enumerate(range(start, stop)):
        bits = np.random.Philox(key=[seed & _MASK64, 0x6A09E667F3BCC908], counter=[0, 0, index, step])
        rows[i] = np.random.Generator(bits).random(width)
    return rows


def step_seed(seed: int, step: int) -> int:
    """The one seed of a step's games in a ``per-step`` run."""
    return int(np.random.SeedSequence((seed, step)).generate_state(1)[0])


def step_games(cfg, step: int, start: int = 0, stop: int | None = None) -> Batch:
    """Games ``[start, stop)`` of ``step`` (default: all): ``tokens (B, ctx)``, ``target`` and ``valid (B, ctx)``.

    ``target`` is a distribution ``(B, ctx, d_vocab)`` for ``"legal"`` (what a uniformly random
    player plays next, from the game's ``TokenBatch``), token ids ``(B, ctx)`` for ``"sample"``.
    """
    game = cfg.game_plugin()
    stop = cfg.batch_size if stop is None else stop
    if cfg.game_seeding not in SEEDINGS:
        raise ValueError(f"game_seeding must be one of {', '.join(SEEDINGS)}, got {cfg.game_seeding!r}")
    per_step = cfg.game_seeding == "per-step"
    if per_step and (start, stop) != (0, cfg.batch_size):
        raise ValueError("a 'per-step' run makes a step's games in one piece: it trains on one rank only")
    if cfg.target == "sample":
        if game.name != "othello":
            raise ValueError("target 'sample' is implemented for Othello only; use 'legal'")
        if per_step:
            games = othello.random_games(stop - start, cfg.size, seed=step_seed(cfg.seed, step))
        else:
            games = game.games_from_uniforms(game_uniforms(cfg.seed, step, start, stop, game.max_moves))
        ctx = game.n_ctx
        tokens = torch.from_numpy(othello.squares_to_tokens(games[:, :ctx], cfg.size).astype(np.int64))
        target = torch.from_numpy(othello.squares_to_tokens(games[:, 1 : ctx + 1], cfg.size).astype(np.int64))
        return tokens, target, target != 0
    if per_step:
        batch = game.random_token_batch(stop - start, step_seed(cfg.seed, step))
    else:
        batch = game.token_batch_from_uniforms(game_uniforms(cfg.seed, step, start, stop, game.max_moves))
    weights = torch.from_numpy(batch.weights)
    total = weights.sum(-1, keepdim=True)
    return torch.from_numpy(batch.tokens), weights / total.clamp(min=1e-9), total.squeeze(-1) > 0


class _StepGames(torch.utils.data.Dataset):
    """Item ``step``: this rank's slice of that step's games (what a DataLoader worker makes)."""

    def __init__(self, cfg, start: int, stop: int):
        self.cfg, self.start, self.stop = cfg, start, stop

    def __len__(self) -> int:
        return self.cfg.steps

    def __getitem__(self, step: int) -> Batch:
        return step_games(self.cfg, step, self.start, self.stop)


class GameStream:
    """Batches for steps ``first .. until - 1`` of one rank's slice ``[start, stop)`` of the global batch.

    ``workers = 0``: the next step's games are made in a background thread of this process while
    the current step computes (numpy and torch release the GIL). ``workers > 0``: a
    ``torch.utils.data.DataLoader`` with that many worker processes, each making whole steps, two
    steps ahead per worker; batches come in pinned memory when training on CUDA. ``wait_s`` is
    the time the training loop spent waiting for games.
    """

    def __init__(self, cfg, first: int, until: int, start: int, stop: int, workers: int = 0, pin_memory: bool = False):
        self.cfg, self.first, self.until = cfg, first, until
        self.start, self.stop = start, stop
        self.workers, self.pin_memory = max(0, int(workers)), pin_memory
        self.wait_s = 0.0

    def __iter__(self) -> Iterator[tuple[int, Batch]]:
        if self.first >= self.until:
            return
        source = self._loader() if self.workers else self._threaded()
        for step in range(self.first, self.until):
            t0 = time.monotonic()
            batch = next(source)
            self.wait_s += time.monotonic() - t0
            yield step, batch

    def _loader(self) -> Iterator[Batch]:
        loader = torch.utils.data.DataLoader(
            _StepGames(self.cfg, self.start, self.stop),
            batch_size=None,
            sampler=range(self.first, self.until),
            num_workers=self.workers,
            prefetch_factor=2,
            pin_memory=self.pin_memory,
        )
        return iter(loader)

    def _threaded(self) -> Iterator[Batch]:
        pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="games")
        def make(step: int) -> Batch:
            batch = step_games(self.cfg, step, self.start, self.stop)
            return tuple(t.pin_memory() for t in batch) if self.pin_memory else batch

        try:
            upcoming = pool.submit(make, self.first)
            for step in range(self.first, self.until):
                batch = upcoming.result()
                if step + 1 < self.until:
                    upcoming = pool.submit(make, step + 1)
                yield batch
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
