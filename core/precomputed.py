"""Corpus-wide results stored on disk, so a page's first visit reads a file instead of a corpus.

The logit lens's legality by layer, a layer's neuron index and an SAE's feature index each read
hundreds of held-out games: seconds on this CPU, paid by the first visitor of every fresh server
(a hosted demo that sleeps pays it at every wake-up). They depend only on the model's weights,
the SAE's weights, the code that computes them and their parameters (games, seed), so they are
computed once and kept:

- **shipped** in ``assets/precomputed/<model>/`` for the bundled models (``python -m
  core.precompute`` writes them), and
- **cached** in ``$BOARDLENS_CACHE/precomputed/<model>/`` (default ``~/.cache/boardlens``) for
  anything the app had to compute itself (a hub model, or a shipped file gone stale).

Each result is a JSON file (its key, the non-array fields, the sha256 of its array file) and, when
it has arrays, a safetensors file. The key is compared whole: different weights, code or
parameters make the stored copy *stale*, and it is rebuilt, never trusted. The code version is a
digest of the source files that compute the result (``SOURCES``), so editing them marks every
stored copy stale until the command is run again (a test checks the shipped ones are fresh).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import tempfile
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.numpy import load_file, save_file

from core.checksums import sha256_of

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = ROOT / "assets" / "precomputed"
FORMAT = 1

# What each kind of result is computed by; the games' rules, tokenizers and the fused forward pass feed every kind.
_COMMON = ("core/games/**/*.py", "core/interp/shared/*.py", "core/models/row_forward.py", "core/precomputed.py")
SOURCES = {
    "lens_legality": ("core/interp/lens/logit_lens.py",),
    "neurons": ("core/interp/lens/neurons.py", "core/interp/lens/logit_lens.py"),
    "sae_index": ("core/interp/sae/features.py",),
    "token_index": ("core/interp/sae/token_sae.py", "core/interp/sae/metrics.py"),
}


class StoreError(ValueError):
    """A stored result that cannot be read (named in the message)."""


def cache_root() -> Path:
    return Path(os.environ.get("BOARDLENS_CACHE") or Path.home() / ".cache" / "boardlens") / "precomputed"


@lru_cache(maxsize=None)
def code_version(kind: str) -> str:
    """Digest of the source files that compute ``kind`` (their paths and contents)."""
    digest = hashlib.sha256()
    for pattern in _COMMON + SOURCES[kind]:
        for path in sorted(ROOT.glob(pattern)):
            digest.update(path.relative_to(ROOT).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


_WEIGHTS_IDS: dict[int, tuple[Any, str]] = {}


def weights_id(module: torch.nn.Module) -> str:
    """Digest of a module's parameters and buffers (names, shapes, values): the same weights give
    the same id wherever they were loaded from. Computed once per module object."""
    known = _WEIGHTS_IDS.get(id(module))
    if known is not None and known[0] is module:
        return known[1]
    digest = hashlib.blake2b(digest_size=16)
    for name, tensor in sorted(module.state_dict().items()):
        t = tensor.detach().cpu().contiguous()
        digest.update(f"{name}:{tuple(t.shape)}:{t.dtype}".encode())
        digest.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    _WEIGHTS_IDS[id(module)] = (module, digest.hexdigest())
    return _WEIGHTS_IDS[id(module)][1]


def make_key(kind: str, model: torch.nn.Module, sae: torch.nn.Module | None = None, **params) -> dict:
    """Everything a result of ``kind`` depends on."""
    key = {"format": FORMAT, "kind": kind, "code": code_version(kind), "model": weights_id(model), "params": params}
    if sae is not None:
        key["sae"] = weights_id(sae)
    return json.loads(json.dumps(key))  # as it will read back from JSON


# -- reading and writing ---------------------------------------------------------------------------
def _paths(folder: Path, name: str) -> tuple[Path, Path]:
    return folder / f"{name}.json", folder / f"{name}.safetensors"


def write(folder: Path, name: str, key: dict, meta: dict, arrays: dict[str, np.ndarray]) -> Path:
    """Store one result atomically (the JSON last: a reader never sees a half-written result)."""
    folder.mkdir(parents=True, exist_ok=True)
    meta_path, array_path = _paths(folder, name)
    record = {"key": key, "meta": meta, "arrays": sorted(arrays), "dtypes": {k: str(v.dtype) for k, v in arrays.items()}}
    if arrays:
        with tempfile.NamedTemporaryFile(dir=folder, suffix=".tmp", delete=False) as tmp:
            pass
        save_file({k: np.ascontiguousarray(narrow(v)) for k, v in arrays.items()}, tmp.name)
        os.replace(tmp.name, array_path)
        record["sha256"] = sha256_of(array_path)
    record["digest"] = _digest(record)
    with tempfile.NamedTemporaryFile("w", dir=folder, suffix=".tmp", delete=False) as tmp:
        json.dump(record, tmp, indent=1)
    os.replace(tmp.name, meta_path)
    return meta_path


def _digest(record: dict) -> str:
    """SHA-256 of a record's content (everything but the digest itself), as canonical JSON."""
    body = {k: v for k, v in record.items() if k != "digest"}
    return hashlib.sha256(json.dumps(body, sort_keys=True, allow_nan=True).encode()).hexdigest()


def narrow(array: np.ndarray) -> np.ndarray:
    """An integer array in the smallest integer type that holds its values exactly (positions of
    ~30k indexed tokens fit 16 bits: a third of a feature index's bytes); others unchanged."""
    if array.dtype.kind not in "iu" or not array.size:
        return array
    lo, hi = int(array.min()), int(array.max())
    for dtype in (np.int8, np.uint8, np.int16, np.uint16, np.int32, np.uint32):
        info = np.iinfo(dtype)
        if info.min <= lo and hi <= info.max:
            return array.astype(dtype) if np.dtype(dtype).itemsize < array.dtype.itemsize else array
    return array


def read(folder: Path, name: str, key: dict) -> tuple[dict, dict[str, np.ndarray]] | None:
    """``(meta, arrays)`` of a stored result whose key equals ``key``; None when there is none or
    it is stale; ``StoreError`` naming the file when it is damaged."""
    meta_path, array_path = _paths(folder, name)
    if not meta_path.is_file():
        return None
    try:
        record = json.loads(meta_path.read_text())
    except (OSError, ValueError) as exc:
        raise StoreError(f"{meta_path}: not readable JSON ({exc})") from None
    if not isinstance(record, dict) or record.get("key") != key:
        return None
    if record.get("digest") != _digest(record):
        raise StoreError(f"{meta_path}: damaged or edited (its digest does not match its content)")
    arrays: dict[str, np.ndarray] = {}
    if record.get("arrays"):
        if not array_path.is_file():
            raise StoreError(f"{array_path} is missing")
        if sha256_of(array_path) != record.get("sha256"):
            raise StoreError(f"{array_path}: damaged or replaced (its sha256 differs from {meta_path.name}'s)")
        try:
            arrays = load_file(str(array_path))
        except Exception as exc:  # noqa: BLE001 - any parse failure of a damaged file
            raise StoreError(f"{array_path}: not a readable safetensors file ({exc})") from None
        if sorted(arrays) != record["arrays"]:
            raise StoreError(f"{array_path}: holds {sorted(arrays)[:4]}…, {meta_path.name} lists {record['arrays'][:4]}…")
        dtypes = record.get("dtypes") or {}
        try:
            arrays = {k: v.astype(dtypes.get(k, v.dtype), copy=False) for k, v in arrays.items()}
        except TypeError as exc:
            raise StoreError(f"{meta_path}: bad dtypes ({exc})") from None
    return record.get("meta") or {}, arrays


def lookup(model: str, name: str, key: dict) -> tuple[tuple[dict, dict[str, np.ndarray]] | None, str]:
    """The stored result from the shipped files, else from the cache: ``(result or None, where)``;
    ``where`` is "shipped", "cache", or why nothing was usable ("missing", "stale", or the error)."""
    why = "missing"
    for origin, folder in (("shipped", SHIPPED / model), ("cache", cache_root() / model)):
        try:
            found = read(folder, name, key)
        except StoreError as exc:
            why = str(exc)
            continue
        if found is not None:
            return found, origin
        if _paths(folder, name)[0].is_file() and why == "missing":
            why = "stale"
    return None, why


# -- results as (meta, arrays) ---------------------------------------------------------------------
def split_dataclass(obj) -> tuple[dict, dict[str, np.ndarray]]:
    """A dataclass of arrays and plain values as (JSON fields, arrays)."""
    meta, arrays = {}, {}
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        if isinstance(value, np.ndarray):
            arrays[f.name] = value
        else:
            meta[f.name] = value
    return meta, arrays


def join_dataclass(cls, meta: dict, arrays: dict[str, np.ndarray]):
    names = {f.name for f in dataclasses.fields(cls)}
    if set(meta) | set(arrays) != names:
        raise StoreError(f"a stored {cls.__name__} needs the fields {sorted(names)}")
    return cls(**meta, **arrays)
