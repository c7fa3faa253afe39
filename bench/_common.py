"""Shared by the benchmarks: a median timer and result printing."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable


def per_call(fn: Callable[[], object], calls: int, rounds: int = 7) -> float:
    """Median over ``rounds`` of the mean seconds per call of ``fn``."""
    samples = []
    for _ in range(rounds):
        start = time.perf_counter()
        for _ in range(calls):
            fn()
        samples.append((time.perf_counter() - start) / calls)
    return statistics.median(samples)


def report(name: str, value: float, target: str, ok: bool) -> bool:
    print(f"  {name:<58} {value:>10.3f}   target {target:<10} {'OK' if ok else 'MISSED'}")
    return ok
