"""Shared by the benchmarks: a median timer, concurrent HTTP clients and result printing."""

from __future__ import annotations

import http.client
import json
import statistics
import threading
import time
from collections.abc import Callable
from typing import Any


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


def post_concurrently(urls: list[str], path: str, bodies: list[dict[str, Any]], clients: int) -> tuple[float, list[float]]:
    """Post ``bodies`` as JSON to ``path`` from ``clients`` keep-alive clients, client i on ``urls[i % len(urls)]``.

    All clients start together; returns requests per second over the whole run and
    each request's latency. Any answer but 200 ends the benchmark: a rate of
    refusals measures nothing.
    """
    chunks = [bodies[i::clients] for i in range(clients)]
    latencies: list[float] = []
    failures: list[str] = []
    barrier = threading.Barrier(clients + 1)

    def client(i: int, mine: list[dict[str, Any]]) -> None:
        host, port = urls[i % len(urls)].removeprefix("http://").split(":")
        conn = http.client.HTTPConnection(host, int(port), timeout=60)
        barrier.wait()
        for body in mine:
            start = time.perf_counter()
            conn.request("POST", path, json.dumps(body), {"Content-Type": "application/json"})
            response = conn.getresponse()
            payload = response.read()
            latencies.append(time.perf_counter() - start)
            if response.status != 200:
                failures.append(payload.decode()[:200])
        conn.close()

    threads = [threading.Thread(target=client, args=(i, chunk)) for i, chunk in enumerate(chunks)]
    for t in threads:
        t.start()
    barrier.wait()
    start = time.perf_counter()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - start
    if failures:
        raise SystemExit(f"{len(failures)} of {len(bodies)} posts to {path} failed, e.g. {failures[0]}")
    return len(bodies) / elapsed, latencies
