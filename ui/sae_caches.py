"""SAEs and their feature indexes, cached once per server: bundled, trained on the page (kept in the
session) or published (from the hub cache, checked against the model).
"""

from __future__ import annotations

import re

import streamlit as st

from core import corpus_results
from core.interp.sae import published as published_saes
from core.interp.shared import unit_index
from core.interp.sae import store as sae_store
from ui.messages import error, plain
from ui.caches import cached_model, corpus_result


TRAINED_SAES = "trained_saes"


@st.cache_resource(show_spinner="Loading SAE…", max_entries=8)
def cached_bundled_sae(name: str, sae_name: str):
    """A bundled SAE (shared, read-only); ``SAELoadError`` if its files are unusable."""
    entry = {e.name: e for e in sae_store.list_saes(name)}[sae_name]
    handle = cached_model(name)
    return sae_store.load_sae(entry.folder, d_in=handle.hook_width(entry.hook))


def cached_bundled_index(name: str, sae_name: str, corpus=None) -> unit_index.FeatureIndex:
    entry = {e.name: e for e in sae_store.list_saes(name)}[sae_name]
    handle = cached_model(name)
    return corpus_result(handle, corpus_results.sae_index_result(handle, cached_bundled_sae(name, sae_name), entry.hook, sae_name, corpus))


@st.cache_data(show_spinner=False, ttl=60)
def published_sae_refs(name: str) -> dict[str, published_saes.PublishedRef]:
    """Published SAEs of the model in the local hub cache, by label (rechecked each minute)."""
    return {ref.label: ref for ref in published_saes.discover(name)}


@st.cache_resource(show_spinner="Loading the published SAE…", max_entries=8)
def cached_published_sae(name: str, label: str) -> published_saes.PublishedSAE:
    """A published SAE, prepared for the model's processing, after checking that it fits."""
    published = published_saes.load_ref(published_sae_refs(name)[label])
    problem = published_saes.fit_problem(published, cached_model(name))
    if problem:
        raise sae_store.SAELoadError(problem)
    return published


def sae_choices(name: str) -> dict[str, dict]:
    """SAE name -> card: the model's bundled SAEs, then published ones in the hub cache, then
    those trained in this session."""
    out = {e.name: e.card for e in sae_store.list_saes(name)}
    for label, ref in published_sae_refs(name).items():
        out[label] = {"hook": ref.hook, "published": ref.kind}
    for (model, sae_name), (_, card, _) in st.session_state.get(TRAINED_SAES, {}).items():
        if model == name:
            out[sae_name] = card
    return out


def _file_name(sae_name: str) -> str:
    """An SAE's name as a stored result's file name (labels hold "/", spaces, brackets)."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", sae_name)


def sae_and_index(name: str, sae_name: str, corpus=None):
    """``(sae, index)`` of a bundled, published or session-trained SAE, the index over ``corpus``
    (a ``GameCorpus``; None: random games); None with the error shown if unusable."""
    trained = st.session_state.get(TRAINED_SAES, {}).get((name, sae_name))
    if trained:
        if corpus is None:
            return trained[0], trained[2]
        handle = cached_model(name)
        return trained[0], corpus_result(handle, corpus_results.sae_index_result(handle, trained[0], trained[1]["hook"], _file_name(sae_name), corpus))
    if sae_name in published_sae_refs(name):
        try:
            published = cached_published_sae(name, sae_name)
        except sae_store.SAELoadError as exc:
            error(f"Published SAE {sae_name!r} cannot be used with {name}: {exc}")
            return None
        st.caption(plain(published.note))
        handle = cached_model(name)
        return published.sae, corpus_result(handle, corpus_results.sae_index_result(handle, published.sae, published.hook, _file_name(sae_name), corpus))
    try:
        return cached_bundled_sae(name, sae_name), cached_bundled_index(name, sae_name, corpus)
    except sae_store.SAELoadError as exc:
        error(f"SAE {sae_name!r} could not be loaded: {exc}")
        return None


def store_trained_sae(name: str, sae_name: str, sae, card: dict, index: unit_index.FeatureIndex) -> None:
    st.session_state.setdefault(TRAINED_SAES, {})[(name, sae_name)] = (sae, card, index)
