"""Engine speed: ``random_games`` + ``replay`` vs the scalar reference rules, in the same run.

    python bench/engine.py [--games 2000] [--scalar-games 100] [--size 8]

The scalar implementation (tests/scalar_othello.py) plays and records the same kind of games one
square at a time; the ratio of per-game times is printed. Goal: >= 100x on 8x8.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from core.games.othello import engine as othello  # noqa: E402
from tests.scalar_othello import ScalarOthello  # noqa: E402


def scalar_games(n: int, size: int, seed: int) -> list[list]:
    """Random games with the scalar rules, recording what ``replay`` records for each move."""
    rng = np.random.default_rng(seed)
    records = []
    for _ in range(n):
        game = ScalarOthello(size)
        record = []
        while game.player != 0:
            legal = game.legal_moves(game.player)
            square = int(legal[rng.integers(len(legal))])
            mover = game.player
            flipped = game.play(square)
            record.append(([row[:] for row in game.board], mover, game.legal_moves(game.player), flipped))
        records.append(record)
    return records


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--games", type=int, default=2000)
    parser.add_argument("--scalar-games", type=int, default=100)
    parser.add_argument("--size", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    best_vec = float("inf")
    for r in range(args.repeats):
        t0 = time.perf_counter()
        games = othello.random_games(args.games, args.size, seed=r)
        othello.replay(games, args.size)
        best_vec = min(best_vec, time.perf_counter() - t0)
    t0 = time.perf_counter()
    scalar_games(args.scalar_games, args.size, seed=0)
    scalar = time.perf_counter() - t0

    vec_per_game = best_vec / args.games
    scalar_per_game = scalar / args.scalar_games
    print(f"board {args.size}x{args.size}")
    print(f"vectorised random_games + replay: {args.games} games in {best_vec:.3f} s ({vec_per_game * 1e6:.1f} us/game, best of {args.repeats})")
    print(f"scalar reference:                 {args.scalar_games} games in {scalar:.3f} s ({scalar_per_game * 1e6:.1f} us/game)")
    print(f"speed-up: {scalar_per_game / vec_per_game:.0f}x (goal >= 100x)")


if __name__ == "__main__":
    main()
