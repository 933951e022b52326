"""A circuit for the page: the attribution graph of an input to its targets, bounded in size,
pruned, scored, with every node named the same way in links and labels.

Node names (stable across recomputation, so a link can pin or group them):
``L3.P12.F407`` a feature (layer, position, id), ``E3.P12`` an error node, ``T12`` the input
token at position 12, ``Y0`` the first target.

Size: the work of a graph is one backward pass per feature through every position between it
and the window's start, so a graph keeps at most ``max_features`` feature nodes and at most
``WORK`` feature-positions. A long input attributes its last positions only, as many as fit;
everything before them counts as constants (``start`` and ``first`` say where nodes start, and
the page says so). The input's length is checked before anything is allocated.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import torch

from core.interp.circuits.attribution import AttributionGraph, attribute, count_active
from core.interp.circuits.pruning import Pruned, graph_scores, prune, target_weights
from core.interp.circuits.targets import Target
from core.models.handle import ModelHandle

MAX_FEATURES = 6000  # feature nodes: ~6000 × ~7000 edges of float32 is ~170 MB
WORK = 80_000  # feature × positions behind it: Othello's mid-game (~4,300 features over 30 moves), ~2 s on 2 cores
NODE_NAME = re.compile(r"^(?:L(\d{1,2})\.P(\d{1,4})\.F(\d{1,6})|E(\d{1,2})\.P(\d{1,4})|T(\d{1,4})|Y(\d{1,2}))$")


@dataclass
class Circuit:
    graph: AttributionGraph
    pruned: Pruned
    replacement_score: float
    completeness_score: float
    node_threshold: float
    edge_threshold: float

    @property
    def kept(self) -> np.ndarray:
        """Kept node indices, most influential first (targets last)."""
        idx = torch.nonzero(self.pruned.node_mask).flatten()
        return idx[torch.argsort(-self.pruned.influence[idx])].numpy()


def choose_start(per_position: np.ndarray, max_features: int = MAX_FEATURES, work: int = WORK) -> int:
    """The earliest window start whose features fit ``max_features`` and whose backward work
    (each feature times the positions from the start to it) fits ``work``."""
    n = len(per_position)
    for a in range(n):
        counts = per_position[a:]
        if counts.sum() <= max_features and float((counts * np.arange(1, n - a + 1)).sum()) <= work:
            return a
    return n - 1


def check_input(handle: ModelHandle, tokens: torch.Tensor) -> None:
    n = len(tokens)
    if n == 0:
        raise ValueError("an attribution graph needs at least one token")
    if n > handle.cfg.n_ctx:
        raise ValueError(f"the input has {n} tokens; the model reads at most {handle.cfg.n_ctx}")
    if int(tokens.min()) < 0 or int(tokens.max()) >= handle.cfg.d_vocab:
        raise ValueError(f"token ids must be in 0..{handle.cfg.d_vocab - 1}")


def build_graph(handle: ModelHandle, tokens: torch.Tensor, transcoders: dict[int, object], targets: list[Target], max_features: int = MAX_FEATURES, min_first: int = 0, work: int = WORK) -> AttributionGraph:
    """The unpruned graph, starting its nodes late enough to keep at most ``max_features``
    features (and not before ``min_first``: a text model's start token is no node, as in
    circuit-tracer)."""
    tokens = torch.as_tensor(tokens, dtype=torch.int64)
    check_input(handle, tokens)
    if not targets:
        raise ValueError("choose at least one target")
    per_position = count_active(handle, tokens, transcoders)
    start = choose_start(per_position, max_features, work)
    first = min(max(start, min_first), len(tokens) - 1)
    start = min(start, first)
    reads = min(p for t in targets for _, p, _ in t.parts)
    if start > reads:
        raise ValueError("the target is read before the attributed window")
    return attribute(handle, tokens, transcoders, targets, first=first, start=start)


def circuit_of(graph: AttributionGraph, node_threshold: float = 0.8, edge_threshold: float = 0.98) -> Circuit:
    pruned = prune(graph, node_threshold, edge_threshold)
    replacement, completeness = graph_scores(graph)
    return Circuit(graph, pruned, replacement, completeness, node_threshold, edge_threshold)


def node_name(graph: AttributionGraph, node: int) -> str:
    kind = graph.kind(node)
    if kind == "feature":
        layer, pos, feat = graph.features[node]
        return f"L{layer}.P{pos}.F{feat}"
    if kind == "error":
        k = node - graph.error_index(0, 0)
        return f"E{k // graph.n_pos}.P{k % graph.n_pos}"
    if kind == "token":
        return f"T{node - graph.token_index(0)}"
    return f"Y{node - graph.target_index(0)}"


def node_index(graph: AttributionGraph, name: str) -> int | None:
    """The node a name refers to in this graph, or None (malformed, or not in this graph)."""
    m = NODE_NAME.match(name.strip())
    if not m:
        return None
    fl, fp, ff, el, ep, tp, yi = m.groups()
    if fl is not None:
        hits = np.nonzero((graph.features[:, 0] == int(fl)) & (graph.features[:, 1] == int(fp)) & (graph.features[:, 2] == int(ff)))[0]
        return int(hits[0]) if len(hits) else None
    if el is not None:
        layer, pos = int(el), int(ep)
        return graph.error_index(layer, pos) if layer < graph.n_layers and pos < graph.n_pos else None
    if tp is not None:
        return graph.token_index(int(tp)) if int(tp) < graph.n_pos else None
    return graph.target_index(int(yi)) if int(yi) < len(graph.targets) else None


def incoming(circuit: Circuit, node: int, k: int = 8) -> list[tuple[int, float]]:
    """A node's largest kept incoming edges: (source node, direct effect)."""
    graph = circuit.graph
    row = _row_of(graph, node)
    if row is None:
        return []
    weights = graph.edges[row] * circuit.pruned.edge_mask[row]
    top = torch.argsort(-weights.abs())[:k]
    return [(int(s), float(weights[s])) for s in top if weights[s] != 0]


def outgoing(circuit: Circuit, node: int, k: int = 8) -> list[tuple[int, float]]:
    """A node's largest kept outgoing edges: (target node, direct effect)."""
    graph = circuit.graph
    weights = graph.edges[:, node] * circuit.pruned.edge_mask[:, node]
    top = torch.argsort(-weights.abs())[:k]
    rows_at = np.concatenate([np.arange(graph.n_features), np.arange(graph.target_index(0), graph.n_nodes)])
    return [(int(rows_at[r]), float(weights[r])) for r in top if weights[r] != 0]


def _row_of(graph: AttributionGraph, node: int) -> int | None:
    if node < graph.n_features:
        return node
    if node >= graph.target_index(0):
        return graph.n_features + node - graph.target_index(0)
    return None


def explained(circuit: Circuit, target: int = 0) -> dict[str, float]:
    """How a target's value splits over its direct inputs: features, errors, tokens, and the
    constant terms (their sum is the value, exactly)."""
    graph = circuit.graph
    row = graph.n_features + target
    edges = graph.edges[row]
    parts = {
        "features": float(edges[: graph.n_features].sum()),
        "errors": float(edges[graph.error_index(0, 0) : graph.token_index(0)].sum()),
        "tokens": float(edges[graph.token_index(0) : graph.target_index(0)].sum()),
        "constants": float(graph.bias[row]),
    }
    parts["value"] = float(graph.target_values[target])
    return parts


def drawing(circuit: Circuit, feature_label, position_label, pinned: tuple[int, ...] = (), max_edges: int = 300) -> tuple[list[dict], list[tuple[int, int, float]]]:
    """The kept nodes (plus ``pinned``) as dicts for the figure and tables, and the kept edges
    among them, those carrying most influence first (at most ``max_edges``: more is a hairball). ``feature_label(layer, feature)`` and
    ``position_label(pos)`` name things as the page does."""
    graph = circuit.graph
    shown = list(dict.fromkeys([int(n) for n in circuit.kept] + [int(n) for n in pinned]))
    nodes = []
    for node in shown:
        kind, name = graph.kind(node), node_name(graph, node)
        influence = float(circuit.pruned.influence[node])
        if kind == "feature":
            layer, pos, feat = (int(v) for v in graph.features[node])
            label = f"{name} · {feature_label(layer, feat)} · act {graph.activations[node]:.2f} at {position_label(pos)}"
        elif kind == "error":
            k = node - graph.error_index(0, 0)
            layer, pos = k // graph.n_pos, k % graph.n_pos
            label = f"{name} · layer {layer}'s error at {position_label(pos)} (size {graph.error_norms[layer, pos]:.2f})"
        elif kind == "token":
            layer, pos = -1, node - graph.token_index(0)
            label = f"{name} · input {position_label(pos)}"
        else:
            i = node - graph.target_index(0)
            target = graph.targets[i]
            layer, pos = graph.n_layers, max(p for _, p, _ in target.parts)
            label = f"{name} · target {target.label} (weight {target.weight:.2f}, value {graph.target_values[i]:.2f})"
        short = graph.targets[node - graph.target_index(0)].label if kind == "target" else ""
        nodes.append({"node": node, "name": name, "kind": kind, "layer": layer, "pos": pos, "influence": influence, "label": label, "short": short})
    shown_t = torch.tensor(shown, dtype=torch.long)
    rows_at = torch.cat([torch.arange(graph.n_features), torch.arange(graph.target_index(0), graph.n_nodes)])
    row_of = torch.full((graph.n_nodes,), -1, dtype=torch.long)
    row_of[rows_at] = torch.arange(len(rows_at))
    rows = row_of[shown_t]
    rows = rows[rows >= 0]  # shown nodes that have incoming edges (features, targets)
    sub = graph.edges[rows][:, shown_t] * circuit.pruned.edge_mask[rows][:, shown_t]  # only the drawn nodes' block
    r, s = torch.nonzero(sub, as_tuple=True)
    w = sub[r, s]
    row_sum = graph.edges[rows].abs().sum(1).clamp(min=1e-10)
    carried = (circuit.pruned.influence + target_weights(graph))[rows_at[rows]]
    order = torch.argsort(-(w.abs() / row_sum[r] * carried[r]))[:max_edges]  # the edges that carry most influence
    edges = [(int(shown_t[s[i]]), int(rows_at[rows[r[i]]]), float(w[i])) for i in order]
    return nodes, edges


def parse_node_list(graph: AttributionGraph, text: str, limit: int = 64) -> tuple[list[int], list[str]]:
    """Nodes named in a link (``L3.P12.F407+T5``), and the names that are malformed or not in
    this graph."""
    nodes, bad = [], []
    for part in [p for p in text.replace(",", "+").split("+") if p.strip()][:limit]:
        node = node_index(graph, part)
        (bad.append(part.strip()[:40]) if node is None else nodes.append(node))
    return list(dict.fromkeys(nodes)), bad


def parse_groups(graph: AttributionGraph, text: str, limit: int = 12) -> tuple[dict[str, list[str]], list[str]]:
    """Supernodes from a link, ``name:L3.P12.F407+L4.P12.F9;other:…``: name -> node names."""
    groups, bad = {}, []
    for part in [p for p in text.split(";") if p.strip()][:limit]:
        name, _, members = part.partition(":")
        name = re.sub(r"[^\w \-·]", "", name).strip()[:32]
        nodes, wrong = parse_node_list(graph, members)
        bad += wrong
        if name and nodes:
            groups[name] = [node_name(graph, n) for n in nodes]
        elif part.strip():
            bad.append(part.strip()[:40])
    return groups, bad
