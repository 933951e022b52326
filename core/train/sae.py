"""Sparse autoencoders on game activations, trained with SAELens's own trainer.

SAELens's ``SAETrainer`` takes any iterator of activation batches. ``ActivationStream`` is ours:
activations of one hook at every token of *fresh* synthetic games (the model's own kind of input), held in a
shuffled buffer that is refilled when half empty, so consecutive batches mix many games and
positions. The result is saved in SAELens's format (``cfg.json`` + ``sae_weights.safetensors``,
loadable with ``sae_lens.SAE.load_from_disk``) plus our ``card.json`` with the metrics.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import Callable

import numpy as np
import torch

from core.devices import bf16_is_fast
from core.interp.shared.activations import token_activations
from core.models.handle import ModelHandle

ARCHITECTURES = ("topk", "standard")
SAE_SEED_BASE = 3_000_017  # game seeds for SAE activations (not the model's or the probes')


@dataclass
class SAETrainConfig:
    hook: str = "blocks.3.hook_resid_post"
    architecture: str = "topk"  # "topk" (k active features) or "standard" (ReLU + L1)
    d_sae: int = 2048
    k: int = 32
    l1_coefficient: float = 5.0
    lr: float = 1e-3
    batch_size: int = 256  # more, smaller steps: at 1024 most TopK features died within 500k activations
    total_tokens: int = 2_000_000
    buffer_tokens: int = 65_536
    games_per_refill: int = 250
    dead_feature_window: int = 200  # steps without firing before TopK's auxiliary loss revives a feature
    bf16_activations: bool = True  # generate under bf16 autocast where it is fast (core.devices.bf16_is_fast): ~1.8x faster, FVU-scale error ~4e-5
    seed: int = 0
    device: str = "cpu"  # where the model runs and the SAE trains (the model handle's device)


class ActivationStream:
    """Shuffled batches of one hook's activations over fresh games; refills when half empty.

    ``gen_seconds`` / ``generated`` measure how fast activations are produced, to compare with
    the trainer's consumption.
    """

    def __init__(self, handle: ModelHandle, hook: str, batch_size: int, buffer_tokens: int, games_per_refill: int, seed: int = 0, bf16: bool = False):
        self.handle, self.hook = handle, hook
        self.bf16 = bf16 and bf16_is_fast(handle.device)  # what the activations are made with here
        self.batch_size, self.capacity = batch_size, max(buffer_tokens, 2 * batch_size)
        self.games_per_refill, self.seed = games_per_refill, seed
        self.refills = 0
        self.generated = 0
        self.gen_seconds = 0.0
        self._gen = torch.Generator().manual_seed(seed)
        self._buffer = torch.empty(0)

    def _refill(self) -> None:
        parts = [self._buffer]
        have = len(self._buffer)
        t0 = time.perf_counter()
        while have < self.capacity:
            seed = int(np.random.SeedSequence((SAE_SEED_BASE, self.seed, self.refills)).generate_state(1)[0])
            with torch.autocast(self.handle.device.type, dtype=torch.bfloat16, enabled=self.bf16):
                acts = self._activations(seed)
            parts.append(acts)
            have += len(acts)
            self.generated += len(acts)
            self.refills += 1
        buffer = torch.cat(parts)
        self._buffer = buffer[torch.randperm(len(buffer), generator=self._gen)]
        self.gen_seconds += time.perf_counter() - t0

    def _activations(self, seed: int) -> torch.Tensor:
        """One refill's activations ``(n, width)``: every token of fresh games."""
        games = self.handle.game.random_games(self.games_per_refill, seed=seed)
        return token_activations(self.handle, games, [self.hook])[self.hook]

    def buffer_mean(self) -> torch.Tensor:
        return self._buffer.mean(0)

    def __iter__(self):
        return self

    def __next__(self) -> torch.Tensor:
        if len(self._buffer) < self.capacity // 2:
            self._refill()
        batch, self._buffer = self._buffer[: self.batch_size], self._buffer[self.batch_size :]
        return batch


class TokenWindowStream(ActivationStream):
    """The same stream over a text model's corpus: every token of random windows of ``tokens``
    (``games_per_refill`` windows of the model's context per refill)."""

    def __init__(self, handle: ModelHandle, hook: str, tokens: np.ndarray, batch_size: int, buffer_tokens: int, windows_per_refill: int, seed: int = 0, bf16: bool = False, width: int = 0):
        super().__init__(handle, hook, batch_size, buffer_tokens, windows_per_refill, seed, bf16)
        self.tokens = np.asarray(tokens)
        self.width = min(width or handle.cfg.n_ctx, len(self.tokens) - 1)

    def _activations(self, seed: int) -> torch.Tensor:
        starts = np.random.default_rng(seed).integers(0, len(self.tokens) - self.width, size=self.games_per_refill)
        windows = torch.from_numpy(np.stack([self.tokens[s : s + self.width] for s in starts]).astype(np.int64))
        acts = self.handle.activations(windows, [self.hook])[self.hook]
        return acts.reshape(-1, acts.shape[-1]).float()


def make_training_sae(cfg: SAETrainConfig, d_in: int):
    """A SAELens training SAE of the chosen architecture."""
    from sae_lens import StandardTrainingSAE, StandardTrainingSAEConfig, TopKTrainingSAE, TopKTrainingSAEConfig

    torch.manual_seed(cfg.seed)
    if cfg.architecture == "topk":
        return TopKTrainingSAE(TopKTrainingSAEConfig(d_in=d_in, d_sae=cfg.d_sae, k=cfg.k))
    if cfg.architecture == "standard":
        return StandardTrainingSAE(StandardTrainingSAEConfig(d_in=d_in, d_sae=cfg.d_sae, l1_coefficient=cfg.l1_coefficient))
    raise ValueError(f"architecture must be one of {', '.join(ARCHITECTURES)}")


def train_sae(handle: ModelHandle, cfg: SAETrainConfig, progress: Callable[[str, float], None] | None = None, tokens: np.ndarray | None = None):
    """Train with ``sae_lens.SAETrainer`` on our activation stream -> ``(sae, stats)``; a text
    model's SAE reads random windows of ``tokens`` (its training corpus), a game model's fresh games."""
    from sae_lens import LoggingConfig, SAETrainer
    from sae_lens.config import SAETrainerConfig

    if tokens is not None:
        stream = TokenWindowStream(handle, cfg.hook, tokens, cfg.batch_size, cfg.buffer_tokens, cfg.games_per_refill, cfg.seed, cfg.bf16_activations)
    else:
        stream = ActivationStream(handle, cfg.hook, cfg.batch_size, cfg.buffer_tokens, cfg.games_per_refill, cfg.seed, cfg.bf16_activations)
    first = next(stream)
    sae = make_training_sae(cfg, first.shape[-1])
    # Start the decoder bias at the data mean: residual streams have a large mean, and fitting it
    # with features first is what left most of them dead.
    sae.b_dec.data[:] = stream.buffer_mean()
    trainer_cfg = SAETrainerConfig(
        total_training_samples=cfg.total_tokens,
        train_batch_size_samples=cfg.batch_size,
        lr=cfg.lr,
        lr_end=cfg.lr / 10,
        lr_scheduler_name="cosineannealing",
        lr_decay_steps=max(1, cfg.total_tokens // cfg.batch_size // 5),
        dead_feature_window=cfg.dead_feature_window,
        feature_sampling_window=max(cfg.dead_feature_window, 1),
        logger=LoggingConfig(log_to_wandb=False),
        device=cfg.device,
    )

    def batches():
        yield first
        done = cfg.batch_size
        for batch in stream:
            done += len(batch)
            if progress:
                progress(f"training SAE: {done:,}/{cfg.total_tokens:,} activations", min(done / cfg.total_tokens, 1.0))
            yield batch

    t0 = time.perf_counter()
    trained = SAETrainer(trainer_cfg, sae, batches()).fit().to("cpu")  # scored and saved on the CPU, like every result
    wall = time.perf_counter() - t0
    stats = {
        "wall_time_s": round(wall, 1),
        "activations_generated": stream.generated,
        "generation_rate_per_s": round(stream.generated / max(stream.gen_seconds, 1e-9)),
        "training_rate_per_s": round(cfg.total_tokens / max(wall - stream.gen_seconds, 1e-9)),
        "generation_share": round(stream.gen_seconds / max(wall, 1e-9), 3),
        "bf16_autocast": stream.bf16,
    }
    return trained, stats


def card_for(handle: ModelHandle, cfg: SAETrainConfig, stats: dict, metrics: dict) -> dict:
    return {"model": handle.name, "hook": cfg.hook, "train_config": asdict(cfg), "training": stats, "metrics": metrics}
