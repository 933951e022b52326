"""Give freed memory back to the operating system after heavy work.

glibc's allocator keeps memory freed by large numpy and torch temporaries (a corpus-wide lens, an
SAE index) inside the process for reuse, so a server's resident size only ever grows: measured
here, reading the lens over 500 games left ~170 MB resident that ``malloc_trim`` returns at once.
A hosted demo has a few hundred MB to spare, so pages call this after each run. Elsewhere than
glibc it does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
from functools import lru_cache


@lru_cache(maxsize=1)
def _trim():
    name = ctypes.util.find_library("c")
    try:
        return ctypes.CDLL(name).malloc_trim if name else None
    except (OSError, AttributeError):  # not glibc (musl, macOS): nothing to trim
        return None


def release_free_memory() -> bool:
    """Return the allocator's free memory to the OS; True where that is possible (glibc)."""
    trim = _trim()
    if trim is None:
        return False
    trim(0)
    return True


_frozen_after: set[str] = set()


def freeze_long_lived(tag: str) -> bool:
    """Move every object alive now out of the garbage collector's reach (``gc.freeze``), once per
    ``tag`` (a page: each imports its own libraries on first use).

    A server process holds ~600k objects that live as long as it does (torch, TransformerLens,
    transformers, plotly: their functions, classes and modules, and the cached models). The
    collector's full passes walk all of them, and as the caches grew they took 13 ms, then 300 ms
    each, landing on a random page run. Frozen, they are skipped; objects made later are collected
    as usual (frozen ones are still freed when their reference count drops to zero). A first
    ``gc.collect`` keeps this run's garbage out of the frozen set.
    """
    if tag in _frozen_after:
        return False
    _frozen_after.add(tag)
    gc.collect()
    gc.freeze()
    return True
