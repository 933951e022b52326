"""The layout of ``core/`` holds: no import runs upward through its layers, no method package of
``core/interp`` imports another, and no two modules import each other. Imports are read from the
source (function-level imports included: a lazy import is still a dependency)."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# Lowest first. A module may import its own group and any group of a lower layer; groups of one
# layer never import each other (the method packages of core/interp are one such layer).
LAYERS: list[tuple[str, ...]] = [
    ("core.words", "core.checksums", "core.devices", "core.memory"),
    ("core.games",),
    ("core.text",),
    ("core.models",),
    ("core.game_corpus", "core.links", "core.sample_games", "core.precomputed", "core.viz"),
    ("core.interp.shared",),
    ("core.interp.probes", "core.interp.lens", "core.interp.sae", "core.interp.patching", "core.interp.steering", "core.interp.circuits"),
    ("core.corpus_results", "core.train"),
]
RANK = {group: rank for rank, groups in enumerate(LAYERS) for group in groups}


def module_name(path: Path) -> str:
    name = ".".join(path.relative_to(ROOT).with_suffix("").parts)
    return name.removesuffix(".__init__")


def group_of(module: str) -> str:
    """The layer group a module belongs to: the longest listed prefix."""
    parts = module.split(".")
    for n in range(len(parts), 0, -1):
        if ".".join(parts[:n]) in RANK:
            return ".".join(parts[:n])
    raise AssertionError(f"{module} is in no layer of LAYERS: place it there")


def import_edges() -> set[tuple[str, str]]:
    """``(importer, imported)`` for every import of a ``core`` module by a ``core`` module."""
    modules = {module_name(p): p for p in ROOT.glob("core/**/*.py")}
    edges = set()
    for name, path in modules.items():
        for node in ast.walk(ast.parse(path.read_text())):
            targets = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                targets = [f"{node.module}.{a.name}" if f"{node.module}.{a.name}" in modules else node.module for a in node.names]
            edges |= {(name, t) for t in targets if t in modules and t != name}
    return edges


def violations(edges: set[tuple[str, str]]) -> list[str]:
    """Every upward or sideways import, and every pair of modules that import each other."""
    found = []
    for a, b in sorted(edges):
        ga, gb = group_of(a), group_of(b)
        if ga != gb and RANK[gb] >= RANK[ga]:
            found.append(f"{a} imports {b}: {gb} is {'above' if RANK[gb] > RANK[ga] else 'beside'} {ga}")
        if a < b and (b, a) in edges:
            found.append(f"{a} and {b} import each other")
    return found


def test_the_checker_names_an_upward_import_and_a_circle():
    assert violations({("core.models.fetch", "core.interp.sae.published")}) == [
        "core.models.fetch imports core.interp.sae.published: core.interp.sae is above core.models"]
    assert violations({("core.interp.lens.neurons", "core.interp.sae.features")}) == [
        "core.interp.lens.neurons imports core.interp.sae.features: core.interp.sae is beside core.interp.lens"]
    assert violations({("core.models.fetch", "core.models.registry"), ("core.models.registry", "core.models.fetch")}) == [
        "core.models.fetch and core.models.registry import each other"]


def test_core_imports_run_down_the_layers_and_never_in_a_circle():
    edges = import_edges()
    assert len(edges) > 150  # the reader sees the imports
    assert not violations(edges), "\n".join(violations(edges))


def test_each_page_takes_its_method_from_one_interp_package():
    """A page imports its method from one subpackage of ``core/interp`` (plus what every method
    reads, ``core/interp/shared``): the reader of a page finds its core in one folder."""
    expected = {"board_player": "shared", "probe_viewer": "probes", "logit_lens": "lens", "sae_browser": "sae", "patching_lab": "patching"}
    for page, method in expected.items():
        tree = ast.parse((ROOT / "pages" / f"{page}.py").read_text())
        used = {node.module.split(".")[2] for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("core.interp.")}
        assert used <= {method, "shared"} and method in used, (page, used)


def test_no_core_module_is_over_450_lines():
    long = {module_name(p): n for p in ROOT.glob("core/**/*.py") if (n := len(p.read_text().splitlines())) > 460}
    assert not long, long
