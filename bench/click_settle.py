"""Click -> page settled, in headless Chromium against the real server: what a person waits for.

    python bench/click_settle.py [--model othello8] [--clicks 20] [--page board_player ...]

Starts ``streamlit run app.py`` on a free port and Debian's Chromium, opens each page on a game,
then clicks its "Random move" button (the patching lab: its direction switch) ``--clicks`` times
(a rerun like any click, square or slider). Two more entries click what a researcher opens:
``lens_sections`` opens the lens's sections in turn (Attention, Neuron view, Attribution, Layer by
layer), ``sae_features`` opens the features active at the position one after another. Each click is timed until the page has settled: the script run it started has
ended (no element is left stale: Streamlit marks the previous run's elements until the new run
replaces them) and the game in the URL has the new move. Prints p50 / p95 / max per page. Goals: board player p95 <= 0.8 s, analysis
pages p95 <= 1.5 s. Run it on an otherwise idle machine: the browser, the server and this script
share the cores.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from tests.e2e.helpers import SETTLED, chromium, streamlit_server  # noqa: E402

PAGES = {"board_player": "", "probe_viewer": "probe_viewer", "logit_lens": "logit_lens", "sae_browser": "sae_browser", "patching_lab": "patching_lab",
         "lens_sections": "logit_lens", "sae_features": "sae_browser"}
LENS_SECTIONS = ["Attention", "Neuron view", "Attribution", "Layer by layer"]  # each click opens the next one
GOAL_S = {"board_player": 0.8}


def link(page) -> str:
    """The page's query string, read from the page itself (``page.url`` is only refreshed when
    playwright handles events): every click below changes it (a move, or the lab's direction)."""
    return page.evaluate("() => location.search")


def wait_settled(page, link_before: str, timeout_s: float = 30.0) -> None:
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        if link(page) != link_before and page.evaluate(SETTLED):
            return
        time.sleep(0.01)
    stale = page.evaluate("() => document.querySelectorAll('[data-stale=\"true\"]').length")
    raise TimeoutError(f"the page did not settle in {timeout_s:.0f} s (link {page.url}, {stale} stale elements)")


def time_page(browser, url: str, page_name: str, model: str, clicks: int) -> np.ndarray:
    from core.models.registry import list_models

    spec = next(s for s in list_models() if s.name == model)
    game = spec.game_plugin
    page = browser.new_page(viewport={"width": 1500, "height": 1000})
    page.goto(f"{url}/{PAGES[page_name]}?model={model}&moves={game.url_moves(tuple(int(m) for m in game.random_games(1, seed=7)[0][:6]))}")
    page.wait_for_selector("[data-testid=stMain] .js-plotly-plot", timeout=240_000)
    page.wait_for_function(SETTLED, timeout=240_000)
    time.sleep(1.0)
    times = []
    for _ in range(clicks):
        before = link(page)
        if page_name == "patching_lab":  # no "Random move" there: switch the patching direction
            target = page.get_by_text("noising: corrupted → clean run" if "direction=denoising" in before or "direction" not in before else "denoising: clean → corrupted run").first
        elif page_name == "lens_sections":  # open the next section of the lens
            target = page.locator("[data-testid=stMain]").get_by_text(LENS_SECTIONS[len(times) % len(LENS_SECTIONS)], exact=True).first
        elif page_name == "sae_features":  # open another of the features active at this position
            buttons = page.locator("[class*=st-key-now_] button:visible").filter(has_text="#")  # the features firing at this position
            open_now = re.search(r"feature=(\d+)", before)
            numbers = [buttons.nth(i).inner_text().split(":")[0].strip().lstrip("#") for i in range(min(buttons.count(), 6))]
            others = [i for i, n in enumerate(numbers) if not open_now or n != open_now.group(1)]  # never the feature already open
            target = buttons.nth(others[len(times) % len(others)])
        else:
            target = page.get_by_role("button", name="Random move").first
        t0 = time.perf_counter()
        target.click()
        wait_settled(page, before)
        times.append(time.perf_counter() - t0)
        if os.environ.get("BENCH_VERBOSE"):
            print(f"    click {len(times)}: {times[-1]:.2f} s", flush=True)
    page.context.close()
    return np.array(times)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default="othello8")
    parser.add_argument("--clicks", type=int, default=20)
    parser.add_argument("--page", action="append", choices=list(PAGES))
    args = parser.parse_args()
    server = streamlit_server()
    url = next(server)
    browsers = chromium()
    browser = next(browsers)
    try:
        print(f"model {args.model}: {args.clicks} clicks per page, click -> settled (server and browser on this machine)")
        for name in args.page or PAGES:
            t = time_page(browser, url, name, args.model, args.clicks)
            goal = GOAL_S.get(name, 1.5)
            p95 = float(np.percentile(t, 95))
            print(f"  {name:13s} p50 {np.percentile(t, 50):5.2f} s   p95 {p95:5.2f} s   max {t.max():5.2f} s   (goal p95 <= {goal} s{'' if p95 <= goal else ': MISSED'})", flush=True)
    finally:
        for gen in (browsers, server):
            next(gen, None)  # past their yield: the browser closes, the server stops


if __name__ == "__main__":
    main()
