"""Real concurrency for the race tests: separate processes released together by a barrier."""

from __future__ import annotations

import multiprocessing as mp
from typing import Any

# fork: each child starts with the test's imports, so a race starts in milliseconds.
CTX = mp.get_context("fork")


def run_all(target: Any, args_list: list[tuple[Any, ...]]) -> list[Any]:
    """Run ``target(*args, barrier, results)`` once per ``args`` in its own process; what each put, in arrival order.

    Every process waits at one barrier before it acts, so they contend for real.
    """
    barrier, results = CTX.Barrier(len(args_list)), CTX.Queue()
    procs = [CTX.Process(target=target, args=(*args, barrier, results)) for args in args_list]
    for p in procs:
        p.start()
    out = [results.get(timeout=60) for _ in procs]
    for p in procs:
        p.join(timeout=30)
        assert p.exitcode == 0
    return out
