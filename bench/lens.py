"""Logit lens over many games: per-layer top-1 legal rate and illegal mass, timed.

    python bench/lens.py [--model othello8] [--games 500]

Goal: <= 5 s for 500 games on this CPU. Also times the per-position work of the page
(lens + attribution + attention for one game) against one plain forward of the same game.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import torch  # noqa: E402

from core.games.othello import engine as othello  # noqa: E402
from core.interp.lens import logit_lens as L  # noqa: E402
from bench.common import add_model_arguments, load_bench_model  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    add_model_arguments(parser)
    parser.add_argument("--games", type=int, default=500)
    args = parser.parse_args()
    handle = load_bench_model(args)
    size = handle.board_size
    games = othello.random_games(args.games, size, seed=4242)
    L.lens_legality(handle, games[:20])  # warm-up
    t0 = time.perf_counter()
    result = L.lens_legality(handle, games)
    elapsed = time.perf_counter() - t0
    print(f"{handle.name}: logit lens over {result['games']} games, {result['positions']:,} positions, torch threads {torch.get_num_threads()}")
    for label, legal, mass in zip(result["labels"], result["top1_legal"], result["illegal_mass"]):
        print(f"  {label:8s} top-1 legal {legal:7.2%}   illegal mass {mass:7.2%}")
    print(f"time {elapsed:.2f} s (goal <= 5 s)")
    moves = tuple(int(m) for m in games[0, :30])
    tokens = L.game_tokens(moves, size)
    t0 = time.perf_counter()
    for _ in range(20):
        handle.forward(tokens)
    forward = (time.perf_counter() - t0) / 20
    t0 = time.perf_counter()
    for _ in range(20):
        L.logit_lens(handle, tokens)
        L.attribute(handle, moves)
        L.attention_patterns(handle, moves)
    page = (time.perf_counter() - t0) / 20
    print(f"one position: plain forward {forward * 1000:.1f} ms; lens + attribution + attention {page * 1000:.1f} ms ({page / forward:.1f}x a forward)")


if __name__ == "__main__":
    main()
