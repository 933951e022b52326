"""bf16 autocast is used only where it is fast: on a CPU that emulates bf16 it is ~70x slower."""

from __future__ import annotations

import time

import torch

from core.devices import bf16_is_fast


def _seconds(fn, repeats: int = 3) -> float:
    fn()
    t0 = time.perf_counter()
    for _ in range(repeats):
        fn()
    return (time.perf_counter() - t0) / repeats


def test_bf16_is_fast_agrees_with_this_cpu():
    """Where the check says no, a bf16 product really is much slower than float32 here (and where
    it says yes, not much slower): the check is the CPU's, not a guess."""
    x, w = torch.randn(512, 256), torch.randn(256, 512)

    def product(bf16: bool):
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            return x @ w

    ratio = _seconds(lambda: product(True)) / _seconds(lambda: product(False))
    if bf16_is_fast(torch.device("cpu")):
        assert ratio < 5, ratio
    else:
        assert ratio > 3, ratio


def test_other_devices():
    assert bf16_is_fast(torch.device("meta")) is False
    if not torch.cuda.is_available():
        assert bf16_is_fast(torch.device("cuda")) is False
