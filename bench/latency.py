"""Latency after a move: the board player's panel data, and every page as the server runs it.

    python bench/latency.py [--model othello8|chess] [--positions 300]
    python bench/latency.py --pages [--model othello8|chess] [--moves 12]

Default: for each position of random games, engine state, model forward (for a multi-token game:
every legal move scored in one batched forward), the move tables, board and history figures —
everything the board player recomputes after a click. Prints the distribution; goal p95 <= 100 ms
(Othello), <= 150 ms (chess).

``--pages``: each of the five pages run by Streamlit's ``AppTest`` (the whole script: widgets,
caches, figures serialised), opened once on a game, then ``--moves`` times after one more move of
that game; prints p50 / p95 / max per page. Goal: p95 <= 300 ms for every page. The runs share
what a server keeps between reruns (``tests.streamlit_harness``: the compiled scripts), which a
bare ``AppTest`` would rebuild on every run.

A text model (``--model text-stdlib``): each of ``--positions`` prompts of 128 held-out tokens →
the SAE's features at every token and, per token, the top-5 next tokens with and without the SAE
spliced in (what the SAE browser's prompt view shows). Goal p95 <= 150 ms. With ``--pages``, every
page is rerun after ``--moves`` new prompts.
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
from core.interp.shared.predictions import predict, top_k  # noqa: E402
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


PAGES = ("board_player", "probe_viewer", "logit_lens", "sae_browser", "patching_lab")


def page_latency(model: str, game, page: str, game_moves: list[int], start: int, n_moves: int) -> np.ndarray:
    """Milliseconds of each rerun of ``page`` after one more move (the first run, which fills the
    per-model caches, is not counted; nor is the server's one background import after its first
    page, waited for here: it is paid once per server, and its GIL share slowed the next reruns)."""
    import streamlit.logger
    from streamlit.testing.v1 import AppTest

    from tests.streamlit_harness import like_a_server

    streamlit.logger.set_log_level("error")  # not a warning per rerun about running outside a server
    like_a_server()  # AppTest would recompile the app and its page on every rerun; a server does not
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=600)
    at.query_params["model"] = model
    at.query_params["moves"] = game.url_moves(tuple(game_moves[:start]))
    at.switch_page(f"pages/{page}.py").run()
    if at.exception:
        raise RuntimeError(f"{page}: {at.exception[0].value}")
    from ui import caches
    for name in caches.SLOW_IMPORTS:  # returns when the background import of the same module is done (the import lock)
        __import__(name)
    return rerun_after_moves(at, page, game_moves, start, n_moves)


def set_between_runs(at, key: str, value) -> None:
    """``at.session_state[key] = value`` between runs, without Streamlit's "missing
    ScriptRunContext" warning for each (a bare-mode warning; a server never sets state outside a
    run): a run puts the log level back to Streamlit's config, so it is lowered again here."""
    import streamlit.logger

    streamlit.logger.set_log_level("error")
    at.session_state[key] = value


def rerun_after_moves(at, page: str, game_moves: list[int], start: int, n_moves: int) -> np.ndarray:
    """Milliseconds of each rerun of the open page after one more move of ``game_moves``."""
    times = []
    for k in range(start + 1, start + 1 + n_moves):
        set_between_runs(at, "moves", tuple(game_moves[:k]))
        t0 = time.perf_counter()
        at.run()
        times.append((time.perf_counter() - t0) * 1000)
        if at.exception:
            raise RuntimeError(f"{page} after move {k}: {at.exception[0].value}")
        if at.session_state["moves"] != tuple(game_moves[:k]):
            raise RuntimeError(f"{page} did not keep the game at move {k}")
    return np.array(times)


def text_prompts(handle, n: int, width: int = 128) -> list[tuple[int, ...]]:
    """``n`` prompts of ``width`` tokens: the start token and held-out text after it."""
    from core.text.shard import shard_windows
    from core.text.shard import bundled_shard

    windows = shard_windows(bundled_shard(handle), width - 1, n)
    return [(handle.tokenizer.end_of_text, *map(int, w)) for w in windows]


def text_main(args: argparse.Namespace, handle) -> None:
    from core.interp.sae import token_sae as TS
    from core.interp.sae.store import list_saes, load_sae

    entry = list_saes(handle.name)[0]
    sae = load_sae(entry.folder, d_in=handle.hook_width(entry.hook))
    prompts = text_prompts(handle, args.positions)

    def once(tokens) -> None:
        comparison = TS.splice_comparison(handle, sae, entry.hook, torch.tensor(tokens))
        comparison.features.topk(8, dim=-1)
        comparison.top_k(5)

    once(prompts[0])
    times = []
    for tokens in prompts:
        t0 = time.perf_counter()
        once(tokens)
        times.append((time.perf_counter() - t0) * 1000)
    t = np.array(times)
    print(f"model {handle.name}, SAE {entry.name} ({entry.hook}), {len(t)} prompts of {len(prompts[0])} tokens: features at every token + top-5 with and without the SAE")
    print("latency ms: " + "  ".join(f"p{q}={np.percentile(t, q):.1f}" for q in (5, 50, 95, 99)) + f"  max={t.max():.1f}; torch threads {torch.get_num_threads()}")
    print(f"p95 {np.percentile(t, 95):.1f} ms (goal <= 150 ms)")


def text_pages_main(args: argparse.Namespace, handle) -> None:
    import streamlit.logger
    from streamlit.testing.v1 import AppTest

    from tests.streamlit_harness import like_a_server

    streamlit.logger.set_log_level("error")
    like_a_server()
    prompts = [handle.tokenizer.decode(p[1:]) for p in text_prompts(handle, args.moves + 1)]
    print(f"model {handle.name}: each page opened on a prompt, then rerun after each of {args.moves} new prompts of 128 tokens (AppTest, whole script)")
    worst = 0.0
    for page in args.page or PAGES:
        at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=600)
        at.query_params["model"] = handle.name
        at.query_params["prompt"] = prompts[0]
        at.switch_page(f"pages/{page}.py").run()
        times = []
        for prompt in prompts[1:]:
            set_between_runs(at, "prompt", prompt)
            t0 = time.perf_counter()
            at.run()
            times.append((time.perf_counter() - t0) * 1000)
            if at.exception:
                raise RuntimeError(f"{page}: {at.exception[0].value}")
        t = np.array(times)
        worst = max(worst, float(np.percentile(t, 95)))
        print(f"  {page:13s} p50 {np.percentile(t, 50):7.0f} ms   p95 {np.percentile(t, 95):7.0f} ms   max {t.max():7.0f} ms")
    print(f"worst page p95 {worst:.0f} ms (goal <= 300 ms)")


def pages_main(args: argparse.Namespace) -> None:
    from core.models.registry import default_model_name

    model = args.model or default_model_name()
    handle = load_bench_model(args)
    if handle.kind == "text":
        return text_pages_main(args, handle)
    games = handle.game.random_games(20, seed=99)
    row = max(games, key=lambda g: int((g >= 0).sum()))
    game_moves = [int(m) for m in row if m >= 0]
    start = min(10, len(game_moves) - args.moves - 1)
    print(f"model {model}: each page opened at move {start}, then rerun after each of {args.moves} more moves (AppTest, whole script)")
    worst = 0.0
    for page in args.page or PAGES:
        t = page_latency(model, handle.game, page, game_moves, start, args.moves)
        worst = max(worst, float(np.percentile(t, 95)))
        print(f"  {page:13s} p50 {np.percentile(t, 50):7.0f} ms   p95 {np.percentile(t, 95):7.0f} ms   max {t.max():7.0f} ms" + (f"   runs: {np.round(t).astype(int).tolist()}" if args.verbose else ""))
    print(f"worst page p95 {worst:.0f} ms (goal <= 300 ms)")


def main() -> None:
    parser = argparse.ArgumentParser()
    add_model_arguments(parser)
    parser.add_argument("--positions", type=int, default=300)
    parser.add_argument("--pages", action="store_true", help="time every page (AppTest) after a move instead")
    parser.add_argument("--page", action="append", choices=PAGES, help="with --pages: only this page (repeatable)")
    parser.add_argument("--moves", type=int, default=12, help="with --pages: moves timed per page")
    parser.add_argument("--verbose", action="store_true", help="with --pages: every run's time")
    args = parser.parse_args()
    if args.pages:
        return pages_main(args)
    handle = load_bench_model(args)
    if handle.kind == "text":
        return text_main(args, handle)
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
