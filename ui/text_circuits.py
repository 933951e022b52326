"""The Circuits page for a text model: the attribution graph of the prompt's next token, its
nodes at token positions (shown as text), and interventions on its features."""

from __future__ import annotations

import time

import pandas as pd
import streamlit as st
import torch

from core.interp.circuits.circuit import build_graph, circuit_of
from core.interp.circuits.interventions import edit_hooks
from core.interp.circuits.targets import logit_target, salient_logits
from ui import caches
from ui import circuit_caches as CC
from ui import circuit_panels as CP
from ui import messages
from ui import session
from ui import text_panels as TP

KINDS = {"top": "the model's top next tokens", "token": "one next token"}


@st.cache_resource(show_spinner=False, max_entries=8)
def cached_text_circuit(name: str, tokens: tuple[int, ...], kind: str, token: int | None, node_threshold: float, edge_threshold: float):
    handle = caches.cached_model(name)
    ids = torch.tensor(tokens)
    with torch.no_grad():
        last = handle.model(ids[None].to(handle.device))[0, -1].float().cpu()
    W_U = handle.model.W_U.detach().float().cpu()
    if kind == "top":
        targets = salient_logits(W_U, last, len(tokens) - 1, {t: TP.token_name(handle, t) for t in torch.topk(last, 10).indices.tolist()})
    else:
        targets = [logit_target(W_U, int(token), len(tokens) - 1, TP.token_name(handle, int(token)), float(torch.softmax(last, -1)[int(token)]))]
    graph = build_graph(handle, ids, CC.cached_transcoders(name), targets, CC.MAX_FEATURES, min_first=1)
    return circuit_of(graph, node_threshold, edge_threshold)


def circuits(handle) -> None:
    try:
        transcoders = CC.cached_transcoders(handle.name)
    except CC.TranscoderProblem as exc:
        st.info(str(exc))
        session.sync_url()
        return
    tokens = TP.prompt_section(handle)
    if len(tokens) < 2:
        st.info("Write a prompt of at least one token after the start token to trace the next token.")
        session.sync_url()
        return
    names = TP.spans(handle, tokens)

    def position_label(pos: int) -> str:
        return f"{pos}:{names[pos]!r}" if pos < len(names) else str(pos)

    c1, c2, c3 = st.columns(3)
    kinds = list(KINDS)
    session.linked_setting("ci_target", "target", kinds, kinds, "circuit target", "top")
    kind = c1.radio("Explain", kinds, key="ci_target", format_func=KINDS.get)
    token = None
    if kind == "token":
        pred = TP.cached_next_tokens(handle.name, tokens, k=20)
        options = [int(t) for t in pred.top_ids[-1]]
        session.linked_setting("ci_token", "token", options, [str(t) for t in options], "next token (one of the top 20)", options[0])
        token = c1.selectbox("Next token", options, key="ci_token", format_func=lambda t: repr(TP.token_name(handle, t)))
    nt, et = CP.thresholds(c2, c3)
    t0 = time.perf_counter()
    try:
        with st.spinner("Attributing through the frozen model…"):
            circuit = cached_text_circuit(handle.name, tuple(tokens), kind, token, nt, et)
    except ValueError as exc:
        messages.error(exc)
        session.sync_url(CP.link_params(nt, et))
        return
    seconds = time.perf_counter() - t0
    graph = circuit.graph
    CP.scores(circuit, seconds if seconds > 0.05 else 0.0, f"token {position_label(graph.first)}")
    nodes, groups, node, label_of = CP.graph_section(circuit, lambda layer, f: f"#{f}", position_label, position_label)
    CP.edge_tables(circuit, node["node"], lambda n: label_of.get(n, f"node {n} (pruned)"))
    st.subheader("Intervene on the graph's features")
    edits, factor, _ = CP.intervention_picker(circuit, nodes, groups, len(tokens) - 1)
    if edits:
        ids = torch.tensor([tokens])
        before = handle.run_with_hooks(ids, [])[0, -1].float().softmax(-1)
        after = handle.run_with_hooks(ids, edit_hooks(transcoders, edits))[0, -1].float().softmax(-1)
        b, a = st.columns(2)
        for col, title, p in ((b, "Before", before), (a, f"With {len(edits)} feature(s) × {factor:g}", after)):
            top = torch.topk(p, 10)
            col.markdown(f"**{title}**")
            col.dataframe(pd.DataFrame({"token": [repr(TP.token_name(handle, int(t))) for t in top.indices], "probability": top.values.numpy()}), hide_index=True, column_config={"probability": st.column_config.NumberColumn(format="percent")})
        kl = float((before * (before.clamp(min=1e-12).log() - after.clamp(min=1e-12).log())).sum())
        st.caption(messages.plain(f"KL(before ‖ after) = {kl:.3f} nats; the edit runs in the real model, adding (×{factor:g} − 1) × activation × decoder row to each feature's MLP output."))
    session.sync_url({"target": kind, **({"token": str(token)} if token is not None else {}), **CP.link_params(nt, et)})
