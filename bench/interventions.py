"""Probe interventions flip the model's predictions toward the edited board (with a random control).

    python bench/interventions.py [--model othello8 | chess] [--positions 200] [--layers 2 3]

Positions come from random games. Othello: at each, one piece whose colour flip (mine <-> theirs)
changes the next player's legal moves is flipped in the model's residual stream along the bundled
mine/theirs/empty probe directions, at the latest position. Chess: one piece of the side to move
that has a legal move is removed along the bundled piece probe's directions (Karvonen's
intervention); the prediction judged is the next token, the square the next move starts on. Prints the mean legal-set error
(false positives + false negatives of the top-N, N = legal moves of the edited board) against the
edited board for a sweep of scales, for the probe direction and for a random direction of the
same norm. Goal: error after the edit lower than without it.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from core.interp.probes import interventions as I  # noqa: E402
from core.interp.probes import piece_edits as E  # noqa: E402
from core.interp.probes import linear_probes as P  # noqa: E402
from bench.common import add_model_arguments, load_bench_model  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    add_model_arguments(parser)
    parser.add_argument("--positions", type=int, default=200)
    parser.add_argument("--layers", type=int, nargs="+", default=None, help="default: every layer-set in the table below")
    parser.add_argument("--scales", type=float, nargs="+", default=[0, 0.5, 1, 2, 4, 8, 16])
    args = parser.parse_args()
    handle = load_bench_model(args)
    game, n_layers = handle.game, handle.cfg.n_layers
    chess_like = not game.square_moves
    target = game.board_target
    probes = P.load_probe_set(P.PROBE_ROOT / handle.name, target, handle.cfg.d_model, game.rows)
    by_layer = {p.meta["layer"]: p for p in probes.values()}
    if chess_like:
        examples = game.edit_examples(args.positions, seed=7)
        batch, legal = E.removal_batch(examples, game)
        run = E.run_edited
        print(f"{handle.name}: {len(examples)} positions, one piece of the side to move removed each; legal-set error of the next from-square vs the edited board (mean)")
    else:
        prefixes, squares, targets, legal = I.flip_examples(game, args.positions, seed=7)
        batch = I.make_batch(prefixes, squares, targets, game)
        run = I.run_edited
        print(f"{handle.name}: {len(prefixes)} positions, one piece flipped each; legal-set error vs the edited board (mean)")
    layer_sets = [args.layers] if args.layers else [[layer] for layer in range(n_layers)] + [list(range(1, n_layers // 2 + 1)), list(range(n_layers // 2, n_layers)), list(range(n_layers))]
    print(f"{'layers':>16s} {'direction':>9s} " + " ".join(f"{'x' + format(s, 'g'):>6s}" for s in args.scales))
    best = None
    for layers in layer_sets:
        t0 = time.perf_counter()
        sweep = I.scale_sweep(handle, by_layer, batch, legal, layers, args.scales, run=run)
        for kind in ("probe", "random"):
            print(f"{str(layers):>16s} {kind:>9s} " + " ".join(f"{v:6.2f}" for v in sweep[kind]))
        gain = sweep["probe"][0] - min(sweep["probe"])
        if best is None or gain > best[0]:
            best = (gain, layers, sweep)
        print(f"{'':>16s} ({time.perf_counter() - t0:.1f} s)")
    gain, layers, sweep = best
    i = sweep["probe"].index(min(sweep["probe"]))
    print(f"best: layers {layers} at scale {sweep['scale'][i]:g}: error {sweep['probe'][0]:.2f} without edit -> {sweep['probe'][i]:.2f} with the edit; random direction at that scale {sweep['random'][i]:.2f}")


if __name__ == "__main__":
    main()
