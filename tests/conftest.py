"""Shared fixtures: small models really trained by the project's trainer (a few seconds each)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")  # no test touches the network
# Where a GPU is present the pages' models go on it, so the same tests exercise the CUDA paths.
os.environ.setdefault("BOARDLENS_DEVICE", "auto")

from core.train.export import export_run  # noqa: E402
from core.train.next_move import TrainConfig, Trainer  # noqa: E402

TINY = dict(n_layers=2, d_model=32, n_heads=4, d_mlp=64, batch_size=32, steps=20, eval_every=20, eval_games=50)


@pytest.fixture(scope="session")
def tiny_bundle(tmp_path_factory) -> Path:
    """A 2-layer 6x6 model trained for 20 steps and exported to the bundled format."""
    run = tmp_path_factory.mktemp("tiny_run")
    trainer = Trainer(TrainConfig(size=6, seed=1, **TINY), run)
    trainer.train()
    out = tmp_path_factory.mktemp("bundles") / "tiny6"
    export_run(trainer, out, "tiny6", "test fixture", eval_games=50)
    return out


def pytest_terminal_summary(terminalreporter) -> None:
    from tests.fuzzing import CASES

    if CASES:
        terminalreporter.section("fuzz cases")
        for family, n in sorted(CASES.items()):
            terminalreporter.write_line(f"{family:<40s} {n:>7,d}")
        terminalreporter.write_line(f"{'total':<40s} {sum(CASES.values()):>7,d}")
