"""Make ``AppTest`` runs cost what the same run costs a Streamlit server, no more.

A server keeps two things for the life of the process that ``AppTest`` makes anew on every run:
the compiled bytecode of the app and its pages (``ScriptCache``: reading, the "magic" AST rewrite
and ``compile`` of each script) and the scan of installed packages for
component manifests (~0.2 s per ``AppTest``). The tests and the latency bench share them per
process; the scripts and the installed packages do not change while they run.
"""

from __future__ import annotations

import functools


def share_script_cache() -> None:
    """One ``ScriptCache`` for every ``AppTest`` run in this process, as a server has one."""
    from streamlit.runtime.scriptrunner.script_cache import ScriptCache
    from streamlit.testing.v1 import app_test, local_script_runner

    if getattr(app_test.ScriptCache, "shared", False):
        return
    cache = ScriptCache()

    def shared_cache() -> ScriptCache:
        return cache

    shared_cache.shared = True
    app_test.ScriptCache = local_script_runner.ScriptCache = shared_cache


def scan_installed_components_once() -> None:
    """Each new ``AppTest`` scans every installed distribution for Streamlit component manifests;
    one scan per process gives the same answer."""
    try:
        from streamlit.components.v2 import manifest_scanner
    except ImportError:  # a Streamlit without it has no such scan
        return
    scan = manifest_scanner.scan_component_manifests
    if not hasattr(scan, "cache_info"):
        manifest_scanner.scan_component_manifests = functools.cache(scan)


def like_a_server() -> None:
    share_script_cache()
    scan_installed_components_once()
