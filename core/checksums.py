"""SHA-256 of the files BoardLens writes, recorded in their JSON and checked when they are read.

Safetensors and JSON never run code, but a flipped bit in a weight file still loads: a model that
plays worse for no visible reason. Every weight file and checkpoint BoardLens writes has its hash
beside it (in the bundle's ``config.json``, a probe's ``.json``, an SAE's ``card.json``, a run's
``checkpoint.json``); a file whose hash differs is refused with the file's name.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

CHUNK = 1 << 20


def sha256_of(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def mismatch(path: str | Path, expected: object, where: str) -> str | None:
    """Why ``path`` does not match the hash ``where`` records (None when it matches, or when no
    hash was recorded: files written before hashes were kept still load)."""
    if expected is None:
        return None
    if not isinstance(expected, str) or len(expected) != 64:
        return f"{path}: {where} records no valid sha256 for it ({str(expected)[:80]!r})"
    actual = sha256_of(path)
    if actual != expected.lower():
        return f"{path}: damaged or replaced file (sha256 {actual[:12]}…, {where} says {expected[:12]}…)"
    return None
