"""What the browser tests share: a Streamlit server per test module, headless Chromium, and
how to click a board square or a heatmap cell, run the lab's priced sweep and read a share link."""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = os.environ.get("BOARDLENS_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--disable-quic", "--no-first-run"]


# CI installs Chromium and must run these tests; elsewhere a missing browser is a skip with a reason.
needs_chromium = pytest.mark.skipif(
    not shutil.which(CHROMIUM) and not os.environ.get("CI"), reason=f"Chromium not found at {CHROMIUM} (apt-get install -y chromium)"
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def streamlit_server():
    """Start ``streamlit run app.py`` on a free port; yield its URL; stop it."""
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true", "--server.port", str(port), "--server.address", "127.0.0.1", "--browser.gatherUsageStats", "false",
         "--server.fileWatcherType", "none"],  # the server under test runs the code it started with, whatever changes on disk
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            urllib.request.urlopen(url + "/_stcore/health", timeout=1)
            break
        except OSError:
            time.sleep(0.3)
    else:
        proc.kill()
        pytest.fail("streamlit did not start: " + proc.stdout.read().decode()[-2000:])
    yield url
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()


def chromium():
    """Headless Debian Chromium driven by playwright (never a downloaded browser)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        yield b
        b.close()


def chromium_and_profile():
    """``(browser, visitor)``: headless Chromium, and a second one with a profile on disk, as a
    returning visitor's browser has. A profile keeps V8's compiled code of Streamlit's and
    plotly's scripts between tabs (a context without one parses ~500 script modules again on
    every page load): measured here, ~13 % less CPU per page load."""
    from playwright.sync_api import sync_playwright

    folder = tempfile.mkdtemp(prefix="boardlens-chromium-profile-")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        visitor = p.chromium.launch_persistent_context(folder, executable_path=CHROMIUM, args=CHROMIUM_FLAGS, viewport={"width": 1400, "height": 1000})
        yield b, visitor
        visitor.close()
        b.close()
    shutil.rmtree(folder, ignore_errors=True)


def click_square(page, square: int, size: int, title: str = "") -> None:
    """Click the centre of ``square`` on the first board (whose title contains ``title``; plotly
    axes give its pixel position)."""
    row, col = divmod(square, size)
    # A rerun of the page (after an earlier click) may be redrawing the board: wait until it is there.
    page.wait_for_function(
        """(title) => [...document.querySelectorAll('[data-testid=stMain] .js-plotly-plot')].some(g => g._fullLayout && ((g._fullLayout.title || {}).text || '').includes(title))""",
        arg=title, timeout=60_000,
    )
    xy = page.evaluate(
        """([col, row, title]) => {
            const gd = [...document.querySelectorAll('[data-testid=stMain] .js-plotly-plot')].find(g => ((g._fullLayout.title || {}).text || '').includes(title));
            gd.scrollIntoView({block: 'center'});
            const L = gd._fullLayout, box = gd.getBoundingClientRect();
            return [box.left + L._size.l + L.xaxis.l2p(col), box.top + L._size.t + L.yaxis.l2p(row)];
        }""",
        [col, row, title],
    )
    page.mouse.click(xy[0], xy[1])


def click_cell(page, title: str, x: int, y: int, axis: str = "") -> None:
    """Click cell (x, y) of the heatmap on axes ``x{axis}``/``y{axis}`` of the plot whose title
    contains ``title`` (plotly's axes give its pixel position)."""
    page.wait_for_function(
        """(title) => [...document.querySelectorAll('[data-testid=stMain] .js-plotly-plot')].some(g => g._fullLayout && ((g._fullLayout.title || {}).text || '').includes(title))""",
        arg=title, timeout=60_000,
    )
    xy = page.evaluate(
        """([title, x, y, axis]) => {
            const gd = [...document.querySelectorAll('[data-testid=stMain] .js-plotly-plot')].find(g => ((g._fullLayout.title || {}).text || '').includes(title));
            gd.scrollIntoView({block: 'center'});
            const L = gd._fullLayout, box = gd.getBoundingClientRect(), X = L['xaxis' + axis], Y = L['yaxis' + axis];
            return [box.left + X._offset + X.l2p(x), box.top + Y._offset + Y.l2p(y)];
        }""",
        [title, x, y, axis],
    )
    page.mouse.click(xy[0], xy[1])


def no_warning_left(page) -> None:
    """Once the run that played the move has finished (the earlier run's elements are cleared as
    it ends), no illegal-move warning is on the page."""
    page.wait_for_function("() => !document.body.innerText.includes('Illegal move') && !document.body.innerText.includes('already occupied')", timeout=30_000)


SETTLED = """() => !document.querySelector('[data-stale="true"]')"""  # every element is the latest run's: Streamlit marks the previous run's until they are replaced


RUN_ENDED = """() => !document.querySelector('[data-testid="stStatusWidget"]') && !document.querySelector('[data-stale="true"]')"""  # settled, and no run in progress


LAB_STATE = """() => {
    const settled = (""" + RUN_ENDED + """)();
    const text = document.body.innerText;
    if (!settled || !text.includes('per patched site')) return null;
    if (text.includes('a fast preview of the exact sweep')) return 'exact';
    const button = [...document.querySelectorAll('button')].some(b => b.innerText.startsWith('Run the exact sweep'));
    return button ? 'button' : null;
}"""  # the lab's last caption says which map a finished run drew; null while a run is in flight


def run_exact_sweep(page) -> None:
    """Click "Run the exact sweep" when the lab priced it above its budget (before a first sweep
    on a model it prices one from a forward pass), until a finished run shows the exact maps.

    The state is read only from a settled page that the lab has drawn to its last caption: a
    check between two runs could find neither the button nor the exact maps and give up early."""
    page.get_by_text("One site: its effect").wait_for(timeout=120_000)
    for _ in range(3):
        state = page.wait_for_function(LAB_STATE, timeout=240_000).json_value()
        if state == "exact":
            return
        page.get_by_role("button", name=re.compile("^Run the exact sweep")).first.click()
        page.wait_for_function("() => window.location.search.includes('exact=1')", timeout=240_000)
    assert page.wait_for_function(LAB_STATE, timeout=240_000).json_value() == "exact", "the lab never showed the exact sweep"


def metric_value(page, label: str, pattern: str, timeout: int = 30_000) -> str:
    """The value of the metric labelled ``label`` once it matches the regular expression
    ``pattern``: while a run is drawing, the metrics of a row arrive one by one, so reading the
    first metric on the page at a given instant may find its neighbour."""
    handle = page.wait_for_function(
        """([label, pattern]) => {
            const m = [...document.querySelectorAll('[data-testid=stMetric]')].find(e => (e.querySelector('[data-testid=stMetricLabel]') || {}).innerText?.trim() === label);
            const v = m && m.querySelector('[data-testid=stMetricValue]');
            const text = v ? v.innerText.trim() : '';
            return new RegExp('^(?:' + pattern + ')$').test(text) ? text : null;
        }""",
        arg=[label, pattern],
        timeout=timeout,
    )
    return handle.json_value()


SCREENSHOTS_ENV = "BOARDLENS_SCREENSHOTS"


def keep_screenshot(page, name: str, full_page: bool = True) -> None:
    """A screenshot into the folder ``$BOARDLENS_SCREENSHOTS`` names, when it is set: for a person
    to look at what the test saw (full page), or for the README (``full_page=False``: the window a
    visitor sees first). It waits for the run to settle first. Off by default: a full page of
    figures takes Chromium a second or more to paint, and no assertion reads the picture."""
    folder = os.environ.get(SCREENSHOTS_ENV)
    if folder:
        page.wait_for_function(RUN_ENDED, timeout=240_000)
        page.wait_for_timeout(1500)  # plotly's last redraw after the run
        Path(folder).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(folder) / f"{name}.png"), full_page=full_page)


def share_link_of(page) -> str:
    page.get_by_role("button", name="Share this view").click()
    code = page.locator('[data-testid="stPopoverBody"] code').first
    code.wait_for(timeout=30_000)
    return code.inner_text().strip()

