"""The first visitor after a server starts: health check, then the first page in headless Chromium.

    python bench/first_page.py [--runs 3]

For each start command, a fresh server process on a free port: the seconds until its health check
answers, then until the board player (the default page) has rendered and settled for the first
visitor, then for a second visitor. ``streamlit run app.py`` makes the first visitor wait for the
imports and the default model; ``python -m ui.serve`` (the container's command) does that work
before it listens. Goal: the first page <= 3 s after healthy. The same measurement inside the
container image needs Docker (README's deploy section).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from tests.e2e.helpers import CHROMIUM, CHROMIUM_FLAGS, SETTLED, free_port  # noqa: E402

COMMANDS = {"streamlit run app.py": ["-m", "streamlit", "run", "app.py"], "python -m ui.serve": ["-m", "ui.serve"]}


def first_visits(args: list[str]) -> tuple[float, float, float]:
    """``(seconds to healthy, first page after healthy, second page)`` for one fresh server."""
    from playwright.sync_api import sync_playwright

    port = free_port()
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "STREAMLIT_SERVER_PORT": str(port), "STREAMLIT_SERVER_ADDRESS": "127.0.0.1",
           "STREAMLIT_SERVER_HEADLESS": "true", "STREAMLIT_BROWSER_GATHER_USAGE_STATS": "false"}
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, *args], cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=1)
                break
            except OSError:
                if time.perf_counter() - t0 > 180:
                    raise TimeoutError("the server did not answer its health check in 180 s")
                time.sleep(0.05)
        healthy = time.perf_counter() - t0
        pages = []
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
            for _ in range(2):
                page = browser.new_page(viewport={"width": 1500, "height": 1000})
                t1 = time.perf_counter()
                page.goto(f"http://127.0.0.1:{port}/?model=othello8&moves=d3c5f6")
                page.wait_for_selector("[data-testid=stMain] .js-plotly-plot", timeout=180_000)
                page.wait_for_function(SETTLED, timeout=180_000)
                pages.append(time.perf_counter() - t1)
                page.close()
            browser.close()
        return healthy, pages[0], pages[1]
    finally:
        proc.terminate()
        proc.wait(20)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    for name, command in COMMANDS.items():
        runs = np.array([first_visits(command) for _ in range(args.runs)])
        healthy, first, second = np.median(runs, axis=0)
        print(f"{name:22s} healthy after {healthy:5.1f} s; first page {first:5.2f} s after that, second {second:5.2f} s (median of {args.runs}; goal first <= 3 s)", flush=True)


if __name__ == "__main__":
    main()
