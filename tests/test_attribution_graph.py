"""Attribution graphs on the bundled models and transcoders: every node's incoming edges plus its
constant terms add up to its input in the real run (the local replacement is exact), with and
without a late window; influence is ``w((I − Â)⁻¹ − I)`` computed independently; pruning keeps
what circuit-tracer keeps; feature edits act as the decoder row says."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from core.interp.circuits import board_targets as BT
from core.interp.circuits.attribution import attribute
from core.interp.circuits.circuit import build_graph, choose_start, circuit_of, node_index, node_name, parse_groups, parse_node_list
from core.interp.circuits.interventions import FeatureEdit, edit_hooks
from core.interp.circuits.pruning import graph_scores, influence, normalized_rows, prune, target_weights
from core.interp.circuits.replacement import TRANSCODERS, load_transcoders
from core.interp.circuits.targets import probe_target, salient_logits
from core.models.registry import load_model


@pytest.fixture(scope="module")
def othello():
    handle = load_model("othello8")
    return handle, load_transcoders(TRANSCODERS / "othello8", handle.cfg.n_layers)


@pytest.fixture(scope="module")
def game_moves(othello):
    handle, _ = othello
    game = handle.game.random_games(1, seed=20261208)[0]
    return tuple(int(m) for m in game[:14])


@pytest.fixture(scope="module")
def graph(othello, game_moves):
    handle, tcs = othello
    tokens, targets = BT.board_targets(handle, game_moves, "top")
    return attribute(handle, tokens, tcs, targets)


def real_inputs(handle, tcs, graph) -> np.ndarray:
    """Each feature's pre-activation and each target's value, read off TransformerLens's cache."""
    names = [f"blocks.{layer}.ln2.hook_normalized" for layer in range(handle.cfg.n_layers)] + ["unembed.hook_in"] + [f"blocks.{layer}.hook_resid_post" for layer in range(handle.cfg.n_layers)]
    with handle.session() as model, torch.inference_mode():
        _, cache = model.run_with_cache(torch.as_tensor(graph.tokens)[None], names_filter=lambda n: n in names)
    with torch.no_grad():
        pre = [float(cache[f"blocks.{layer}.ln2.hook_normalized"][0, pos] @ tcs[layer].W_enc[:, f] + tcs[layer].b_enc[f]) for layer, pos, f in graph.features]
    site = {"final": cache["unembed.hook_in"][0]} | {f"resid_post.{layer}": cache[f"blocks.{layer}.hook_resid_post"][0] for layer in range(handle.cfg.n_layers)}
    values = [sum(float(site[s][p] @ v) for s, p, v in t.parts) for t in graph.targets]
    return np.array(pre + values)


def test_each_node_is_the_sum_of_its_edges_and_constants(othello, graph):
    handle, tcs = othello
    assert graph.n_features > 500 and len(graph.targets) >= 1
    want = real_inputs(handle, tcs, graph)
    got = graph.row_inputs()
    assert np.abs(got - want).max() < 1e-4
    assert np.abs(got[: graph.n_features] - graph.activations).max() < 1e-4  # active features: input = activation


def test_a_late_window_stays_exact(othello, game_moves):
    """Nodes from position 6 only: what came before is constant, and the sums still hold."""
    handle, tcs = othello
    tokens, targets = BT.board_targets(handle, game_moves, "legal")
    g = attribute(handle, tokens, tcs, targets, first=6, start=6)
    assert g.features[:, 1].min() >= 6 and not g.edges[:, g.token_index(0) : g.token_index(6)].any()
    assert np.abs(g.row_inputs() - real_inputs(handle, tcs, g)).max() < 1e-4


def test_a_probe_reading_is_a_target_too(othello, game_moves):
    handle, tcs = othello
    tokens = torch.as_tensor(handle.game.game_tokens(game_moves))
    weight = torch.randn(handle.cfg.d_model, 3, generator=torch.Generator().manual_seed(0))
    target = probe_target(weight, 3, len(tokens) - 1, 1, "mine d3 at layer 3")
    g = attribute(handle, tokens, tcs, [target])
    above = np.nonzero(g.features[:, 0] > 3)[0]
    assert len(above) and not g.edges[g.n_features, torch.as_tensor(above)].any()  # nothing above the layer it reads feeds it
    assert np.abs(g.row_inputs() - real_inputs(handle, tcs, g)).max() < 1e-4


def test_a_whole_pgn_move_is_its_characters_logits():
    handle = load_model("chess-pgn")
    tcs = load_transcoders(TRANSCODERS / "chess-pgn", handle.cfg.n_layers)
    moves = tuple(int(m) for m in handle.game.random_games(1, seed=7)[0][:8])
    move = sorted(int(m) for m in handle.game.state(moves).legal_moves)[0]
    tokens, (target,) = BT.board_targets(handle, moves, "move", move)
    tail = handle.game.move_tokens(move, moves)
    assert len(tokens) == len(handle.game.game_tokens(moves)) + len(tail)  # the move's characters (the space after it is read, not fed)
    assert [p for _, p, _ in target.parts] == list(range(len(tokens) - len(tail) - 1, len(tokens)))
    g = build_graph(handle, tokens, tcs, [target], work=20_000)
    assert g.start > 0  # a long input: the window bounds the work
    assert np.abs(g.row_inputs() - real_inputs(handle, tcs, g)).max() < 1e-4


def test_influence_is_the_inverse_series(graph):
    """``w (Â + Â² + …)`` equals ``w ((I − Â)⁻¹ − I)`` solved on the full matrix."""
    a = graph.adjacency().double()
    norm = a.abs() / a.abs().sum(1, keepdim=True).clamp(min=1e-10)
    w = target_weights(graph).double()
    solved = torch.linalg.solve((torch.eye(len(w), dtype=torch.float64) - norm).T, w) - w
    ours = influence(normalized_rows(graph), graph).double()
    assert torch.allclose(ours, solved, atol=1e-6 * float(solved.abs().max()))


def test_pruning_keeps_inputs_and_targets_and_the_thresholds_order_it(graph):
    loose, tight = prune(graph, 0.95, 0.99), prune(graph, 0.6, 0.9)
    fixed = slice(graph.token_index(0), graph.n_nodes)
    assert loose.node_mask[fixed].all() and tight.node_mask[fixed].all()
    assert int(tight.node_mask.sum()) < int(loose.node_mask.sum()) < graph.n_nodes
    features = tight.node_mask[: graph.n_features]
    assert tight.edge_mask[: graph.n_features][features].any(1).all()  # kept features have an input
    assert not tight.edge_mask[:, ~tight.node_mask].any()  # no edge from a dropped node
    with pytest.raises(ValueError, match="between 0 and 1"):
        prune(graph, 1.5, 0.98)


def test_scores_are_one_without_errors_and_fall_with_them(graph):
    replacement, completeness = graph_scores(graph)
    assert 0 < replacement < 1 and 0 < completeness < 1
    clean = type(graph)(**{**graph.__dict__, "edges": graph.edges.clone()})
    clean.edges[:, graph.error_index(0, 0) : graph.token_index(0)] = 0
    assert graph_scores(clean) == pytest.approx((1.0, 1.0))


def test_node_names_round_trip_and_bad_names_are_reported(graph):
    circuit = circuit_of(graph)
    for node in list(circuit.kept[:20]) + [graph.error_index(2, 3), graph.token_index(1), graph.target_index(0)]:
        assert node_index(graph, node_name(graph, int(node))) == node
    nodes, bad = parse_node_list(graph, f"{node_name(graph, 0)}+L99.P1.F1+<script>+T9999")
    assert nodes == [0] and bad == ["L99.P1.F1", "<script>", "T9999"]
    groups, bad = parse_groups(graph, f"flank e4:{node_name(graph, 0)}+{node_name(graph, 1)};:T1;x:nothing")
    assert groups == {"flank e4": [node_name(graph, 0), node_name(graph, 1)]} and bad == [":T1", "nothing", "x:nothing"]


def test_the_window_start_bounds_features_and_work():
    counts = np.array([10, 10, 10, 10, 10])
    assert choose_start(counts, max_features=100, work=1_000) == 0
    assert choose_start(counts, max_features=30, work=1_000) == 2
    assert choose_start(counts, max_features=100, work=60) == 2  # from position 2: 10 × (1 + 2 + 3) = 60
    assert choose_start(counts, max_features=100, work=59) == 3


def test_a_feature_edit_moves_the_mlp_output_along_its_decoder_row(othello, graph):
    handle, tcs = othello
    layer, pos, feat = (int(v) for v in graph.features[np.argmax(graph.activations)])
    tokens = torch.as_tensor(graph.tokens)[None]
    hook = f"blocks.{layer}.hook_mlp_out"
    keep = {}

    def grab(y, hook=None):
        keep.setdefault("y", []).append(y.detach().clone())
        return y

    base = handle.run_with_hooks(tokens, edit_hooks(tcs, [FeatureEdit(layer, pos, feat, 1.0)]) + [(hook, grab)])
    assert torch.equal(base, handle.run_with_hooks(tokens, []))  # factor 1 is the identity
    handle.run_with_hooks(tokens, [(hook, grab)])
    handle.run_with_hooks(tokens, edit_hooks(tcs, [FeatureEdit(layer, pos, feat, 0.0)]) + [(hook, grab)])
    clean, edited = keep["y"][1], keep["y"][2]
    act = float(graph.activations[np.argmax(graph.activations)])
    want = clean.clone()
    want[0, pos] -= act * tcs[layer].W_dec[feat].detach()
    assert torch.allclose(edited, want, atol=1e-5)
    assert handle.model.hook_dict[hook]._forward_hooks == {}  # scoped: nothing left on the shared model
