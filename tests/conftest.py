"""Shared fixtures: small models really trained by the project's trainer (a few seconds each)."""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")  # no test touches the network
# Where a GPU is present the pages' models go on it, so the same tests exercise the CUDA paths.
os.environ.setdefault("BOARDLENS_DEVICE", "auto")
# Corpus results a test computes go to a cache of this run, not the user's ~/.cache/boardlens.
os.environ.setdefault("BOARDLENS_CACHE", tempfile.mkdtemp(prefix="boardlens-test-cache-"))
if os.environ.get("PYTEST_XDIST_WORKER"):
    # Parallel workers share the cores: one torch thread each, or their thread pools fight.
    os.environ.setdefault("OMP_NUM_THREADS", "1")

import torch  # noqa: E402

if os.environ.get("PYTEST_XDIST_WORKER"):
    torch.set_num_threads(1)

from tests.streamlit_harness import like_a_server  # noqa: E402

like_a_server()  # AppTest keeps what a Streamlit server keeps between runs

from core.train.export import export_run  # noqa: E402
from core.train.next_move import TrainConfig, Trainer  # noqa: E402

TINY = dict(n_layers=2, d_model=32, n_heads=4, d_mlp=64, batch_size=32, steps=20, eval_every=20, eval_games=50)


@pytest.fixture(scope="session")
def tiny_bundle(tmp_path_factory) -> Path:
    """A 2-layer 6x6 model trained for 20 steps and exported to the bundled format."""
    run = tmp_path_factory.mktemp("tiny_run")
    trainer = Trainer(TrainConfig(size=6, seed=1, **TINY), run)
    trainer.train()
    out = tmp_path_factory.mktemp("bundles") / "tiny6"
    export_run(trainer, out, "tiny6", "test fixture", eval_games=50)
    return out


@pytest.fixture
def train_here(capsys):
    """``python -m core.train ARGS`` run in this process (no interpreter start-up); returns what it
    printed. ``--threads`` sets torch's threads for the process: they are put back afterwards."""
    from core.train.__main__ import main

    def run(args: list[str]) -> str:
        threads = torch.get_num_threads()
        capsys.readouterr()
        try:
            main([str(a) for a in args])
        finally:
            torch.set_num_threads(threads)
        return capsys.readouterr().out

    return run


# Scheduling (pytest-xdist, `--dist=loadgroup`): each module is one unit of work, given whole to a
# worker, so its module fixtures are made once; the browser modules are one unit, so one worker
# starts one Streamlit server and one Chromium for all of them. Units go out longest first (the
# seconds their tests took here, longest first): a long module handed out last would run alone at
# the end while the other worker idles. Modules not listed follow in collection order.
LONGEST_FIRST = [
    "tests/test_own_games_pages.py", "tests/test_chess_probes.py", "tests/test_skill_probe.py", "tests/test_fuzz_links.py",
    "tests/test_trainer.py", "tests/test_smollm2.py", "tests/test_distributed_training.py", "tests/test_chess_pgn.py",
    "tests/test_probes.py", "tests/test_chess_interventions.py", "tests/test_sae_browser_page.py", "tests/test_chess_engine.py",
    "tests/test_othello_engine.py", "tests/test_text_models.py", "tests/test_corpus_results.py", "tests/test_probe_viewer_page.py", "tests/test_steering_pages.py",
]
BROWSER_GROUP = "browser"


def work_unit(nodeid: str) -> str:
    module = nodeid.split("::")[0]
    return BROWSER_GROUP if module.startswith("tests/e2e/") else module


@pytest.hookimpl(tryfirst=True)  # before xdist reads the groups
def pytest_collection_modifyitems(config, items) -> None:
    rank = {unit: i for i, unit in enumerate([BROWSER_GROUP, *LONGEST_FIRST])}
    items.sort(key=lambda item: rank.get(work_unit(item.nodeid), len(rank)))  # stable: tests keep their order within a unit
    for item in items:
        item.add_marker(pytest.mark.xdist_group(work_unit(item.nodeid)))


def pytest_terminal_summary(terminalreporter) -> None:
    from tests.fuzzing import CASES

    if CASES:
        terminalreporter.section("fuzz cases")
        for family, n in sorted(CASES.items()):
            terminalreporter.write_line(f"{family:<40s} {n:>7,d}")
        terminalreporter.write_line(f"{'total':<40s} {sum(CASES.values()):>7,d}")


class ModuleProgress:
    """One line per test module as it finishes (tests, outcome, seconds of its tests, time since
    the start), so a long run shows where it is; works with and without xdist workers."""

    def __init__(self, reporter):
        self.reporter = reporter
        self.total: dict[str, int] = {}
        self.done: dict[str, int] = {}
        self.failed: dict[str, int] = {}
        self.seconds: dict[str, float] = {}
        self.start = time.monotonic()

    def _set_totals(self, nodeids) -> None:
        if not self.total:
            for nodeid in nodeids:
                module = nodeid.split("::")[0]
                self.total[module] = self.total.get(module, 0) + 1

    def pytest_collection_finish(self, session) -> None:
        self._set_totals(item.nodeid for item in session.items)

    @pytest.hookimpl(optionalhook=True)
    def pytest_xdist_node_collection_finished(self, node, ids) -> None:
        self._set_totals(ids)

    def pytest_runtest_logreport(self, report) -> None:
        module = report.nodeid.split("::")[0]
        self.seconds[module] = self.seconds.get(module, 0.0) + report.duration
        if report.failed:
            self.failed[module] = self.failed.get(module, 0) + 1
        if report.when != "teardown":
            return
        self.done[module] = self.done.get(module, 0) + 1
        if self.done[module] == self.total.get(module):
            elapsed = time.monotonic() - self.start
            outcome = f"{self.failed[module]} FAILED" if self.failed.get(module) else "ok"
            if getattr(self.reporter._tw, "width_of_current_line", 0):  # after a row of dots
                self.reporter.write("\n")
            self.reporter.write_line(f"  {module:<44s} {self.total[module]:>4d} tests  {outcome:<9s} {self.seconds[module]:6.1f} s   [{int(elapsed) // 60:02d}:{int(elapsed) % 60:02d} elapsed]")


@pytest.hookimpl(trylast=True)  # after the terminal reporter exists
def pytest_configure(config) -> None:
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None and not hasattr(config, "workerinput"):  # the main process only
        config.pluginmanager.register(ModuleProgress(reporter), "boardlens-module-progress")
