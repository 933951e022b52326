"""Shared by the fuzz tests: fixed-seed settings and a count of cases per family (printed at the
end of the run, so CI shows how much was fuzzed)."""

from __future__ import annotations

from collections import Counter

from hypothesis import HealthCheck, settings

CASES: Counter = Counter()


def fuzz(max_examples: int):
    """Deterministic hypothesis settings: the same cases on every run, no time limit per case."""
    return settings(max_examples=max_examples, derandomize=True, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])


def count(family: str) -> None:
    CASES[family] += 1
