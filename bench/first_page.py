"""The first visitor after a server starts: health check, then the first page in headless Chromium.

    python bench/first_page.py [--runs 3] [--image boardlens]

For each start command, a fresh server process on a free port: the seconds until its health check
answers, then until the board player (the default page) has rendered and settled for the first
visitor, then for a second visitor. ``streamlit run app.py`` makes the first visitor wait for the
imports and the default model; ``python -m ui.serve`` (the container's command) does that work
before it listens. ``--image NAME`` adds the same measurement of a fresh container of that image
(``docker run``, its own command; building it: docs/deploy.md). Goal: the first page <= 3 s after
healthy.
"""

from __future__ import annotations

import argparse
import functools
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Callable

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from tests.e2e.helpers import CHROMIUM, CHROMIUM_FLAGS, SETTLED, free_port  # noqa: E402

COMMANDS = {"streamlit run app.py": ["-m", "streamlit", "run", "app.py"], "python -m ui.serve": ["-m", "ui.serve"]}


def start_process(args: list[str], port: int) -> Callable[[], None]:
    """A server process of this checkout on ``port``; returns its stop function."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "STREAMLIT_SERVER_PORT": str(port), "STREAMLIT_SERVER_ADDRESS": "127.0.0.1",
           "STREAMLIT_SERVER_HEADLESS": "true", "STREAMLIT_BROWSER_GATHER_USAGE_STATS": "false"}
    proc = subprocess.Popen([sys.executable, *args], cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def stop() -> None:
        proc.terminate()
        proc.wait(20)
    return stop


def start_container(image: str, port: int) -> Callable[[], None]:
    """A fresh container of ``image`` (its own command, port 7860 inside) on ``port``."""
    name = f"boardlens-bench-{port}"
    subprocess.run(["docker", "run", "-d", "--rm", "--name", name, "-p", f"127.0.0.1:{port}:7860", image], check=True, stdout=subprocess.DEVNULL)
    return lambda: subprocess.run(["docker", "stop", "-t", "5", name], check=False, stdout=subprocess.DEVNULL)


def first_visits(start: Callable[[int], Callable[[], None]]) -> tuple[float, float, float]:
    """``(seconds to healthy, first page after healthy, second page)`` for one fresh server
    that ``start(port)`` starts (it returns the server's stop function)."""
    from playwright.sync_api import sync_playwright

    port = free_port()
    t0 = time.perf_counter()
    stop = start(port)
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
        stop()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--image", help="also measure a fresh container of this Docker image")
    args = parser.parse_args()
    starts = {name: functools.partial(start_process, command) for name, command in COMMANDS.items()}
    if args.image:
        starts[f"docker run {args.image}"] = functools.partial(start_container, args.image)
    for name, start in starts.items():
        runs = np.array([first_visits(start) for _ in range(args.runs)])
        healthy, first, second = np.median(runs, axis=0)
        print(f"{name:22s} healthy after {healthy:5.1f} s; first page {first:5.2f} s after that, second {second:5.2f} s (median of {args.runs}; goal first <= 3 s)", flush=True)


if __name__ == "__main__":
    main()
