"""Batched activation patching vs transformer_lens.patching on a full game.

    python bench/patching.py [--model othello8] [--threads 1]

A clean game of 59 moves and a corrupted copy (one early move replaced by another legal move, the
rest replayed while legal, truncated to the same length). Metric: log-probability of the clean
game's move at the last position. Prints both timings, the speed-up (goal >= 20x), the largest
difference between the two results, and attribution patching's correlation with exact patching.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import numpy as np  # noqa: E402
import torch  # noqa: E402

from core.games import othello  # noqa: E402
from core.interp import patching as P  # noqa: E402
from bench.common import add_model_arguments, load_bench_model  # noqa: E402


def game_pair(size: int, seed: int = 0) -> tuple[list[int], list[int]]:
    """A full-length clean game and a corrupted one that differs at move 6 and stays legal."""
    ctx = othello.context_length(size)
    rng = np.random.default_rng(seed)
    for g in othello.random_games(200, size, seed=seed):
        clean = [int(m) for m in g[:ctx]]
        if min(clean) < 0:
            continue
        rep = othello.replay(np.array([clean[:5]]), size)
        alternatives = [s for s in np.flatnonzero(rep.legal_next[0, -1]) if s != clean[5]]
        if not alternatives:
            continue
        corrupted = clean[:5] + [int(rng.choice(alternatives))]
        for m in clean[6:]:
            legal = othello.replay(np.array([corrupted]), size).legal_next[0, -1]
            corrupted.append(m if legal[m] else int(np.flatnonzero(legal)[0]) if legal.any() else -1)
            if corrupted[-1] < 0:
                break
        if len(corrupted) == ctx and min(corrupted) >= 0:
            return clean, corrupted
    raise RuntimeError("no full-length game pair found")


def main() -> None:
    parser = argparse.ArgumentParser()
    add_model_arguments(parser)
    args = parser.parse_args()
    from transformer_lens import patching as tl_patching

    handle = load_bench_model(args)
    size = handle.board_size
    clean_moves, corrupted_moves = game_pair(size)
    tok = lambda moves: torch.from_numpy(othello.squares_to_tokens(np.array([moves]), size).astype(np.int64))  # noqa: E731
    clean, corrupted = tok(clean_moves), tok(corrupted_moves)
    target = int(clean[0, -1])

    def metric(logits: torch.Tensor) -> torch.Tensor:
        return logits[:, -2].log_softmax(-1)[:, target]  # the prediction of the clean game's last move

    P.act_patch_block_every(handle, corrupted[:, :8], clean[:, :8], metric)  # warm-up
    n_pos = clean.shape[1]
    t0 = time.perf_counter()
    ours = P.act_patch_block_every(handle, corrupted, clean, metric)
    t_ours = time.perf_counter() - t0
    with handle.session() as model:
        t0 = time.perf_counter()
        _, clean_cache = model.run_with_cache(clean)
        theirs = tl_patching.get_act_patch_block_every(model, corrupted, clean_cache, metric)
        t_tl = time.perf_counter() - t0
    t0 = time.perf_counter()
    approx = P.attribution_patch_block_every(handle, corrupted, clean, metric)
    t_attr = time.perf_counter() - t0
    corr = np.corrcoef(ours.reshape(-1).numpy(), approx.reshape(-1).numpy())[0, 1]
    print(f"{handle.name}: block sweep over {handle.cfg.n_layers} layers x {n_pos} positions x 3 components = {3 * handle.cfg.n_layers * n_pos} patched runs; torch threads {torch.get_num_threads()}")
    print(f"  transformer_lens.patching: {t_tl:7.2f} s ({3 * handle.cfg.n_layers * n_pos} forwards)")
    print(f"  BoardLens batched:         {t_ours:7.2f} s")
    print(f"  max |difference| {float((ours - theirs).abs().max()):.2e}")
    print(f"speed-up {t_tl / t_ours:.1f}x (goal >= 20x)")
    print(f"attribution patching: {t_attr:.2f} s, correlation with exact patching {corr:.3f}")


if __name__ == "__main__":
    main()
