"""What the Circuits page keeps between reruns: each model's transcoder set (shared, read-only),
its card's feature labels, and the graphs of the positions visited (an unpruned graph is up to
~150 MB and seconds of work: the last 8 kept, per position and target; pruning one again at
other thresholds is cheap, and the last 16 prunings are kept too)."""

from __future__ import annotations

import json

import streamlit as st
import torch

from core.interp.circuits import board_targets as BT
from core.interp.circuits.circuit import MAX_FEATURES, Circuit, build_graph, circuit_of  # noqa: F401 (MAX_FEATURES: the page reads it here)
from core.interp.circuits.replacement import load_transcoders, transcoder_folder
from ui.caches import cached_model

FEATURE_LINE = "{prop} · F1 {f1:.2f}"


class TranscoderProblem(ValueError):
    """The model has no usable transcoder set; the message says why and what to run."""


def train_command(name: str) -> str:
    return f"python -m core.train transcoder {name} assets/transcoders/{name} --layer all"


@st.cache_resource(show_spinner="Loading the transcoders…", max_entries=4)
def cached_transcoders(name: str) -> dict[int, object]:
    folder = transcoder_folder(name)
    if folder is None:
        raise TranscoderProblem(f"{name} has no transcoders yet. Train a set (one per layer, saved where this page finds it) with:\n\n    {train_command(name)}")
    handle = cached_model(name)
    try:
        tcs = load_transcoders(folder, handle.cfg.n_layers)
    except Exception as exc:  # a damaged or mismatched file: say which, never crash
        raise TranscoderProblem(f"the transcoders in {folder.name}/ cannot be used: {str(exc)[:300]}") from exc
    d = handle.cfg.d_model
    for layer, tc in tcs.items():
        shapes = (tuple(tc.W_enc.shape), tuple(tc.W_dec.shape), tuple(tc.W_skip.shape) if getattr(tc, "W_skip", None) is not None else None)
        if shapes[0][0] != d or shapes[1][1] != d or shapes[2] != (d, d):
            raise TranscoderProblem(f"layer {layer}'s transcoder does not fit {name} (width {d}): W_enc {shapes[0]}, W_dec {shapes[1]}, W_skip {shapes[2]}")
        if not all(torch.isfinite(t).all() for t in (tc.W_enc, tc.W_dec, tc.b_enc, tc.b_dec)):
            raise TranscoderProblem(f"layer {layer}'s transcoder has non-finite weights (a damaged file)")
    return tcs


@st.cache_resource(show_spinner=False, max_entries=8)
def transcoder_card(name: str) -> dict:
    """The set's card (shared, read-only: a copy per call would cost more than the page)."""
    folder = transcoder_folder(name)
    return json.loads((folder / "card.json").read_text()) if folder is not None else {}


@st.cache_resource(show_spinner=False, max_entries=8)
def feature_labels(name: str) -> dict[int, tuple[list[int], list[float]]] | None:
    """layer -> (best property per feature, its F1), or None (no board properties: text)."""
    labels = transcoder_card(name).get("feature_labels")
    if not labels:
        return None
    return {entry["layer"]: (entry["property"], entry["f1"]) for entry in labels["layers"]}


@st.cache_resource(show_spinner=False, max_entries=8)
def property_names(name: str) -> list[str]:
    return (transcoder_card(name).get("feature_labels") or {}).get("property_names", [])


def feature_label(name: str, layer: int, feature: int) -> str:
    labels = feature_labels(name)
    if labels is None or layer not in labels:
        return f"#{feature}"
    prop, f1 = labels[layer][0][feature], labels[layer][1][feature]
    if prop < 0:
        return f"#{feature} (no board property)"
    return FEATURE_LINE.format(prop=property_names(name)[prop], f1=f1)


PROBE_TARGET = "mine_theirs_empty"  # the probe a circuit can explain: whose piece stands on a square


def probe_layers(name: str) -> dict[int, object]:
    """layer -> the bundled mine / theirs / empty probe on the residual stream after it."""
    from ui.caches import cached_bundled_probes

    try:
        probes = cached_bundled_probes(name, PROBE_TARGET)
    except Exception:  # no probes shipped, or unusable: no probe target
        return {}
    return {int(h.split(".")[1]): p for h, p in probes.items() if h.endswith("hook_resid_post")}


@st.cache_resource(show_spinner=False, max_entries=8)
def cached_graph(name: str, moves: tuple[int, ...], kind: str, move: int | None, max_features: int, probe: tuple[int, int, int] | None = None):
    """The unpruned graph of a position and target (tokens and targets rebuilt from the key;
    ``probe``: (layer, square, class) of the mine / theirs / empty probe)."""
    handle = cached_model(name)
    spec = None
    if probe is not None:
        layer, square, cls = probe
        weights = probe_layers(name)[layer].weight  # (d_model, size, size, n_classes)
        row, col = divmod(square, handle.game.cols)
        classes = ("empty", "mine", "theirs")
        spec = (weights[:, row, col, :], layer, cls, f"{classes[cls]} {handle.game.square_label(square)} after L{layer}")
    tokens, targets = BT.board_targets(handle, moves, kind, move, spec)
    return build_graph(handle, tokens, cached_transcoders(name), targets, max_features)


@st.cache_resource(show_spinner=False, max_entries=16)
def cached_circuit(name: str, moves: tuple[int, ...], kind: str, move: int | None, max_features: int, node_threshold: float, edge_threshold: float, probe: tuple[int, int, int] | None = None) -> Circuit:
    return circuit_of(cached_graph(name, moves, kind, move, max_features, probe), node_threshold, edge_threshold)
