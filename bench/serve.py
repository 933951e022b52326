"""The hosted demo under load: the real server, N browsers at once, every page for every model.

    python bench/serve.py [--sessions 8] [--models othello8 othello6 chess] [--rounds 1]

Starts ``streamlit run app.py`` (offline), measures the time from start to the first rendered page,
then drives ``--sessions`` concurrent headless-Chromium sessions (one browser context each) through
every page for every model (a link with a few moves; a page counts as rendered when its "Share this
view" control, the last thing a page draws, is on screen). The server's resident memory is sampled
every 0.2 s. Prints peak RSS (goal <= 1.5 GB for 8 sessions), the first-page time (goal <= 5 s),
render time per page (p50/p95) and the number of exceptions shown (goal 0).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
CHROMIUM = os.environ.get("BOARDLENS_CHROMIUM", "/usr/bin/chromium")
PAGES = {"board player": "", "probe viewer": "probe_viewer", "logit lens": "logit_lens", "SAE browser": "sae_browser", "patching lab": "patching_lab"}
MOVES = {"othello": "d3c5f6f5e6", "chess": "e2e4e7e5g1f3b8c6"}


def rss_mb(pid: int) -> float:
    """Resident memory of a process from /proc (Linux), in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


class Sampler(threading.Thread):
    def __init__(self, pid: int):
        super().__init__(daemon=True)
        self.pid, self.peak, self.stop = pid, 0.0, threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            try:
                self.peak = max(self.peak, rss_mb(self.pid))
            except OSError:
                return
            time.sleep(0.2)


async def render(context, url: str, timeout_s: float) -> tuple[float, int]:
    """Seconds until the page's share control shows, and the exceptions on it."""
    page = await context.new_page()
    t0 = time.perf_counter()
    await page.goto(url)
    await page.get_by_role("button", name="Share this view").wait_for(timeout=timeout_s * 1000)
    seconds = time.perf_counter() - t0
    errors = await page.locator('[data-testid="stException"]').count()
    await page.close()
    return seconds, errors


async def session(browser, base: str, models: dict[str, str], rounds: int, timeout_s: float, times: dict, errors: list) -> None:
    context = await browser.new_context(viewport={"width": 1400, "height": 1000})
    for _ in range(rounds):
        for model, game in models.items():
            for name, path in PAGES.items():
                seconds, n = await render(context, f"{base}/{path}?model={model}&moves={MOVES[game]}", timeout_s)
                times.setdefault(name, []).append(seconds)
                errors.append(n)
    await context.close()


async def drive(base: str, sessions: int, models: dict[str, str], rounds: int, timeout_s: float) -> tuple[dict, list, float]:
    from playwright.async_api import async_playwright

    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=["--headless", "--no-sandbox", "--disable-gpu"])
        first = await browser.new_context()
        t_first, _ = await render(first, f"{base}/", timeout_s)
        await first.close()
        times: dict[str, list[float]] = {}
        errors: list[int] = []
        await asyncio.gather(*(session(browser, base, models, rounds, timeout_s, times, errors) for _ in range(sessions)))
        await browser.close()
    return times, errors, t_first


def main() -> None:
    from core.models.registry import list_models

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=8)
    parser.add_argument("--models", nargs="+", default=None, help="default: every bundled board-game model")
    parser.add_argument("--rounds", type=int, default=1, help="passes over every page and model per session")
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds a page may take")
    args = parser.parse_args()
    bundled = {s.name: s.game for s in list_models() if s.source == "bundled" and s.kind == "game"}  # text pages: bench/latency.py
    models = {m: bundled[m] for m in (args.models or bundled)}

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    base = f"http://127.0.0.1:{port}"
    t_start = time.perf_counter()
    server = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true", "--server.port", str(port), "--browser.gatherUsageStats", "false"],
        cwd=ROOT, env={**os.environ, "HF_HUB_OFFLINE": "1"}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    sampler = Sampler(server.pid)
    sampler.start()
    try:
        while True:
            try:
                urllib.request.urlopen(base + "/_stcore/health", timeout=1)
                break
            except OSError:
                time.sleep(0.1)
        t_health = time.perf_counter() - t_start
        times, errors, t_first = asyncio.run(drive(base, args.sessions, models, args.rounds, args.timeout))
        t_first_total = t_health + t_first
    finally:
        sampler.stop.set()
        server.terminate()
        server.wait(15)
    print(f"server: {args.sessions} concurrent sessions x {len(models)} models ({', '.join(models)}) x {len(PAGES)} pages x {args.rounds} round(s)")
    print(f"first page rendered {t_first_total:.1f} s after the server started (health check answered at {t_health:.1f} s); goal <= 5 s")
    print(f"peak server RSS {sampler.peak:,.0f} MB (goal <= 1,500 MB)")
    print(f"exceptions on pages: {sum(errors)} (goal 0)")
    print(f"{'page':<14s} {'renders':>7s} {'p50 s':>7s} {'p95 s':>7s} {'max s':>7s}")
    for name, values in times.items():
        v = np.array(values)
        print(f"{name:<14s} {len(v):>7d} {np.percentile(v, 50):7.2f} {np.percentile(v, 95):7.2f} {v.max():7.2f}")


if __name__ == "__main__":
    main()
