"""Which nodes and edges of an attribution graph matter, and how much of the target the
graph's features explain: circuit-tracer's definitions (``prune_graph``, ``compute_graph_scores``),
computed on the graph's rows only (error and token nodes have no incoming edges, so their rows
of the full matrix are zero and are never stored).

- Influence: with ``Â`` the adjacency with each row's absolute values normalised to sum to 1
  and ``w`` the targets' weights, a node's influence is ``w (Â + Â² + …)`` at that node: the
  share of the targets' inputs that flows through it along every path.
- Pruning keeps the nodes carrying ``node_threshold`` of the total influence (tokens and
  targets always), then the edges carrying ``edge_threshold`` of the edge scores
  (``Â[t, s] × (influence of t + its weight)`` in the node-pruned graph), then drops nodes
  left without an outgoing edge (and features without an incoming one) until nothing changes.
- Replacement score: of the influence that reaches the input, the share that starts at tokens
  rather than error nodes. Completeness score: each node's share of incoming (normalised) weight
  that is not from error nodes, averaged with weights ``influence + target weight``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from core.interp.circuits.attribution import AttributionGraph


def normalized_rows(graph: AttributionGraph) -> torch.Tensor:
    a = graph.edges.abs()
    return a / a.sum(dim=1, keepdim=True).clamp(min=1e-10)


def target_weights(graph: AttributionGraph) -> torch.Tensor:
    """The targets' weights over all nodes (zero elsewhere)."""
    w = torch.zeros(graph.n_nodes)
    w[graph.target_index(0) :] = torch.tensor([t.weight for t in graph.targets], dtype=torch.float32)
    return w


def influence(rows: torch.Tensor, graph: AttributionGraph, max_iter: int = 1000) -> torch.Tensor:
    """``w (Â + Â² + …)`` over all nodes, ``rows`` being ``Â``'s stored rows (features, then targets)."""
    n_f = graph.n_features
    current = torch.zeros(rows.shape[0])
    current[n_f:] = torch.tensor([t.weight for t in graph.targets], dtype=torch.float32)
    total = torch.zeros(graph.n_nodes)
    for _ in range(max_iter):
        step = current @ rows
        if not step.any():
            return total
        total += step
        current = torch.zeros(rows.shape[0])
        current[:n_f] = step[:n_f]  # only features have incoming edges to pass the influence on
    raise RuntimeError(f"influence did not converge in {max_iter} steps")


def _threshold(scores: torch.Tensor, keep: float) -> torch.Tensor:
    """The score at which the largest scores add up to ``keep`` of the total (circuit-tracer's
    ``find_threshold`` over the full matrix). Zeros add nothing, so only the positive scores are
    sorted (a pruned matrix is mostly zeros); a cut that falls past them falls on a zero."""
    ordered = torch.sort(scores[scores > 0], descending=True).values
    if not len(ordered):
        return torch.zeros((), dtype=scores.dtype)
    cumulative = torch.cumsum(ordered, 0) / ordered.sum()
    index = int(torch.searchsorted(cumulative, keep))
    if index >= len(ordered):  # the full matrix always has zeros (its error and token rows)
        return torch.zeros((), dtype=scores.dtype)
    return ordered[index]


@dataclass
class Pruned:
    node_mask: torch.Tensor  # (n_nodes,) bool
    edge_mask: torch.Tensor  # (n_rows, n_nodes) bool over the stored rows
    influence: torch.Tensor  # (n_nodes,)
    cumulative: torch.Tensor  # (n_nodes,) each node's cumulative influence rank (as circuit-tracer reports)


def row_nodes(graph: AttributionGraph) -> torch.Tensor:
    """The node index of each stored row."""
    return torch.cat([torch.arange(graph.n_features), torch.arange(graph.target_index(0), graph.n_nodes)])


def prune(graph: AttributionGraph, node_threshold: float = 0.8, edge_threshold: float = 0.98) -> Pruned:
    for name, value in (("node_threshold", node_threshold), ("edge_threshold", edge_threshold)):
        if not 0.0 <= value <= 1.0:
            raise ValueError(f"{name} must be between 0 and 1, not {value}")
    n_f, n_nodes = graph.n_features, graph.n_nodes
    first_fixed = graph.token_index(0)  # tokens and targets are always kept
    node_influence = influence(normalized_rows(graph), graph)
    node_mask = node_influence >= _threshold(node_influence, node_threshold)
    node_mask[first_fixed:] = True
    rows_at = row_nodes(graph)
    pruned = graph.edges.clone()
    pruned[~node_mask[rows_at]] = 0
    pruned[:, ~node_mask] = 0
    norm = pruned.abs()
    norm = norm / norm.sum(dim=1, keepdim=True).clamp(min=1e-10)
    row_influence = (influence(norm, graph) + target_weights(graph))[rows_at]
    scores = norm * row_influence[:, None]
    edge_mask = scores >= _threshold(scores.flatten(), edge_threshold)
    old = node_mask.clone()

    def tidy() -> None:
        has_out = edge_mask.any(0)
        node_mask[:first_fixed] &= has_out[:first_fixed]  # features and errors need an outgoing edge
        node_mask[:n_f] &= edge_mask[:n_f].any(1)  # features need an incoming one

    tidy()
    while not torch.equal(node_mask, old):
        old = node_mask.clone()
        edge_mask[~node_mask[rows_at]] = False
        edge_mask[:, ~node_mask] = False
        tidy()
    order = torch.sort(node_influence, descending=True)
    cumulative = torch.zeros(n_nodes)
    cumulative[order.indices] = torch.cumsum(order.values, 0) / order.values.sum().clamp(min=1e-30)
    return Pruned(node_mask, edge_mask, node_influence, cumulative)


def graph_scores(graph: AttributionGraph) -> tuple[float, float]:
    """(replacement score, completeness score)."""
    norm = normalized_rows(graph)
    node_influence = influence(norm, graph)
    errors = slice(graph.error_index(0, 0), graph.token_index(0))
    tokens = slice(graph.token_index(0), graph.target_index(0))
    token_inf, error_inf = node_influence[tokens].sum(), node_influence[errors].sum()
    replacement = float(token_inf / (token_inf + error_inf).clamp(min=1e-30))
    non_error = torch.ones(graph.n_nodes)
    non_error[row_nodes(graph)] = 1 - norm[:, errors].sum(dim=-1)
    weight = node_influence + target_weights(graph)
    completeness = float((non_error * weight).sum() / weight.sum())
    return replacement, completeness
