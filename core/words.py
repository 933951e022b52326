"""Counts in words: "1 game", "2,000 games". One place, so no page says "1 games"."""

from __future__ import annotations


def count(n: int, noun: str, plural: str | None = None) -> str:
    """``n`` with thousands separators and ``noun`` in the number it takes (``plural`` where
    adding an s is wrong: "1 property", "3 properties")."""
    return f"{n:,} {noun if n == 1 else plural or noun + 's'}"
