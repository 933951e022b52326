"""Which device models run on: the CPU, or a CUDA GPU when there is one and it is asked for.

Trainers take ``--device``; the app reads ``BOARDLENS_DEVICE`` (``cpu`` by default, ``auto`` or
``cuda`` to put the shared models on the GPU).
"""

from __future__ import annotations

import os

import torch

DEVICES = ("auto", "cpu", "cuda")
APP_DEVICE_ENV = "BOARDLENS_DEVICE"


class SettingError(ValueError):
    """A setting that cannot work here (no GPU, a batch that does not split over ranks)."""


def resolve_device(name: str, local_rank: int = 0) -> torch.device:
    """``auto``: this process's GPU when CUDA is available, else the CPU."""
    if name not in DEVICES and not name.startswith("cuda:"):
        raise SettingError(f"device must be one of {', '.join(DEVICES)} (or cuda:N), got {name!r}")
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise SettingError(f"device {name!r} asked for, but this torch ({torch.__version__}) sees no CUDA GPU; use cpu or auto")
        return torch.device(name if ":" in name else f"cuda:{local_rank % torch.cuda.device_count()}")
    return torch.device("cpu")


def app_device() -> tuple[str, str | None]:
    """The app's model device from ``BOARDLENS_DEVICE``, and why it fell back to the CPU (if it did)."""
    asked = os.environ.get(APP_DEVICE_ENV, "cpu").strip().lower() or "cpu"
    try:
        return str(resolve_device(asked)), None
    except SettingError as exc:
        return "cpu", f"{APP_DEVICE_ENV}={asked[:40]!r}: {exc}; models run on the CPU"


def bf16_is_fast(device: torch.device) -> bool:
    """Whether bf16 autocast speeds ``device`` up rather than slowing it down.

    On a GPU with bf16 units, and on a CPU where oneDNN has bf16 kernels (AVX-512, AVX512-BF16,
    AMX), bf16 matrix products are up to ~2x faster than float32. On a CPU without them (AVX2 only,
    e.g. many AMD EPYCs) torch emulates bf16 and the same products run ~70x *slower*, so training
    there asks for bf16 in vain: trainers decide once, ``cfg.bf16 and bf16_is_fast(device)``.
    """
    if device.type == "cuda":
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    if device.type != "cpu":
        return False
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):  # a torch without the oneDNN check: assume emulation
        return False
