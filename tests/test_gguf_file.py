"""Our GGUF header reader against files that the gguf package's own writer made: every value type,
plain and quantised tensors, and damaged copies of them."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from core.models.gguf_file import read_gguf

pytestmark = pytest.mark.skipif(importlib.util.find_spec("gguf") is None, reason="gguf is not installed (requirements-dev.txt has it)")

FIELDS = {
    "test.u8": ("add_uint8", 200), "test.i8": ("add_int8", -5), "test.u16": ("add_uint16", 60_000), "test.i16": ("add_int16", -30_000),
    "test.u32": ("add_uint32", 4_000_000_000), "test.i32": ("add_int32", -2_000_000_000), "test.u64": ("add_uint64", 2**60),
    "test.i64": ("add_int64", -(2**60)), "test.f32": ("add_float32", 0.5), "test.f64": ("add_float64", 1e-300),
    "test.bool": ("add_bool", True), "test.str": ("add_string", "Ünïcode — 漢字"),
    "test.strings": ("add_array", ["a", "", "b c", "é"]), "test.ints": ("add_array", [3, 1, 4, 1, 5]),
}


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    """A GGUF file from ``gguf.GGUFWriter`` and what went into it."""
    import gguf

    path = tmp_path_factory.mktemp("gguf") / "written.gguf"
    rng = np.random.default_rng(0)
    plain = rng.standard_normal((3, 64)).astype(np.float32)  # 3 rows of 64: GGUF lists the shape (64, 3)
    half = rng.standard_normal(32).astype(np.float16)
    quantised_values = rng.standard_normal((4, 64)).astype(np.float32)
    quantised = gguf.quants.quantize(quantised_values, gguf.GGMLQuantizationType.Q8_0)
    writer = gguf.GGUFWriter(str(path), "llama")
    for key, (method, value) in FIELDS.items():
        getattr(writer, method)(key, value)
    writer.add_tensor("plain", plain)
    writer.add_tensor("half", half)
    writer.add_tensor("quantised", quantised, raw_shape=quantised.shape, raw_dtype=gguf.GGMLQuantizationType.Q8_0)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    expected = gguf.quants.dequantize(quantised, gguf.GGMLQuantizationType.Q8_0)
    return path, {"plain": plain, "half": half.astype(np.float32), "quantised": expected}


def test_every_field_and_tensor_reads_back_as_written(written):
    """Float fields are written as float32 and read back: equal to the float32 rounding of the
    written value (``approx``'s 1e-6 relative is ~16 u)."""
    import gguf

    path, arrays = written
    f = read_gguf(path)
    assert f.version == 3 and f.fields["general.architecture"] == "llama"
    for key, (_, value) in FIELDS.items():
        assert f.fields[key] == (pytest.approx(value) if isinstance(value, float) else value), key
    assert [t.name for t in f.tensors] == ["plain", "half", "quantised"]
    assert [t.shape for t in f.tensors] == [(64, 3), (32,), (64, 4)]
    for t in f.tensors:
        values = gguf.quants.dequantize(t.data, gguf.GGMLQuantizationType(t.ggml_type)).reshape(t.shape[::-1])
        np.testing.assert_array_equal(values, arrays[t.name])
    assert not f.tensors[0].data.flags.writeable  # a read-only map of the file


def test_both_readers_agree_on_the_written_file(written):
    import gguf

    path, _ = written
    theirs = gguf.GGUFReader(str(path))
    ours = read_gguf(path)
    assert {k: v.contents() for k, v in theirs.fields.items() if not k.startswith("GGUF.")} == ours.fields
    for a, b in zip(theirs.tensors, ours.tensors, strict=True):
        assert (a.name, tuple(int(d) for d in a.shape), int(a.tensor_type)) == (b.name, b.shape, b.ggml_type)
        assert np.array_equal(np.asarray(a.data).view(np.uint8).reshape(-1), b.data.reshape(-1))


def test_a_damaged_file_is_a_value_error_that_says_what_broke(written, tmp_path):
    path, _ = written
    data = path.read_bytes()
    bad = tmp_path / "bad.gguf"
    for cut in (0, 3, 10, 30, 200, len(data) - 40):  # truncated in the header, the fields, the tensor table and the data (the file ends in < 32 bytes of padding)
        bad.write_bytes(data[:cut])
        with pytest.raises(ValueError, match="truncated|magic"):
            read_gguf(bad)
    bad.write_bytes(b"GGUF" + (1).to_bytes(4, "little") + data[8:])
    with pytest.raises(ValueError, match="version 1"):
        read_gguf(bad)
    huge = bytearray(data)
    huge[8:16] = (2**62).to_bytes(8, "little")  # a tensor count no file could hold: refused before any allocation
    bad.write_bytes(bytes(huge))
    with pytest.raises(ValueError, match="cannot fit"):
        read_gguf(bad)
    bad.write_bytes(b"PK\x03\x04" + data[4:])
    with pytest.raises(ValueError, match="magic"):
        read_gguf(bad)
