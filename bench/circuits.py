"""How long the Circuits page makes a researcher wait.

1. Server time of a pruned attribution graph for a mid-game position (the unpruned graph, its
   pruning and its scores, nothing cached): p50 and p95 over fresh games, for othello8 (move 30)
   and chess-pgn (move 20). Goals: p95 ≤ 3 s and ≤ 8 s.
2. The page's rerun after a click on a node (the graph cached, as after the first visit):
   Streamlit's AppTest runs the whole page script with another node selected. Goal: ≤ 300 ms.

    python bench/circuits.py [--games 12]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from core.interp.circuits import board_targets as BT  # noqa: E402
from core.interp.circuits.circuit import build_graph, circuit_of  # noqa: E402
from core.interp.circuits.replacement import TRANSCODERS, load_transcoders  # noqa: E402
from core.models.registry import load_model  # noqa: E402

GOALS = {"othello8": (30, 3.0), "chess-pgn": (20, 8.0)}


def server_times(model: str, games: int) -> tuple[list[float], list[dict]]:
    handle = load_model(model)
    tcs = load_transcoders(TRANSCODERS / model, handle.cfg.n_layers)
    at, _ = GOALS[model]
    times, shapes = [], []
    for seed in range(games + 1):
        game = handle.game.random_games(1, seed=1000 + seed)[0]
        moves = tuple(int(m) for m in game[:at] if m >= 0)
        t0 = time.perf_counter()
        tokens, targets = BT.board_targets(handle, moves, "top")
        circuit = circuit_of(build_graph(handle, tokens, tcs, targets))
        seconds = time.perf_counter() - t0
        if seed:  # the first is a warm-up (allocator, lazy imports)
            times.append(seconds)
            shapes.append({"tokens": len(tokens), "features": circuit.graph.n_features, "start": circuit.graph.start, "kept": int(circuit.pruned.node_mask.sum()),
                           "replacement": circuit.replacement_score, "completeness": circuit.completeness_score})
    return times, shapes


def click_rerun(runs: int = 8) -> list[float]:
    from streamlit.testing.v1 import AppTest

    from tests.test_board_player_page import APP

    handle = load_model("othello8")
    game = handle.game.random_games(1, seed=1000)[0]
    at = AppTest.from_file(APP, default_timeout=300)
    at.query_params["model"] = "othello8"
    at.query_params["moves"] = handle.game.url_moves(tuple(int(m) for m in game[:30]))
    at.switch_page("pages/circuits.py").run()
    assert not at.exception, at.exception
    at.run()  # the graph is cached now
    options = [o.split(" ")[0] for o in at.selectbox(key="ci_node").options]
    times = []
    for i in range(runs):
        at.selectbox(key="ci_node").set_value(options[(i + 1) % len(options)])
        t0 = time.perf_counter()
        at.run()
        times.append(time.perf_counter() - t0)
        assert not at.exception, at.exception
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--games", type=int, default=12)
    args = parser.parse_args()
    print(f"torch threads: {torch.get_num_threads()}")
    ok = True
    for model, (at, goal) in GOALS.items():
        times, shapes = server_times(model, args.games)
        p50, p95 = np.percentile(times, 50), np.percentile(times, 95)
        print(f"{model} at move {at}: p50 {p50:.2f} s, p95 {p95:.2f} s over {len(times)} positions (goal p95 ≤ {goal:.0f} s); "
              f"tokens {np.mean([s['tokens'] for s in shapes]):.0f}, features {np.mean([s['features'] for s in shapes]):.0f}, window from {np.mean([s['start'] for s in shapes]):.1f}, "
              f"kept nodes {np.mean([s['kept'] for s in shapes]):.0f}, replacement {np.mean([s['replacement'] for s in shapes]):.1%}, completeness {np.mean([s['completeness'] for s in shapes]):.1%}")
        ok &= p95 <= goal
    clicks = click_rerun()
    p95 = np.percentile(clicks, 95)
    print(f"page rerun after a click on a node: median {np.median(clicks) * 1000:.0f} ms, p95 {p95 * 1000:.0f} ms (goal ≤ 300 ms)")
    ok &= p95 <= 0.3
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
