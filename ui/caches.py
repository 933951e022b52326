"""What every session shares, cached once per server: the models (read-only; interventions use
scoped hooks), predictions, bundled and trained probes, model cards, corpus-wide results, and the
slow imports warmed in the background.
"""

from __future__ import annotations

import json
import threading
from collections import OrderedDict

import streamlit as st

from core import corpus_results
from core.interp.probes import linear_probes as P
from core.interp.shared.predictions import Predictions, predict
from core.models.bundle import CARD, read_json
from core.models.errors import ModelLoadError
from core.models.handle import ModelHandle
from core.devices import app_device
from core.models.registry import ASSETS, ModelSpec, broken_bundles, list_models, load_model
from ui.messages import error


TRAINED_PROBES = "trained_probes"


@st.cache_resource(show_spinner="Loading model…", max_entries=4)
def cached_model(name: str) -> ModelHandle:
    """One shared, read-only model per name for the whole server (all sessions), on the device
    ``BOARDLENS_DEVICE`` names (the CPU by default)."""
    return load_model(name, device=app_device()[0])


@st.cache_data(show_spinner=False, max_entries=2048)
def cached_predictions(name: str, moves: tuple[int, ...]) -> Predictions | None:
    handle = cached_model(name)
    return predict(handle, handle.game.state(moves))


@st.cache_resource(show_spinner="Loading probes…", max_entries=16)
def cached_bundled_probes(name: str, target: str) -> dict[str, P.Probe]:
    """Probes shipped in ``assets/probes/<model>/`` (shared, read-only)."""
    handle = cached_model(name)
    return P.load_probe_set(P.PROBE_ROOT / name, target, handle.cfg.d_model, handle.game.rows)


def probe_summary(name: str) -> dict:
    """Per-target accuracy by layer: bundled, overridden by probes trained in this session."""
    summary = dict(P.read_summary(P.PROBE_ROOT / name))
    for (model, target), (_, entry) in st.session_state.get(TRAINED_PROBES, {}).items():
        if model == name:
            summary[target] = entry
    return summary


def probe_set(name: str, target: str) -> dict[str, P.Probe]:
    """The probes to show: trained in this session if any, else bundled (may be empty)."""
    trained = st.session_state.get(TRAINED_PROBES, {}).get((name, target))
    if trained:
        return trained[0]
    try:
        return cached_bundled_probes(name, target)
    except P.ProbeLoadError as exc:
        error(f"Bundled probes for {name} could not be read: {exc}")
        return {}


def store_trained_probes(name: str, target: str, probes: dict[str, P.Probe], entry: dict) -> None:
    st.session_state.setdefault(TRAINED_PROBES, {})[(name, target)] = (probes, entry)


@st.cache_data(show_spinner=False, ttl=60)
def broken_model_folders() -> dict[str, str]:
    return broken_bundles()


@st.cache_data(show_spinner=False)
def model_specs() -> dict[str, ModelSpec]:
    return {spec.name: spec for spec in list_models()}


@st.cache_data(show_spinner=False, max_entries=16)
def bundled_card(name: str) -> dict:
    try:
        return read_json(ASSETS / name / CARD)
    except ModelLoadError:
        return {}


SLOW_IMPORTS = ("sae_lens",)  # ~1.1 s here (it imports wandb), needed by the SAE pages only


def _import_slow_libraries() -> None:
    import importlib

    for name in SLOW_IMPORTS:
        try:
            importlib.import_module(name)
        except Exception:  # noqa: BLE001 - the page that needs it reports the failure itself
            pass


@st.cache_resource(show_spinner=False)
def warm_up_in_background() -> threading.Thread:
    """Once per server: import what only some pages need in a background thread, so the first
    visit of those pages does not pay for it (a page that gets there first waits on Python's
    import lock, no longer than it would have taken itself)."""
    thread = threading.Thread(target=_import_slow_libraries, name="boardlens-warm-up", daemon=True)
    thread.start()
    return thread


CORPUS_RESULTS_KEPT = 16


@st.cache_resource(show_spinner=False)
def _corpus_store() -> tuple[OrderedDict, threading.Lock, dict]:
    """Process-wide: (model, result, key) -> the result, shared by every session; the
    ``CORPUS_RESULTS_KEPT`` used last stay in memory (a layer's neuron index is ~10 MB). One lock
    guards the table; each result has its own lock for reading or building it, so a slow build of
    one result never holds up another."""
    return OrderedDict(), threading.Lock(), {}


def corpus_result(handle: ModelHandle, result: corpus_results.Result):
    """A corpus-wide result (lens legality, a layer's neurons, an SAE's feature index): read from
    the shipped or cached files, or, when none is usable, computed here once with a progress bar
    that says why (and kept on disk for the next process)."""
    memo, lock, result_locks = _corpus_store()
    key = (handle.name, result.name, json.dumps(result.key, sort_keys=True))
    with lock:
        if key in memo:
            memo.move_to_end(key)
            return memo[key]
        result_lock = result_locks.setdefault(key, threading.Lock())
    with result_lock:  # one read or build per result, however many sessions ask at once
        with lock:
            if key in memo:
                return memo[key]
        value, where = corpus_results.load(handle, result)
        if value is None:
            bar = st.progress(0.0, text=f"Computing {result.what} once for {handle.name} (no stored copy: {where[:160]})…")
            value = result.build(lambda text, f: bar.progress(min(max(float(f), 0.0), 1.0), text=f"Computing {result.what} once: {text}"))
            corpus_results.store(handle, result, value)
            bar.empty()
            st.caption(f"Computed {result.what} for {handle.name}: no stored copy was usable ({where[:160]}); it is kept for the next start.")
        with lock:
            memo[key] = value
            result_locks.pop(key, None)
            while len(memo) > CORPUS_RESULTS_KEPT:
                memo.popitem(last=False)
        return value
