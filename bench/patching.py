"""Batched activation patching vs transformer_lens.patching on a full game.

    python bench/patching.py [--model othello8 | chess] [--threads 1] [--tokens N]

A clean game filling the model's context (Othello: 59 moves; chess: 256 tokens) and a corrupted
copy (move 6 replaced by another legal move, the rest replayed while legal, both cut to the same
number of tokens). Metric: log-probability of the clean game's last token at the position before. Prints both timings, the speed-up (goal >= 20x), the largest
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

from core.interp.patching import sweeps as P  # noqa: E402
from bench.common import add_model_arguments, load_bench_model  # noqa: E402


def game_pair(game, seed: int = 0, max_tokens: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Token rows ``(1, T)`` of a clean game and a corrupted one that differs at move 6 and stays
    legal (a later clean move the change made illegal is replaced by the first legal one),
    ``T`` = the model's context (or ``max_tokens``)."""
    length = min(max_tokens or game.n_ctx, game.n_ctx)
    rng = np.random.default_rng(seed)
    for row in game.random_games(50, seed=seed):
        moves = game.fit_moves(int(m) for m in row if m >= 0)
        if len(game.game_tokens(moves)) < length:
            continue
        alternatives = [m for m in game.state(moves[:5]).legal_moves if m != moves[5]]
        if not alternatives:
            continue
        _, corrupted, _ = P.corrupt_game(moves, 5, int(rng.choice(alternatives)), game)
        corrupted = list(corrupted)
        while len(game.game_tokens(corrupted)) < length:
            state = game.state(corrupted)
            if state.is_over:
                break
            nxt = moves[len(corrupted)] if len(corrupted) < len(moves) else -1
            corrupted.append(nxt if nxt in state.legal_moves else state.legal_moves[0])
        a, b = game.game_tokens(moves), game.game_tokens(corrupted)
        if min(len(a), len(b)) >= length:
            return torch.from_numpy(a[None, :length].astype(np.int64)), torch.from_numpy(b[None, :length].astype(np.int64))
    raise RuntimeError("no full-length game pair found")


def main() -> None:
    parser = argparse.ArgumentParser()
    add_model_arguments(parser)
    parser.add_argument("--tokens", type=int, default=0, help="cut both games to this many tokens (default: the model's context)")
    args = parser.parse_args()
    from transformer_lens import patching as tl_patching

    handle = load_bench_model(args)
    clean, corrupted = game_pair(handle.game, max_tokens=args.tokens)
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
