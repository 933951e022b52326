"""MLP neurons as browsable units (core.interp.lens.neurons) and the property search shared with SAEs."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from core.interp.lens import logit_lens as L
from core.interp.shared import unit_index
from core.interp.lens.neurons import mlp_hook, neuron_index
from core.interp.shared.activations import collect
from core.models.registry import load_model


@pytest.fixture(scope="module")
def handle():
    return load_model("othello6")


@pytest.fixture(scope="module")
def layer_index(handle):
    return neuron_index(handle, 1, n_games=40, seed=5)


def test_index_holds_exactly_the_positive_activations(handle, layer_index):
    """The index holds the activations of the same collection pass over the same games (the same
    batches, the same kernels), copied: equal to float32's last bit (rtol 1e-6 is ~16 u)."""
    index, _ = layer_index
    games = handle.game.random_games(40, seed=5)
    acts = collect(handle, games, [mlp_hook(1)]).acts[mlp_hook(1)]
    assert index.d_sae == handle.cfg.d_mlp and index.n_positions == len(acts)
    for neuron in (0, 17, handle.cfg.d_mlp - 1):
        positions, values = index.activations(neuron)
        expected = acts[:, neuron]
        assert len(values) == int((expected > 0).sum())
        np.testing.assert_allclose(values, expected[torch.from_numpy(positions.astype(np.int64))].numpy(), rtol=1e-6)
        assert np.all(np.diff(values) <= 0)  # largest first


def test_correlations_equal_the_lens_computation_on_the_same_games(handle, layer_index):
    """Correlations are ratios of sums over ~2,000 positions: two float32 evaluations in another
    order differ by about sqrt(2000) u (3e-6) of values of order 1; atol 1e-4 is 30 times that,
    and a correlation with the wrong square or neuron differs by 1e-2 or more."""
    _, corr = layer_index
    expected = L.layer_board_correlations(handle, 1, handle.game.random_games(40, seed=5))
    np.testing.assert_allclose(corr, expected, atol=1e-4)


def test_search_ranks_units_by_their_f1_for_the_named_properties(layer_index):
    """The search returns the F1 table's own float32 values (``approx``'s default 1e-6 relative is
    ~16 u)."""
    index, _ = layer_index
    names = index.property_names
    exact, n = unit_index.search_units(index, "mine c3", k=5)
    assert n == 1 and all(prop == "mine c3" for _, prop, _ in exact)
    column = index.f1[:, names.index("mine c3")].astype(np.float32)
    assert [u for u, _, _ in exact] == list(np.argsort(-column, kind="stable")[:5])
    assert exact[0][2] == pytest.approx(float(column.max()))
    by_square, n = unit_index.search_units(index, "C3", k=8)  # every property of c3, any case
    assert n == 5 and {p.split()[0] for _, p, _ in by_square} <= {"empty", "mine", "theirs", "legal", "flipped"}
    assert by_square[0][2] >= exact[0][2]
    assert unit_index.search_units(index, "queen z9") == ([], 0)
    assert unit_index.search_units(index, "   ") == ([], 0)


def test_best_property_is_the_best_column_of_the_f1_table(layer_index):
    """Best F1 is the table's maximum; the table is stored as float16 (its rounding: 2**-11
    relative, below 5e-4 at F1 <= 1), so atol 1e-3 covers the stored table against the float32
    maximum."""
    index, _ = layer_index
    fired = np.diff(index.ptr) > 0
    table = index.f1.astype(np.float32)
    np.testing.assert_allclose(index.best_f1[fired], table[fired].max(1), atol=1e-3)
    assert np.all(index.best_property[~fired] == -1)


def test_bad_layer_is_refused(handle):
    with pytest.raises(ValueError, match="layer must be"):
        neuron_index(handle, handle.cfg.n_layers)
