"""A GGUF file's metadata and tensor table, read in one pass over its header.

Why not ``gguf.GGUFReader``: it builds a numpy view for every part of every field, ~4 s for
SmolLM2's 49,152-entry vocabulary and 48,900 merges, most of a model load. Here each string is
one ``bytes`` slice (~0.1 s). The tensors stay in a read-only memory map; ``gguf.quants`` still
dequantises them (``tests/test_gguf_file.py`` checks both readers agree on every field and tensor).

Every length and count is checked against the bytes that remain before anything is allocated: a
truncated or damaged file is a ``ValueError`` that says where it broke.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

MAGIC = b"GGUF"
VERSIONS = (2, 3)  # version 1 wrote 32-bit counts; llama.cpp has written version 3 since 2023
DEFAULT_ALIGNMENT = 32
MAX_DIMS = 4
HEADER_BYTES = 24  # magic, version, tensor count, field count
# The value types: format of one item (numbers), 7 = bool, 8 = string, 9 = array.
_NUMBERS = {0: "B", 1: "b", 2: "H", 3: "h", 4: "I", 5: "i", 6: "f", 10: "Q", 11: "q", 12: "d"}
BOOL, STRING, ARRAY = 7, 8, 9


@dataclass(frozen=True)
class GGUFTensor:
    name: str
    shape: tuple[int, ...]  # as GGUF lists it: the fastest-varying dimension first
    ggml_type: int
    data: np.ndarray  # uint8 (rows, bytes per row): the layout ``gguf.quants.dequantize`` reads


@dataclass(frozen=True)
class GGUFFile:
    version: int
    fields: dict[str, object]  # key -> int, float, bool, str, or a list of them
    tensors: list[GGUFTensor]


class _Cursor:
    """Little-endian reads from a byte buffer that refuse to run past its end."""

    def __init__(self, buf, start: int = 0):
        self.buf, self.pos, self.end = buf, start, len(buf)

    def take(self, n: int, what: str) -> int:
        if n < 0 or self.pos + n > self.end:
            raise ValueError(f"truncated at byte {self.pos:,} reading {what} ({n:,} bytes needed, {self.end - self.pos:,} left)")
        at = self.pos
        self.pos += n
        return at

    def number(self, fmt: str, what: str):
        size = struct.calcsize("<" + fmt)
        return struct.unpack_from("<" + fmt, self.buf, self.take(size, what))[0]

    def string(self, what: str) -> str:
        n = self.number("Q", what)
        at = self.take(n, what)
        return bytes(self.buf[at : at + n]).decode("utf-8", errors="replace")

    def value(self, kind: int, what: str):
        if kind in _NUMBERS:
            return self.number(_NUMBERS[kind], what)
        if kind == BOOL:
            return bool(self.number("B", what))
        if kind == STRING:
            return self.string(what)
        if kind == ARRAY:
            item, count = self.number("I", what), self.number("Q", what)
            if item in _NUMBERS:  # one read for the whole array
                fmt = _NUMBERS[item]
                at = self.take(count * struct.calcsize(fmt), what)
                return np.frombuffer(self.buf, dtype=np.dtype("<" + fmt), count=count, offset=at).tolist()
            if count > self.end - self.pos:  # every item takes at least a byte
                raise ValueError(f"{what}: {count:,} items cannot fit in the {self.end - self.pos:,} bytes left")
            if item == STRING:
                return [self.string(what) for _ in range(count)]
            return [self.value(item, what) for _ in range(count)]
        raise ValueError(f"{what}: unknown value type {kind}")


def read_gguf(path: Path) -> GGUFFile:
    """Parse ``path``'s header; raises ``ValueError`` for anything that is not a whole GGUF file."""
    from gguf.constants import GGML_QUANT_SIZES, GGMLQuantizationType

    size = Path(path).stat().st_size
    if size < HEADER_BYTES:
        raise ValueError(f"truncated: {size} bytes, less than a GGUF header ({HEADER_BYTES})")
    buf = np.memmap(path, dtype=np.uint8, mode="r")
    c = _Cursor(buf)
    if bytes(buf[c.take(4, "the magic number") : 4]) != MAGIC:
        raise ValueError("not a GGUF file (no GGUF magic number)")
    version = c.number("I", "the version")
    if version not in VERSIONS:
        raise ValueError(f"GGUF version {version} (this reader knows {', '.join(map(str, VERSIONS))})")
    n_tensors, n_fields = c.number("Q", "the tensor count"), c.number("Q", "the field count")
    if n_tensors + n_fields > c.end:
        raise ValueError(f"{n_tensors:,} tensors and {n_fields:,} fields cannot fit in {c.end:,} bytes")
    fields = {}
    for _ in range(n_fields):
        key = c.string("a field name")
        fields[key] = c.value(c.number("I", key), key)
    table = []
    for _ in range(n_tensors):
        name = c.string("a tensor name")
        n_dims = c.number("I", name)
        if not 1 <= n_dims <= MAX_DIMS:
            raise ValueError(f"tensor {name!r}: {n_dims} dimensions")
        shape = tuple(c.number("Q", name) for _ in range(n_dims))
        table.append((name, shape, c.number("I", name), c.number("Q", name)))
    alignment = int(fields.get("general.alignment", DEFAULT_ALIGNMENT))
    if alignment <= 0 or alignment & (alignment - 1):
        raise ValueError(f"alignment {alignment} is not a power of two")
    data_start = -(-c.pos // alignment) * alignment
    tensors = []
    for name, shape, kind, offset in table:
        try:
            block, type_size = GGML_QUANT_SIZES[GGMLQuantizationType(kind)]
        except (ValueError, KeyError):
            raise ValueError(f"tensor {name!r}: unknown type {kind}") from None
        if shape[0] % block:
            raise ValueError(f"tensor {name!r}: {shape[0]} columns is not a whole number of {block}-value blocks")
        row_bytes = shape[0] // block * type_size
        rows = int(np.prod(shape[1:], dtype=np.int64))
        at = _Cursor(buf, data_start + offset).take(rows * row_bytes, f"tensor {name!r}")
        tensors.append(GGUFTensor(name, shape, kind, buf[at : at + rows * row_bytes].reshape(rows, row_bytes)))
    return GGUFFile(version, fields, tensors)
