"""First visit of each page against its later runs, in a fresh process per model.

    python bench/first_visit.py [--model othello8 --model chess] [--moves 8] [--no-stored]

In a new process the board player is opened on a game (it loads the model), then each page is
opened once (its first run: whatever it builds on first use) and rerun after each of ``--moves``
more moves. Prints the first run, the median later run and their ratio per page. Goal: first run
<= 5x the later runs. ``--no-stored`` hides the shipped corpus results (``assets/precomputed``) and
uses an empty cache, so every corpus-wide result is computed on first use, as before they were
stored.
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

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
PAGES = ("probe_viewer", "logit_lens", "sae_browser", "patching_lab")


def child(model: str, n_moves: int, no_stored: bool) -> None:
    import streamlit.logger
    from streamlit.testing.v1 import AppTest

    from bench.latency import rerun_after_moves, set_between_runs
    from core import precomputed
    from core.models.registry import load_model

    if no_stored:
        precomputed.SHIPPED = Path(tempfile.mkdtemp()) / "none"
    streamlit.logger.set_log_level("error")
    game = load_model(model).game  # the same process's model object is not the app's cache: loading it here costs the app nothing
    row = max(game.random_games(20, seed=99), key=lambda g: int((g >= 0).sum()))
    moves = [int(m) for m in row if m >= 0]
    start = 10
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=900)
    at.query_params["model"] = model
    at.query_params["moves"] = game.url_moves(tuple(moves[:start]))
    at.run()  # the board player: loads the model
    if at.exception:
        raise RuntimeError(f"board player: {at.exception[0].value}")
    from ui import caches
    t0 = time.perf_counter()
    caches.warm_up_in_background().join()  # a visitor reads the first page for longer than this takes
    print(f"  {model:9s} background warm-up after the first page: {(time.perf_counter() - t0) * 1000:.0f} ms more", flush=True)
    worst = 0.0
    for page in PAGES:
        set_between_runs(at, "moves", tuple(moves[:start]))
        t0 = time.perf_counter()
        at.switch_page(f"pages/{page}.py").run()
        first = (time.perf_counter() - t0) * 1000
        if at.exception:
            raise RuntimeError(f"{page}: {at.exception[0].value}")
        med = float(np.median(rerun_after_moves(at, page, moves, start, n_moves)))
        worst = max(worst, first / med)
        print(f"  {model:9s} {page:13s} first {first:7.0f} ms   later p50 {med:6.0f} ms   first/later {first / med:5.1f}x", flush=True)
    print(f"  {model}: worst first/later {worst:.1f}x (goal <= 5x)", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", action="append", help="bundled model (repeatable; default othello8 and chess)")
    parser.add_argument("--moves", type=int, default=8)
    parser.add_argument("--no-stored", action="store_true", help="ignore shipped and cached corpus results (the old first visit)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.moves, args.no_stored)
        return
    with tempfile.TemporaryDirectory() as cache:
        env = {**os.environ, "BOARDLENS_CACHE": cache, "HF_HUB_OFFLINE": "1"}
        for model in args.model or ["othello8", "chess"]:
            cmd = [sys.executable, __file__, "--child", model, "--moves", str(args.moves)] + (["--no-stored"] if args.no_stored else [])
            subprocess.run(cmd, env=env, check=True)


if __name__ == "__main__":
    main()
