"""The parts of the Circuits page that board and text models share: the pruning thresholds, the
scores, the graph and what a click on it selects, a node's strongest edges, supernodes, and the
picking of nodes to intervene on. Every setting lives in the link (``link_params``)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import streamlit as st

from core.interp.circuits.circuit import MAX_FEATURES, WORK, Circuit, drawing, explained, incoming, node_name, outgoing, parse_groups, parse_node_list
from core.interp.circuits.interventions import FeatureEdit
from core.viz.circuits import circuit_figure
from ui import messages
from ui import session
from ui.export import chart_config

THRESHOLDS = [round(v, 2) for v in np.arange(0.5, 1.0001, 0.01)]
FACTORS = [-2.0, -1.0, 0.0, 0.5, 2.0, 4.0]
NODE_KEY, GROUPS_KEY, CUT_KEY, PIN_KEY = "ci_node", "ci_groups", "ci_cut", "ci_pin"


def thresholds(col_nodes, col_edges) -> tuple[float, float]:
    labels = [f"{v:.2f}" for v in THRESHOLDS]
    session.linked_setting("ci_nt", "nodes", THRESHOLDS, labels, "node threshold (0.50 to 1.00)", 0.8)
    session.linked_setting("ci_et", "edges", THRESHOLDS, labels, "edge threshold (0.50 to 1.00)", 0.98)
    nt = col_nodes.select_slider("Keep nodes up to this share of influence", THRESHOLDS, key="ci_nt", format_func=lambda v: f"{v:.0%}", help="circuit-tracer's node threshold (default 80 %): the most influential nodes whose influence on the target adds up to this share.")
    et = col_edges.select_slider("Keep edges up to this share", THRESHOLDS, key="ci_et", format_func=lambda v: f"{v:.0%}", help="circuit-tracer's edge threshold (default 98 %), among the kept nodes.")
    return float(nt), float(et)


def linked_text(key: str, param: str, default: str = "") -> str:
    """A free-form setting from the link, read once per session (then the page writes it)."""
    seen = st.session_state.setdefault("_url_read", set())
    if param not in seen:
        seen.add(param)
        if param in st.query_params:
            st.session_state[key] = str(st.query_params[param])[:2000]
    return st.session_state.setdefault(key, default)


def scores(circuit: Circuit, seconds: float, where: str) -> None:
    graph = circuit.graph
    kept_features = int(circuit.pruned.node_mask[: graph.n_features].sum())
    c = st.columns(4)
    c[0].metric("Replacement score", f"{circuit.replacement_score:.1%}", help="Of the influence that reaches the input, the share that starts at input tokens rather than at error nodes (circuit-tracer's definition): how much of the path to the target runs through transcoder features.")
    c[1].metric("Completeness score", f"{circuit.completeness_score:.1%}", help="Each node's share of incoming weight not from error nodes, averaged by influence (circuit-tracer's definition).")
    c[2].metric("Feature nodes kept", f"{kept_features:,} of {graph.n_features:,}")
    c[3].metric("Graph computed in", f"{seconds:.2f} s" if seconds else "cached")
    if graph.start:
        st.caption(f"A long input: nodes start at {where}, the last {graph.n_pos - graph.start} positions (a graph keeps at most {MAX_FEATURES:,} features and {WORK:,} feature-positions of backward work); what comes before counts as constants.")
    elif graph.first:
        st.caption("The first position (the start token) has no feature or error nodes, as in circuit-tracer: its features are the attention sink's, not the text's.")


def graph_chart(circuit: Circuit, nodes: list[dict], edges: list, n_layers: int, x_labels: dict[int, str], groups: dict[str, list[str]]) -> None:
    """The figure; a node clicked on it becomes the selected node. Each click gets a fresh chart
    (a new key), so plotly's selection never dims the graph or swallows the next click."""
    fig = circuit_figure(nodes, edges, n_layers, x_labels, st.session_state.get(NODE_KEY), groups)
    key = f"ci_graph_{st.session_state.get('_ci_clicks', 0)}"
    st.plotly_chart(fig, key=key, on_select=lambda: _on_click(key, {n["name"] for n in nodes}), selection_mode="points", config=chart_config())


def _on_click(key: str, names: set[str]) -> None:
    points = (st.session_state.get(key) or {}).get("selection", {}).get("points", [])
    name = points[0].get("customdata") if points else None
    name = name[0] if isinstance(name, list) and name else name
    if isinstance(name, str) and name in names:
        st.session_state[NODE_KEY] = name
        st.session_state["_ci_clicks"] = st.session_state.get("_ci_clicks", 0) + 1


def node_picker(nodes: list[dict], default: str) -> dict:
    names = [n["name"] for n in nodes]
    linked_text(NODE_KEY, "node", default)
    if st.session_state.get(NODE_KEY) not in names:
        st.session_state[NODE_KEY] = default
    labels = {n["name"]: n["label"] for n in nodes}
    chosen = st.selectbox("Node (or click one on the graph)", names, key=NODE_KEY, format_func=lambda n: labels[n][:140])
    return next(n for n in nodes if n["name"] == chosen)


def edge_tables(circuit: Circuit, node: int, label_of) -> None:
    left, right = st.columns(2)
    for col, title, rows in ((left, "Strongest inputs (kept edges)", incoming(circuit, node)), (right, "Strongest outputs (kept edges)", outgoing(circuit, node))):
        col.markdown(f"**{title}**")
        if rows:
            col.dataframe(pd.DataFrame({"node": [label_of(n) for n, _ in rows], "direct effect": [w for _, w in rows]}), hide_index=True, column_config={"direct effect": st.column_config.NumberColumn(format="%+.3f")})
        else:
            col.caption("none kept")


def target_sum(circuit: Circuit) -> None:
    """How the first target's value splits: the graph's contributions add up to it exactly."""
    for i, target in enumerate(circuit.graph.targets[:3]):
        parts = explained(circuit, i)
        st.caption(messages.plain(
            f"Target {target.label}: value {parts['value']:+.3f} = features {parts['features']:+.3f} + errors {parts['errors']:+.3f} + input tokens {parts['tokens']:+.3f} + constants {parts['constants']:+.3f} "
            f"(sum {parts['features'] + parts['errors'] + parts['tokens'] + parts['constants']:+.3f})."))


def groups_editor(circuit: Circuit, nodes: list[dict]) -> dict[str, list[str]]:
    """Supernodes: features grouped under a name, kept in the link as ``groups=name:A+B;…``."""
    text = linked_text(GROUPS_KEY, "groups")
    groups, bad = parse_groups(circuit.graph, text) if text else ({}, [])
    if bad:
        st.warning(messages.plain(f"Ignored in the link's groups (not nodes of this graph): {', '.join(bad[:5])}"))
    feature_names = [n["name"] for n in nodes if n["kind"] == "feature"]
    with st.expander(f"Supernodes ({len(groups)})", expanded=False):
        c1, c2, c3 = st.columns([2, 4, 1])
        name = c1.text_input("Name", key="ci_group_name", max_chars=32, placeholder="e.g. flank e4")
        members = c2.multiselect("Features", feature_names, key="ci_group_members", max_selections=24)
        if c3.button("Add", key="ci_group_add", disabled=not (name.strip() and members)):
            groups[name.strip()[:32]] = members
        for g in list(groups):
            d1, d2 = st.columns([6, 1])
            d1.caption(messages.plain(f"{g}: {', '.join(groups[g])}"))
            if d2.button("Remove", key=f"ci_group_rm_{g}"):
                groups.pop(g)
    st.session_state[GROUPS_KEY] = ";".join(f"{g}:{'+'.join(m)}" for g, m in groups.items())
    return groups


def intervention_picker(circuit: Circuit, nodes: list[dict], groups: dict[str, list[str]], last_position: int) -> tuple[list[FeatureEdit], float, list[str]]:
    """Nodes (features, or groups of them) to set to ``factor ×`` their activation."""
    graph = circuit.graph
    text = linked_text(CUT_KEY, "cut")
    chosen_nodes, bad = parse_node_list(graph, "+".join(p for p in text.split("+") if not p.startswith("group "))) if text else ([], [])
    if bad:
        st.warning(messages.plain(f"Ignored in the link's interventions (not nodes of this graph): {', '.join(bad[:5])}"))
    options = [n["name"] for n in nodes if n["kind"] == "feature" and n["pos"] <= last_position] + [f"group {g}" for g in groups]
    current = [node_name(graph, n) for n in chosen_nodes if graph.kind(n) == "feature"] + [p for p in text.split("+") if p.startswith("group ")]
    st.session_state["ci_cut_pick"] = [c for c in st.session_state.get("ci_cut_pick", current) if c in options]
    session.linked_setting("ci_factor", "factor", FACTORS, [f"{f:g}" for f in FACTORS], "intervention factor", 0.0)
    c1, c2 = st.columns([4, 2])
    picked = c1.multiselect("Features to intervene on (nodes or supernodes)", options, key="ci_cut_pick", max_selections=32)
    factor = c2.select_slider("Set them to × their activation", FACTORS, key="ci_factor", format_func=lambda f: "0 (remove)" if f == 0 else f"× {f:g}")
    st.session_state[CUT_KEY] = "+".join(picked)
    names = [m for p in picked for m in (groups.get(p[6:], []) if p.startswith("group ") else [p])]
    index = {n["name"]: n["node"] for n in nodes}
    edits = []
    for name in dict.fromkeys(names):
        node = index.get(name)
        if node is not None and graph.kind(node) == "feature":
            layer, pos, feat = (int(v) for v in graph.features[node])
            if pos <= last_position:
                edits.append(FeatureEdit(layer, pos, feat, factor))
    return edits, factor, picked


def link_params(nt: float, et: float) -> dict[str, str]:
    out = {"nodes": f"{nt:.2f}", "edges": f"{et:.2f}"}
    for key, param in ((NODE_KEY, "node"), (GROUPS_KEY, "groups"), (CUT_KEY, "cut"), (PIN_KEY, "pin")):
        if st.session_state.get(key):
            out[param] = str(st.session_state[key])
    if st.session_state.get(CUT_KEY):
        out["factor"] = f"{st.session_state.get('ci_factor', 0.0):g}"
    return out


def pinned(circuit: Circuit) -> list[int]:
    """Nodes drawn whatever the pruning says (``pin=`` in the link), typed as node names."""
    text = linked_text(PIN_KEY, "pin")
    value = st.text_input("Pin nodes (always drawn; names as in the node list, joined by +)", key=PIN_KEY, max_chars=600, placeholder="e.g. L2.P14.F301+E1.P14")
    nodes, bad = parse_node_list(circuit.graph, value or text)
    if bad:
        st.warning(messages.plain(f"Not nodes of this graph, not pinned: {', '.join(bad[:5])}"))
    return nodes


def shown(circuit: Circuit, feature_label, position_label, pins: list[int]) -> tuple[list[dict], list]:
    return drawing(circuit, feature_label, position_label, tuple(pins))


def feature_dashboard(handle, transcoders: dict[int, object], layer: int, feature: int) -> None:
    """The SAE browser's dashboard for a transcoder feature: where it fires most (boards), its
    activation histogram, its best board property and its direct effect on the logits."""
    from core import corpus_results
    from core.interp.sae import features as F
    from ui import caches
    from ui import unit_dashboard as UD

    tc = transcoders[layer]
    index = caches.corpus_result(handle, corpus_results.sae_index_result(handle, tc, f"blocks.{layer}.ln2.hook_normalized", f"transcoder-L{layer}"))
    UD.unit_dashboard(index, feature, handle.game, name=f"Transcoder feature L{layer} #{feature}", effects=F.logit_effects(handle, tc.W_dec.detach().float(), feature),
                      effects_title="Direct effect on the next-move logits", effects_note="its decoder row read through the unembedding", key="ci_unit")


def graph_section(circuit: Circuit, feature_label, position_label, tick_label) -> tuple[list[dict], dict[str, list[str]], dict, dict[int, str]]:
    """Pins, supernodes, the graph, the target's split and the node picker, in the page's order:
    (drawn nodes, supernodes, the selected node, each drawn node's label)."""
    nodes, edges = shown(circuit, feature_label, position_label, pinned(circuit))
    groups = groups_editor(circuit, nodes)
    graph_chart(circuit, nodes, edges, circuit.graph.n_layers, {p: tick_label(p) for p in range(circuit.graph.n_pos)}, groups)
    target_sum(circuit)
    default = next((n["name"] for n in nodes if n["kind"] == "feature"), nodes[0]["name"])
    node = node_picker(nodes, default)
    return nodes, groups, node, {n["node"]: n["label"] for n in nodes}
