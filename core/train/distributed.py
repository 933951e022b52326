"""Devices and ranks for training: one process, or several under ``torchrun`` (PyTorch's DDP).

``torchrun`` tells each process its place through the environment (``RANK``, ``WORLD_SIZE``,
``LOCAL_RANK``, ``MASTER_ADDR``/``MASTER_PORT``); a plain ``python -m core.train`` has none of them
and is rank 0 of 1. The process group uses NCCL on GPUs and gloo on CPUs.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from core.devices import SettingError, resolve_device  # noqa: F401 - part of this module's interface


@dataclass(frozen=True)
class Ranks:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        """Rank 0 evaluates, prints and writes checkpoints."""
        return self.rank == 0

    def batch_slice(self, global_batch: int) -> tuple[int, int]:
        """This rank's games ``[start, stop)`` of a step's global batch."""
        if global_batch % self.world:
            raise SettingError(f"the batch of {global_batch} games does not split evenly over {self.world} ranks: use a batch size divisible by {self.world}")
        per_rank = global_batch // self.world
        return self.rank * per_rank, (self.rank + 1) * per_rank


def ranks_from_env() -> Ranks:
    env = os.environ
    return Ranks(int(env.get("RANK", 0)), int(env.get("WORLD_SIZE", 1)), int(env.get("LOCAL_RANK", 0)))


def start(device: torch.device) -> Ranks:
    """Join the process group when launched by ``torchrun`` with more than one rank."""
    ranks = ranks_from_env()
    if ranks.world > 1 and not dist.is_initialized():
        if device.type == "cuda":
            torch.cuda.set_device(device)
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    return ranks


def stop() -> None:
    if dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


def all_sum(value: torch.Tensor) -> torch.Tensor:
    """Sum over ranks (the value itself on one rank)."""
    if dist.is_initialized():
        value = value.clone()
        dist.all_reduce(value)
    return value
