"""The patching lab's price of an exact sweep against the time the sweep then takes.

    python bench/sweep_price.py

For each link below (a fresh process state per link: a first sweep on the model, priced from its
forward time alone), the page's button states "about X s"; the bench clicks it and reads the
sweep's own time as the page states it under the maps. Prints both and their ratio (goal: within
2x either way).
"""

from __future__ import annotations

import re
import sys
import threading
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from streamlit.testing.v1 import AppTest  # noqa: E402

APP = str(Path(__file__).resolve().parents[1] / "app.py")
LINKS = {
    "othello8": dict(model="othello8", moves="d3c5f6f5e6e3c3d2", change="5", instead="f4"),
    "chess": dict(model="chess", moves="e2e4e7e5g1f3b8c6f1b5a7a6b5a4g8f6e1g1f8e7", change="3", instead="b1c3"),
    "chess-pgn": dict(model="chess-pgn", moves="e2e4e7e5g1f3b8c6f1b5a7a6b5a4g8f6", change="3", instead="b1c3"),
}


def measure(params: dict) -> tuple[float, float] | None:
    at = AppTest.from_file(APP, default_timeout=600)
    for key, value in params.items():
        at.query_params[key] = value
    at.switch_page("pages/patching_lab.py").run()
    button = next((b for b in at.button if b.label.startswith("Run the exact sweep")), None)
    if button is None:
        return None  # priced under the page's budget: it ran at once
    price = float(re.search(r"about ([0-9.]+) s", button.label).group(1))
    for thread in threading.enumerate():  # a visitor reads the page before clicking: the server's warm-up imports are done
        if thread.name == "boardlens-warm-up":
            thread.join()
    button.click().run()
    took = next(float(m.group(1)) for c in at.caption if (m := re.search(r"Exact sweep: \d+ patched runs in ([0-9.]+) s", c.value)))
    return price, took


def main() -> None:
    for name, params in LINKS.items():
        got = measure(params)
        if got is None:
            print(f"{name:10s} priced under the page's budget: the sweep ran with the page")
            continue
        price, took = got
        print(f"{name:10s} priced {price:6.2f} s, took {took:6.2f} s: ratio {price / took:5.2f}")


if __name__ == "__main__":
    main()
