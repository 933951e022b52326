"""Do the SAE's board-property labels mean something causally? Clamp a labelled feature up and ask
the engine whether the model's moves change the way the labelled board would.

    python bench/steering_labels.py [--model othello8] [--min-f1 0.8] [--positions 10] [--strengths 1 2 4]

For every feature of the bundled SAE whose best board property is "mine X", "theirs X" or "empty X"
with F1 >= ``--min-f1``: positions from held-out random games where the property does *not* hold
and where making it hold (square X set to that state, relative to the player who just moved, as
the probes read it) changes the next player's legal moves. At each, the feature is clamped to
``s`` x its maximum activation at the last position (its SAE's error term kept) and the model's
next-move distribution is judged against the edited board as the probe viewer judges its edits:

* **follows**: the legal-move error against the edited board (of the model's top N moves, N the
  edited board's legal count: legal ones missed plus illegal ones held) goes down;
* **every change**: each move whose legality the edit changes, and that the model gave at least
  1 % before where it became illegal, is dropped (at most half left) or taken up (at least twice
  as likely and 1 %); over the positions with at least one such change.

The control: at the same positions, against the same edited boards, a random live feature clamped
to ``s`` x its own maximum. A feature counts as causal when it follows at half of its positions or
more. Everything runs in batches (one forward per feature and strength).
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from core import corpus_results  # noqa: E402
from core.interp.probes.interventions import edited_board, legal_set_error, move_changes  # noqa: E402
from core.interp.sae.store import list_saes, load_sae  # noqa: E402
from core.interp.steering.edits import Edit, Feature, hook_for  # noqa: E402
from core.models.registry import load_model  # noqa: E402

LABEL = re.compile(r"^(mine|theirs|empty) ([a-z][0-9]+)$")


def candidate_positions(game, games: np.ndarray, rep, square: int, state: str, n: int, rng) -> list[tuple[int, int, np.ndarray]]:
    """``(game, move index, legal squares of the edited board)`` where ``state`` does not hold on
    ``square`` and setting it changes the next player's legal moves (and leaves some)."""
    found = []
    order = rng.permutation(len(games))
    for g in order:
        ts = rng.permutation(np.arange(4, max(5, rep.lengths[g] - 2)))
        for t in ts[:6]:
            nxt = int(rep.next_player[g, t])
            if nxt == 0:
                continue
            board, mover = rep.boards[g, t], int(rep.mover[g, t])
            now = {0: "empty", mover: "mine", -mover: "theirs"}[int(board.reshape(-1)[square])]
            if now == state:
                continue
            legal = game.legal_on_board(edited_board(board, mover, square, state), nxt)
            if legal.any() and not np.array_equal(legal, rep.legal_next[g, t]):
                found.append((int(g), int(t), legal))
                break
        if len(found) == n:
            break
    return found


def clamp_probs(handle, tokens: torch.Tensor, last: torch.Tensor, sae, hook: str, features: list[int], values: list[float]) -> np.ndarray:
    """Next-move probabilities per square ``(rows, n_squares)``; row ``i`` clamps feature
    ``features[i]`` to ``values[i]`` at its last position (a feature < 0: no edit)."""
    game = handle.game
    rows = torch.arange(len(tokens))
    hooks = []
    for i, (f, v) in enumerate(zip(features, values)):
        if f >= 0:
            name, fn = hook_for(Edit(Feature(sae, hook, f), "clamp", float(v), at=int(last[i]), rows=(i, i + 1)))
            hooks.append((name, fn))
    logits = handle.run_with_hooks(tokens, hooks)[rows, last]
    probs = logits.float().softmax(-1).numpy()
    ts = game.token_square()
    out = np.zeros((len(probs), game.n_squares), dtype=np.float32)
    named = np.flatnonzero(ts >= 0)
    out[:, ts[named]] = probs[:, named]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="othello8")
    parser.add_argument("--min-f1", type=float, default=0.8)
    parser.add_argument("--positions", type=int, default=10)
    parser.add_argument("--strengths", type=float, nargs="+", default=[1.0, 2.0, 4.0])
    parser.add_argument("--games", type=int, default=400)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    t0 = time.perf_counter()
    handle = load_model(args.model)
    game = handle.game
    entry = list_saes(args.model)[0]
    sae = load_sae(entry.folder, d_in=handle.hook_width(entry.hook))
    index, where = corpus_results.load_or_build(handle, corpus_results.sae_index_result(handle, sae, entry.hook, entry.name))
    labelled = []
    for f in range(index.d_sae):
        p = int(index.best_property[f])
        if p >= 0 and index.best_f1[f] >= args.min_f1 and (m := LABEL.match(index.property_names[p])):
            labelled.append((f, m.group(1), m.group(2), float(index.best_f1[f])))
    live = np.flatnonzero(index.density > 0)
    print(f"{args.model}, SAE {entry.name} on {entry.hook}: {len(labelled)} features labelled mine/theirs/empty X with F1 >= {args.min_f1} (of {index.d_sae}; {len(live)} live); index: {where}")
    rng = np.random.default_rng(args.seed)
    games = game.random_games(args.games, seed=10_000 + args.seed)[:, : game.n_ctx]
    rep = game.replay(games)
    square_of = {game.square_label(q): q for q in range(game.n_squares)}
    results = {s: {"label": [], "random": [], "label_all": [], "random_all": []} for s in args.strengths}
    for f, state, square_name, f1 in labelled:
        positions = candidate_positions(game, games, rep, square_of[square_name], state, args.positions, rng)
        if not positions:
            continue
        prefixes = [tuple(int(m) for m in games[g, : t + 1]) for g, t, _ in positions]
        toks = [game.game_tokens(p) for p in prefixes]
        width = max(len(t) for t in toks)
        tokens = torch.full((len(toks), width), game.pad_token, dtype=torch.long)
        for i, t in enumerate(toks):
            tokens[i, : len(t)] = torch.from_numpy(t.astype(np.int64))
        last = torch.tensor([len(t) - 1 for t in toks])
        legal_real = np.stack([rep.legal_next[g, t] for g, t, _ in positions])
        legal_edit = np.stack([legal for _, _, legal in positions])
        others = [int(rng.choice(live[live != f])) for _ in positions]
        n = len(positions)
        for s in args.strengths:
            probs = clamp_probs(handle, tokens.repeat(3, 1), last.repeat(3), sae, entry.hook, [-1] * n + [f] * n + others, [0.0] * n + [s * float(index.max_activation[f])] * n + [s * float(index.max_activation[o]) for o in others])
            clean, edited, random = probs[:n], probs[n : 2 * n], probs[2 * n :]
            e_clean, e_edit, e_rand = (legal_set_error(p, legal_edit) for p in (clean, edited, random))
            def every(after: np.ndarray) -> list[bool]:
                """Per position with a change the model could follow: whether it followed them all."""
                out = []
                for i in range(n):
                    testable = [c for c in move_changes(legal_real[i], legal_edit[i], clean[i], after[i], str) if c[4] != "already unlikely"]
                    if testable:
                        out.append(all(c[4] in ("dropped", "took up") for c in testable))
                return out

            results[s]["label"].append(float(np.mean(e_edit < e_clean)))
            results[s]["random"].append(float(np.mean(e_rand < e_clean)))
            results[s]["label_all"] += every(edited)
            results[s]["random_all"] += every(random)
    n_feat = len(results[args.strengths[0]]["label"])
    print(f"{n_feat} features with positions to test, up to {args.positions} positions each ({time.perf_counter() - t0:.0f} s)\n")
    print("clamp (x max) | labelled: share of features that follow (>= half their positions) | positions that follow | every change followed || random features: the same three")
    for s in args.strengths:
        r = results[s]
        lab, ran = np.asarray(r["label"]), np.asarray(r["random"])
        print(f"{s:>13g} | {np.mean(lab >= 0.5):>6.1%} | {lab.mean():>6.1%} | {np.mean(r['label_all']):>6.1%} of {len(r['label_all'])} || {np.mean(ran >= 0.5):>6.1%} | {ran.mean():>6.1%} | {np.mean(r['random_all']):>6.1%} of {len(r['random_all'])}")


if __name__ == "__main__":
    main()
