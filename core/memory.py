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
