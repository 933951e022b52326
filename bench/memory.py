"""Where the server's memory goes: resident memory after each stage of serving every page.

    python bench/memory.py [--models othello8 othello6 chess] [--sessions 2]

Runs in one process, as the server does: imports, then every page for every model through
Streamlit's ``AppTest`` (the real page scripts, sharing the process-wide model and data caches the
way browser sessions share them), then more sessions on the same views (their extra memory is
per-session state). Prints the resident memory (RSS) after each stage, what the stage added and
the peak during it (the temporaries a page's work needs at once).
"""

from __future__ import annotations

import argparse
import gc
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

PAGES = {"board player": "pages/board_player.py", "probe viewer": "pages/probe_viewer.py", "logit lens": "pages/logit_lens.py", "SAE browser": "pages/sae_browser.py", "patching lab": "pages/patching_lab.py"}
MOVES = {"othello": "d3c5f6f5e6", "chess": "e2e4e7e5g1f3b8c6"}


def rss_mb(field: str = "VmRSS") -> float:
    """This process's resident memory (``VmHWM``: its peak since the last ``reset_peak``), in MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return 0.0


def reset_peak() -> None:
    """Start a new peak (Linux: writing 5 to clear_refs resets VmHWM to the current RSS)."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass


class Stages:
    def __init__(self) -> None:
        self.last = rss_mb()
        self.rows: list[tuple[str, float, float, float, float]] = []
        reset_peak()

    def mark(self, name: str, seconds: float) -> None:
        gc.collect()
        now, peak = rss_mb(), rss_mb("VmHWM")
        self.rows.append((name, now, now - self.last, peak, seconds))
        print(f"{name:<52} {now:8.0f} MB  {now - self.last:+7.0f} MB  {peak:8.0f} MB  {seconds:6.2f} s", flush=True)
        self.last = now
        reset_peak()


def open_page(page: str, model: str, moves: str):
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=600)
    at.query_params["model"] = model
    at.query_params["moves"] = moves
    at.switch_page(page).run()
    if at.exception:
        raise SystemExit(f"{page} for {model} raised: {at.exception[0].value}")
    return at


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--models", nargs="+", default=["othello8", "othello6", "chess"])
    parser.add_argument("--sessions", type=int, default=2, help="extra sessions over the same views (per-session cost)")
    args = parser.parse_args()
    stages = Stages()
    print(f"{'stage':<52} {'RSS after':>11}  {'added':>10}  {'peak during':>11}  {'time':>7}")
    stages.mark("python + this script", 0.0)
    t = time.perf_counter()
    import streamlit  # noqa: F401

    stages.mark("import streamlit", time.perf_counter() - t)
    t = time.perf_counter()
    import torch  # noqa: F401

    stages.mark("import torch", time.perf_counter() - t)
    t = time.perf_counter()
    import transformer_lens  # noqa: F401

    stages.mark("import transformer_lens (+ transformers, datasets)", time.perf_counter() - t)
    t = time.perf_counter()
    import sae_lens  # noqa: F401

    stages.mark("import sae_lens", time.perf_counter() - t)
    t = time.perf_counter()
    from ui import sae_caches, shell  # noqa: F401 - what every page imports

    stages.mark("import ui, core, plotly, pandas", time.perf_counter() - t)
    from core.models.registry import list_models

    games = {s.name: s.game for s in list_models()}
    for model in args.models:
        for name, page in PAGES.items():
            t = time.perf_counter()
            open_page(page, model, MOVES[games[model]])
            stages.mark(f"{model}: {name}", time.perf_counter() - t)
    for i in range(args.sessions):
        t = time.perf_counter()
        for model in args.models:
            for page in PAGES.values():
                open_page(page, model, MOVES[games[model]])
        stages.mark(f"session {i + 2}: every page and model again", time.perf_counter() - t)
    print(f"peak RSS {max(r[3] for r in stages.rows):.0f} MB (one session at a time; concurrent sessions add their work on top)")


if __name__ == "__main__":
    main()
