"""Board player latency: from a move to every panel's data recomputed (no cache hits).

    python bench/latency.py [--model othello8|chess] [--positions 300]

For each position of random games: engine state, model forward (for a multi-token game: every
legal move scored in one batched forward), the move tables, board and history figures — everything
the page recomputes after a click. Prints the distribution; goal p95 <= 100 ms (Othello), <= 150 ms
(chess).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from core.interp.predictions import predict, top_k  # noqa: E402
from bench.common import add_model_arguments, load_bench_model  # noqa: E402
from core.viz.board import board_figure, history_figure  # noqa: E402


def panels(handle, moves: tuple[int, ...]) -> None:
    game = handle.game
    state = game.state(moves)
    pred = predict(handle, state)
    if pred is None:  # past the model's context
        return
    top_k(pred, state.legal if game.square_moves else state.legal_moves, game)
    if not game.square_moves:
        [game.san(state.moves, m) for m, _ in sorted(pred.move_probs.items(), key=lambda kv: -kv[1])[:10] if m in state.legal_moves]
    board_figure(state.board, pred.probs, legal=state.legal, outline=pred.top1, last_move=state.last_squares, **game.board_style).to_dict()
    labels = [game.move_label(m) for m in moves]
    history_figure(pred.history_top1_legal, pred.history_illegal_mass, labels, [game.square_label(int(s)) if s >= 0 else "-" for s in pred.history_top1]).to_dict()


def main() -> None:
    parser = argparse.ArgumentParser()
    add_model_arguments(parser)
    parser.add_argument("--positions", type=int, default=300)
    args = parser.parse_args()
    handle = load_bench_model(args)
    game = handle.game
    games = game.random_games(args.positions, seed=123)
    rng = np.random.default_rng(0)
    positions = []
    for g in games:
        n = int((g >= 0).sum())
        positions.append(tuple(int(m) for m in g[: rng.integers(1, n)]))
    panels(handle, positions[0])  # warm-up (first forward allocates)
    times = []
    for moves in positions:
        t0 = time.perf_counter()
        panels(handle, moves)
        times.append((time.perf_counter() - t0) * 1000)
    t = np.array(times)
    print(f"model {handle.name} ({sum(p.numel() for p in handle.model.parameters()) / 1e6:.1f}M parameters), {len(t)} positions, moves 1..{max(len(p) for p in positions)}")
    print("latency ms: " + "  ".join(f"p{q}={np.percentile(t, q):.1f}" for q in (5, 25, 50, 75, 95, 99)) + f"  max={t.max():.1f}  mean={t.mean():.1f}")
    counts, edges = np.histogram(t, bins=10)
    for c, lo, hi in zip(counts, edges[:-1], edges[1:]):
        print(f"  {lo:6.1f}-{hi:6.1f} ms {'#' * int(60 * c / max(counts.max(), 1))} {c}")
    print(f"torch threads {torch.get_num_threads()}")
    print(f"p95 {np.percentile(t, 95):.1f} ms (goal <= {100 if game.square_moves else 150} ms)")


if __name__ == "__main__":
    main()
