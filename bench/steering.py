"""Steering: the server's time from an edit to the before/after panel, and for a strength sweep
with its random control.

    python bench/steering.py [--models othello8 chess-pgn] [--edits 20]

For each model, the SAE browser is opened on a position of a random game with the steering panel
on (``steer=clamp:2``), then the strength is changed ``--edits`` times; each rerun of the whole
page is timed (Streamlit's ``AppTest``, sharing what a server keeps between reruns). The same with
the sweep on (``sweep=1``: 20 strengths of the feature and of a random feature in one batched
forward, redrawn at every change of strength). Also timed alone, outside Streamlit: the panel's
computation (the edited predictions and, for PGN, the move written greedily; the control's next
token; the unedited side is computed once per position, as the page keeps it) and the sweep's. Goals: p95 <= 300 ms from an edit to the panel, <= 1 s with the sweep.
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
from core.interp.sae.store import list_saes, load_sae  # noqa: E402
from core.interp.shared.token_squares import legal_tokens_now  # noqa: E402
from core.interp.steering.edits import Edit, Feature  # noqa: E402
from core.interp.steering.outcome import kl_divergence, steer_position, unedited  # noqa: E402
from core.interp.steering.sweep import active_features, batched_next, random_unit, strength_sweep  # noqa: E402
from core.models.registry import load_model  # noqa: E402


def summary(ms: list[float]) -> str:
    a = np.asarray(ms)
    return f"p50 {np.percentile(a, 50):6.1f} ms  p95 {np.percentile(a, 95):6.1f} ms  max {a.max():6.1f} ms  (n={len(a)})"


def position(model: str, n_moves: int = 24):
    handle = load_model(model)
    game = handle.game
    moves = tuple(int(m) for m in game.random_games(1, seed=5)[0][:n_moves] if m >= 0)
    return handle, game, moves


def core_times(model: str, n: int) -> tuple[list[float], list[float]]:
    handle, game, moves = position(model)
    entry = list_saes(model)[0]
    sae = load_sae(entry.folder, d_in=handle.hook_width(entry.hook))
    state = game.state(moves)
    tokens = torch.from_numpy(game.game_tokens(moves).astype(np.int64))
    last = len(tokens) - 1
    feature = int(active_features(handle, tokens, sae, entry.hook)[0])
    unit = Feature(sae, entry.hook, feature)
    control = random_unit(handle, unit, seed=feature)
    legal = legal_tokens_now(moves, game)
    rng = np.random.default_rng(0)
    panel, sweep = [], []
    before = unedited(handle, state)  # once per position, as the page keeps it
    for i in range(n + 2):
        value = float(rng.uniform(0.5, 4.0))
        t = time.perf_counter()
        steer_position(handle, state, [Edit(unit, "clamp", value, at=last)], before=before)
        probs = batched_next(handle, tokens, 2, [Edit(control, "clamp", value, at=last, rows=(1, 2))])
        kl_divergence(probs[0], probs[1])
        panel.append((time.perf_counter() - t) * 1000)
        t = time.perf_counter()
        strength_sweep(handle, tokens, Edit(unit, "clamp", 0.0, at=last), Edit(control, "clamp", 0.0, at=last), np.linspace(0, 2 * value, 20), legal=legal)
        sweep.append((time.perf_counter() - t) * 1000)
    return panel[2:], sweep[2:]  # the first runs warm the allocator and the kernels


def page_times(model: str, n: int, sweep: bool) -> list[float]:
    from streamlit.testing.v1 import AppTest

    from tests.streamlit_harness import like_a_server

    like_a_server()
    _, game, moves = position(model)
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=600)
    for key, value in {"model": model, "moves": game.url_moves(moves), "steer": "clamp:2", **({"sweep": "1"} if sweep else {})}.items():
        at.query_params[key] = value
    at.switch_page("pages/sae_browser.py").run()
    assert not at.exception, at.exception
    rng = np.random.default_rng(1)
    times = []
    for i in range(n + 1):
        at.number_input(key="steer_feature_value").set_value(round(float(rng.uniform(0.5, 4.0)), 2))
        t = time.perf_counter()
        at.run()
        times.append((time.perf_counter() - t) * 1000)
        assert not at.exception and any(" nats" in x.value for x in at.info), at.exception
    return times[1:]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=["othello8", "chess-pgn"])
    parser.add_argument("--edits", type=int, default=20)
    args = parser.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    for model in args.models:
        panel, sweep = core_times(model, args.edits)
        print(f"\n{model}")
        print(f"  panel computation (edit + control)        {summary(panel)}")
        print(f"  sweep computation (20 strengths + control) {summary(sweep)}")
        print(f"  page rerun after an edit (goal p95 <= 300 ms)     {summary(page_times(model, args.edits, sweep=False))}")
        print(f"  page rerun with the sweep (goal p95 <= 1000 ms)   {summary(page_times(model, args.edits, sweep=True))}")


if __name__ == "__main__":
    main()
