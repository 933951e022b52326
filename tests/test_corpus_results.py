"""Stored corpus-wide results: exact round trips, stale and damaged copies refused, the shipped
copies fresh and equal to what the code computes, and a page that rebuilds a missing one."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from core import corpus_results as R
from core import precomputed as S
from core.models.registry import load_model

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def tiny(tiny_bundle):
    return load_model(str(tiny_bundle))


@pytest.fixture()
def empty_stores(tmp_path, monkeypatch):
    """No shipped copies and an empty cache, for one test."""
    monkeypatch.setattr(S, "SHIPPED", tmp_path / "shipped")
    monkeypatch.setenv("BOARDLENS_CACHE", str(tmp_path / "cache"))
    return tmp_path


def test_narrowed_integers_read_back_exactly(tmp_path):
    arrays = {
        "small": np.array([-3, 0, 100], dtype=np.int64),
        "positions": np.arange(0, 60_000, 7, dtype=np.int32),
        "wide": np.array([0, 2**40], dtype=np.int64),
        "values": np.linspace(-1, 1, 11, dtype=np.float32),
        "half": np.ones((2, 3), dtype=np.float16),
    }
    assert S.narrow(arrays["small"]).dtype == np.int8 and S.narrow(arrays["positions"]).dtype == np.uint16
    key = {"kind": "test"}
    S.write(tmp_path, "r", key, {"n": 3}, arrays)
    meta, back = S.read(tmp_path, "r", key)
    assert meta == {"n": 3}
    for name, array in arrays.items():
        assert back[name].dtype == array.dtype and np.array_equal(back[name], array), name


def test_neuron_index_round_trip_is_exact(tiny, empty_stores):
    result = R.neurons_result(tiny, 1)
    built, where = R.load_or_build(tiny, result)
    assert where == "built (missing)"
    loaded, where = R.load(tiny, result)
    assert where == "cache"
    (a, corr_a), (b, corr_b) = built, loaded
    for field in ("games", "boards", "game", "move", "ptr", "position", "values", "best_property", "best_f1", "move_squares", "f1"):
        x, y = getattr(a, field), getattr(b, field)
        assert x.dtype == y.dtype and np.array_equal(x, y), field
    assert (a.size, a.hook, a.property_names) == (b.size, b.hook, b.property_names)
    assert np.array_equal(corr_a, corr_b)
    assert b.fingerprint == a.fingerprint


def test_every_source_pattern_names_files():
    """A result's code digest covers the files that compute it: a pattern left behind by a move
    would match nothing and silently stop marking copies stale."""
    for pattern in S._COMMON + sum(S.SOURCES.values(), ()):
        assert list(S.ROOT.glob(pattern)), pattern


def test_other_weights_code_or_parameters_make_a_copy_stale(tiny, empty_stores, monkeypatch):
    result = R.lens_legality_result(tiny)
    R.load_or_build(tiny, result)
    assert R.load(tiny, result)[1] == "cache"
    other_params = R.Result(**{**result.__dict__, "key": {**result.key, "params": {"games": 1, "seed": 0}}})
    assert R.load(tiny, other_params) == (None, "stale")
    other_weights = R.Result(**{**result.__dict__, "key": {**result.key, "model": "0" * 32}})
    assert R.load(tiny, other_weights) == (None, "stale")
    S.code_version.cache_clear()
    monkeypatch.setitem(S.SOURCES, "lens_legality", S.SOURCES["lens_legality"] + ("core/interp/patching/sweeps.py",))
    try:
        assert R.lens_legality_result(tiny).key["code"] != result.key["code"]
    finally:
        S.code_version.cache_clear()


@pytest.mark.parametrize("damage", ["array bytes", "array missing", "json edited", "json garbage"])
def test_a_damaged_copy_is_refused_with_its_file_name(tiny, empty_stores, damage):
    result = R.neurons_result(tiny, 0)
    R.load_or_build(tiny, result)
    folder = S.cache_root() / tiny.name
    array_path, meta_path = folder / f"{result.name}.safetensors", folder / f"{result.name}.json"
    if damage == "array bytes":
        data = bytearray(array_path.read_bytes())
        data[len(data) // 2] ^= 0xFF
        array_path.write_bytes(bytes(data))
    elif damage == "array missing":
        array_path.unlink()
    elif damage == "json edited":
        record = json.loads(meta_path.read_text())
        record["meta"]["size"] = 7
        meta_path.write_text(json.dumps(record))
    else:
        meta_path.write_text("{not json")
    value, where = R.load(tiny, result)
    assert value is None
    assert result.name in where, where
    rebuilt, where = R.load_or_build(tiny, result)  # and the app computes it again instead
    assert where.startswith("built") and rebuilt[0].size == 6


def test_every_shipped_result_is_present_and_fresh(capsys):
    """The pages open on these; a change to the code that computes them needs
    ``python -m core.corpus_results build`` (this fails until it is run)."""
    assert R.main(["check"]) == 0, capsys.readouterr().out


def test_shipped_results_equal_what_the_code_computes():
    """The shipped results were computed on another CPU. Top-1 legal rates are counts over
    positions: equal unless rounding flips an argmax between two logits within ~1e-5 of each
    other (none in this corpus), so 1e-9. Illegal mass is a float64 mean of float32
    probabilities (a few u each: 1e-6). Neuron activations and correlations are float32 products
    of d_model = 256 and sums over ~2,000 positions: sqrt(n) u of values up to ~10 is ~1e-5;
    atol 1e-4 holds on any CPU, and a changed model or corpus moves them by 1e-2 or more."""
    handle = load_model("othello6")
    for result in (R.lens_legality_result(handle), R.neurons_result(handle, R.neuron_home_layer(handle))):
        meta, arrays = S.read(S.SHIPPED / "othello6", result.name, result.key)
        shipped = result.join(meta, arrays)
        fresh = result.build(None)
        if result.kind == "lens_legality":
            assert shipped["labels"] == fresh["labels"] and shipped["positions"] == fresh["positions"]
            np.testing.assert_allclose(shipped["top1_legal"], fresh["top1_legal"], atol=1e-9)
            np.testing.assert_allclose(shipped["illegal_mass"], fresh["illegal_mass"], atol=1e-6)
        else:
            (a, corr_a), (b, corr_b) = shipped, fresh
            assert_same_sparse_index(a, b, atol=1e-4)
            np.testing.assert_allclose(corr_a, corr_b, atol=1e-4)


def assert_same_sparse_index(a, b, atol: float) -> None:
    """Two indexes of the same units hold the same activations within ``atol`` (float32 sums on
    another CPU differ by ~2e-5). An entry only one of them holds must be within ``atol`` of
    zero: a neuron is kept where it is positive, and rounding may put ~1e-8 on the other side."""
    assert len(a.ptr) == len(b.ptr) and a.n_positions == b.n_positions
    keys = [np.repeat(np.arange(len(x.ptr) - 1, dtype=np.int64), np.diff(x.ptr)) * x.n_positions + x.position for x in (a, b)]
    common, ia, ib = np.intersect1d(keys[0], keys[1], assume_unique=True, return_indices=True)
    np.testing.assert_allclose(a.values[ia], b.values[ib], atol=atol)
    only_a = np.delete(a.values, ia)
    only_b = np.delete(b.values, ib)
    assert len(only_a) + len(only_b) <= 1e-4 * len(common), (len(only_a), len(only_b))
    assert np.all(np.abs(only_a) <= atol) and np.all(np.abs(only_b) <= atol), (only_a.max(initial=0), only_b.max(initial=0))


def test_lens_page_rebuilds_missing_results_and_says_so(empty_stores):
    from streamlit.testing.v1 import AppTest
    from ui import caches
    caches._corpus_store.clear()  # results other tests of this process already hold
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=300)
    at.query_params["model"] = "othello6"
    game = load_model("othello6").game
    at.query_params["moves"] = game.url_moves(tuple(int(m) for m in game.random_games(1, seed=5)[0][:4]))
    at.query_params["section"] = "neurons"  # the section that reads the neuron index
    at.switch_page("pages/logit_lens.py").run()
    assert not at.exception, at.exception
    notes = [c.value for c in at.caption if c.value.startswith("Computed ")]
    assert any("lens legality" in n and "no stored copy was usable (missing)" in n for n in notes), notes
    assert any("neuron index" in n for n in notes), notes
    cached = sorted(p.name for p in (S.cache_root() / "othello6").glob("*.json"))
    assert cached == ["lens_legality.json", "neurons_L7.json"], cached
    caches._corpus_store.clear()
    at.run()  # a new process would read the cached copies: nothing is computed again
    assert not at.exception
    assert not [c.value for c in at.caption if c.value.startswith("Computed ")]
    caches._corpus_store.clear()
