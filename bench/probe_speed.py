"""Probe training speed and accuracy, from a cold start, with the random-model baseline.

    python bench/probe_speed.py [--model othello8] [--train-games 2000] [--test-games 500]

Times everything a user waits for when they press "train": loading the model, generating games,
one cached pass for every layer's activations, fitting a mine/theirs/empty probe per layer and
scoring it on held-out games. Then the same probes on a randomly initialised copy of the model.
Goal: best layer >= 95 % held-out accuracy per square within 60 s.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

T0 = time.perf_counter()
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from core.interp.probes.linear_probes import train_probes  # noqa: E402
from core.interp.shared.activations import resid_hooks
from core.models.registry import randomly_initialised  # noqa: E402
from bench.common import add_model_arguments, load_bench_model  # noqa: E402


def table(probes: dict) -> list[float]:
    accs = []
    for hook, probe in probes.items():
        h = probe.meta["held_out"]
        accs.append(h["accuracy"])
        per_class = "  ".join(f"{name} {acc:.3f}" for name, acc in h["per_class"].items() if acc is not None)
        print(f"  {hook:26s} accuracy {h['accuracy']:.4f}  board exact {h['board_exact']:.3f}  {per_class}")
    return accs


def main() -> None:
    parser = argparse.ArgumentParser()
    add_model_arguments(parser)
    parser.add_argument("--target", default="mine_theirs_empty")
    parser.add_argument("--train-games", type=int, default=2000)
    parser.add_argument("--test-games", type=int, default=500)
    args = parser.parse_args()
    handle = load_bench_model(args)
    hooks = resid_hooks(handle.cfg.n_layers)
    probes = train_probes(handle, args.target, hooks, args.train_games, args.test_games)
    wall = time.perf_counter() - T0
    print(f"{handle.name}: {args.target} probes, {args.train_games} training / {args.test_games} held-out games, torch threads {torch.get_num_threads()}")
    accs = table(probes)
    best = max(range(len(accs)), key=accs.__getitem__)
    print(f"cold start to all {len(hooks)} layers fitted and scored: {wall:.1f} s (goal <= 60 s)")
    print(f"best layer {hooks[best]}: {accs[best]:.2%} (goal >= 95 %)")
    t1 = time.perf_counter()
    baseline = train_probes(randomly_initialised(handle), args.target, hooks, args.train_games, args.test_games)
    print(f"random-init baseline ({time.perf_counter() - t1:.1f} s):")
    base = table(baseline)
    print(f"best layer trained {max(accs):.2%} vs random-init {max(base):.2%}")


if __name__ == "__main__":
    main()
