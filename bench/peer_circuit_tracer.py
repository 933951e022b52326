"""Our attribution graphs against circuit-tracer 0.5.0's on the same model, transcoders and input.

circuit-tracer cannot share our environment (it pins transformers ≤ 4.57.3 and
huggingface-hub < 1.0), so its side runs in its own virtual environment
(``bench/peer_circuit_tracer_side.py``); set ``CT_PYTHON`` to that environment's python:

    python -m venv /tmp/ct && /tmp/ct/bin/pip install torch==2.13.0 circuit-tracer==0.5.0
    CT_PYTHON=/tmp/ct/bin/python python bench/peer_circuit_tracer.py [--games 3]

For each bundled transcoder set of a board model and a few mid-game positions of fresh games it
compares: the active features, the unpruned adjacency matrix (largest difference relative to
the largest edge), the replacement and completeness scores, and the pruned node and edge masks
at circuit-tracer's defaults (0.8, 0.98). circuit-tracer zeroes the transcoders' activations and
errors at the first position (its BOS position), so our graphs here start their feature and
error nodes at position 1 (``first=1``); everything else is as the Circuits page computes it.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from core.interp.circuits.attribution import attribute  # noqa: E402
from core.interp.circuits.pruning import graph_scores, prune  # noqa: E402
from core.interp.circuits.replacement import TRANSCODERS, load_transcoders  # noqa: E402
from core.interp.circuits.targets import salient_logits  # noqa: E402
from core.models.registry import load_model  # noqa: E402


def peer(ct_python: str, model: str, tokens: list[int]) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "graph.safetensors"
        cmd = [ct_python, str(ROOT / "bench" / "peer_circuit_tracer_side.py"), str(ROOT / "assets" / "models" / model), str(TRANSCODERS / model), ",".join(map(str, tokens)), str(out)]
        t0 = time.perf_counter()
        done = subprocess.run(cmd, capture_output=True, text=True)
        if done.returncode:
            raise SystemExit(f"circuit-tracer's side failed:\n{done.stderr[-3000:]}")
        result = load_file(str(out))
        result["seconds"] = time.perf_counter() - t0
        return result


def compare(handle, transcoders, tokens: list[int], theirs: dict) -> dict:
    toks = torch.tensor(tokens)
    with torch.no_grad():
        logits = handle.model(toks[None].to(handle.device))[0, -1].float().cpu()
    targets = salient_logits(handle.model.W_U.detach().float().cpu(), logits, len(tokens) - 1)
    t0 = time.perf_counter()
    ours = attribute(handle, toks, transcoders, targets, first=1)
    seconds = time.perf_counter() - t0
    same_features = np.array_equal(ours.features, theirs["active_features"].numpy())
    same_targets = [t.token for t in targets] == theirs["logit_tokens"].tolist()
    row = {"features": ours.n_features, "their features": len(theirs["active_features"]), "same features": same_features, "same targets": same_targets, "ours s": round(seconds, 2), "theirs s": round(float(theirs["seconds"]), 1)}
    if not (same_features and same_targets):
        return row
    a, b = ours.adjacency(), theirs["adjacency"]
    row["adjacency max diff / max edge"] = float((a - b).abs().max() / b.abs().max())
    r, c = graph_scores(ours)
    tr, tc = theirs["scores"].tolist()
    row.update({"replacement": round(r, 5), "their replacement": round(tr, 5), "completeness": round(c, 5), "their completeness": round(tc, 5), "score diff": max(abs(r - tr), abs(c - tc))})
    pruned = prune(ours)
    row["node mask agrees"] = float((pruned.node_mask == theirs["node_mask"]).float().mean())
    full_edges = torch.zeros(ours.n_nodes, ours.n_nodes, dtype=torch.bool)
    full_edges[: ours.n_features] = pruned.edge_mask[: ours.n_features]
    full_edges[ours.target_index(0) :] = pruned.edge_mask[ours.n_features :]
    row["edge mask differs"] = int((full_edges != theirs["edge_mask"]).sum())
    row["kept nodes"] = int(pruned.node_mask.sum())
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--games", type=int, default=3)
    parser.add_argument("--models", default="othello8,chess-pgn")
    args = parser.parse_args()
    ct_python = os.environ.get("CT_PYTHON")
    if not ct_python:
        raise SystemExit("set CT_PYTHON to the python of a virtual environment with circuit-tracer 0.5.0 (see this file's docstring)")
    torch.set_num_threads(2)
    worst = {"adjacency": 0.0, "scores": 0.0}
    for model in args.models.split(","):
        handle = load_model(model)
        transcoders = load_transcoders(TRANSCODERS / model, handle.cfg.n_layers)
        games = handle.game.random_games(args.games, seed=20261208)
        for g, game in enumerate(games):
            moves = tuple(int(m) for m in game if m >= 0)
            moves = moves[: len(moves) // 2]  # mid-game
            tokens = [int(t) for t in handle.game.game_tokens(moves)][: handle.cfg.n_ctx]
            theirs = peer(ct_python, model, tokens)
            row = compare(handle, transcoders, tokens, theirs)
            print(f"{model} game {g} ({len(tokens)} tokens): " + ", ".join(f"{k} {v}" for k, v in row.items()), flush=True)
            worst["adjacency"] = max(worst["adjacency"], row.get("adjacency max diff / max edge", float("inf")))
            worst["scores"] = max(worst["scores"], row.get("score diff", float("inf")))
    print(f"worst adjacency difference (relative to the largest edge): {worst['adjacency']:.2e}; worst score difference: {worst['scores']:.2e}; goal 1e-4 each")
    sys.exit(0 if worst["adjacency"] <= 1e-4 and worst["scores"] <= 1e-4 else 1)


if __name__ == "__main__":
    main()
