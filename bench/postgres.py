"""Benchmark of the PostgreSQL ledger, every figure from one run.

1. Redemption cost against ledger size on PostgreSQL: median in-process
   redemption at 1,000 and at 100,000 licenses, two databases filled through
   the bulk path and vacuumed (as autovacuum would after an import), the
   redemptions alternating between them so the machine's drift hits both
   alike. Target: 100k <= 1.5 x 1k.
2. Online activations/s with the same total client load (16 clients on
   loopback, distinct licenses): one `issuer serve` node on TinyDB, one node
   on PostgreSQL, and two nodes on the same PostgreSQL database with the
   clients split across them. Targets: two nodes >= 1.6 x one node on
   PostgreSQL; one PostgreSQL node >= 0.5 x one TinyDB node. The share of
   the machine's CPU left idle during each run is printed beside it: a
   second node can only add throughput if there is CPU for it.

Needs a PostgreSQL server at LICET_TEST_POSTGRES_URL (default: the local one);
it creates a database of its own and drops it at the end.
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "tests" / "integration"))

from _common import post_concurrently, report  # noqa: E402
from pgsupport import drop_ledger, fresh_database  # noqa: E402
from servers import LicenseServer  # noqa: E402
from support import PRODUCT, FakeClock, code_for, make_issuer, request_for  # noqa: E402

CLIENTS = 16
PER_CONFIG = 640
OPS = 200


def ready_ledger(url: str, folder: Path, size: int):  # type: ignore[no-untyped-def]
    """A PostgreSQL ledger of ``size`` licenses, OPS of them fresh; returns the issuer and their requests."""
    import psycopg

    iss = make_issuer(folder, FakeClock(), ledger=url)
    start = time.perf_counter()
    iss.create_licenses(size - OPS, PRODUCT)
    fresh = [iss.create_license(PRODUCT).activation_key for _ in range(OPS)]
    with psycopg.connect(url, autocommit=True) as conn:  # what autovacuum does after an import
        conn.execute("VACUUM ANALYZE licet.licenses, licet.license_keys")
    print(f"  built a PostgreSQL ledger of {size:,} licenses in {time.perf_counter() - start:.1f} s (bulk path)")
    return iss, [request_for(key, f"server-{i}") for i, key in enumerate(fresh)]


def redeem_medians(small_url: str, big_url: str, folder: Path) -> tuple[float, float]:
    """Median redemption at 1,000 and 100,000 licenses, measured alternately (the machine drifts)."""
    small, small_requests = ready_ledger(small_url, folder / "small", 1_000)
    big, big_requests = ready_ledger(big_url, folder / "big", 100_000)
    times: dict[int, list[float]] = {0: [], 1: []}
    for pair in zip(small_requests, big_requests, strict=True):
        for which, iss, request in ((0, small, pair[0]), (1, big, pair[1])):
            t = time.perf_counter()
            assert iss.redeem(request, method="air-gapped").new
            times[which].append(time.perf_counter() - t)
    small.ledger.close()
    big.ledger.close()
    return statistics.median(times[0]), statistics.median(times[1])


def cpu_ticks() -> tuple[int, int]:
    """(busy, total) jiffies of the whole machine, from /proc/stat."""
    fields = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    return sum(fields) - idle, sum(fields)


IDLE: dict[str, float] = {}


def online(urls: list[str], codes: list[str]) -> float:
    """Activations/s of CLIENTS clients, client i posting to node i % len(urls)."""
    busy0, total0 = cpu_ticks()
    rate, _ = post_concurrently(urls, "/v1/activations", [{"request_code": code} for code in codes], CLIENTS)
    busy1, total1 = cpu_ticks()
    IDLE[",".join(urls)] = 1 - (busy1 - busy0) / max(1, total1 - total0)
    return rate


def rate_on(home: Path, iss, ledger: str, nodes: int, tag: str) -> float:  # type: ignore[no-untyped-def]
    keys = [iss.show(i).activation_key for i in iss.create_licenses(PER_CONFIG + CLIENTS, PRODUCT)]
    servers = [LicenseServer(home, "--ledger", ledger) for _ in range(nodes)]
    try:
        urls = [s.url for s in servers]
        online(urls, [code_for(k, f"{tag}-warm-{i}") for i, k in enumerate(keys[:CLIENTS])])
        rate = online(urls, [code_for(k, f"{tag}-{i}") for i, k in enumerate(keys[CLIENTS:])])
        print(f"  {tag}: {rate:.0f} activations/s; the machine's {os.cpu_count()} cores were "
              f"{IDLE[','.join(urls)]:.0%} idle meanwhile")
        return rate
    finally:
        for s in servers:
            s.stop()


def main() -> int:
    print("bench/postgres.py — the PostgreSQL ledger: size, nodes, and against TinyDB")
    ok = True
    with fresh_database() as url, fresh_database() as big_url, tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        small, big = redeem_medians(url, big_url, root)
        print(f"    1,000 licenses: redemption median {small * 1e3:.2f} ms")
        print(f"  100,000 licenses: redemption median {big * 1e3:.2f} ms  ({OPS} of each, alternating)")
        ratio = big / small
        ok &= report("PostgreSQL redemption median 100k / 1k (ratio)", ratio, "<= 1.5", ratio <= 1.5)

        drop_ledger(url)
        pg_home = root / "pg"
        pg_iss = make_issuer(pg_home, FakeClock(), ledger=url)
        tiny_home = root / "tiny"
        tiny_iss = make_issuer(tiny_home, FakeClock())
        tiny = rate_on(tiny_home, tiny_iss, "ledger", 1, "tiny")
        one = rate_on(pg_home, pg_iss, url, 1, "pg1")
        two = rate_on(pg_home, pg_iss, url, 2, "pg2")
        print(f"  activations/s ({CLIENTS} clients, {PER_CONFIG} activations each): TinyDB 1 node {tiny:.0f}, "
              f"PostgreSQL 1 node {one:.0f}, PostgreSQL 2 nodes {two:.0f}")
        ok &= report("PostgreSQL 2 nodes / 1 node (activations/s)", two / one, ">= 1.6", two / one >= 1.6)
        ok &= report("PostgreSQL 1 node / TinyDB 1 node (activations/s)", one / tiny, ">= 0.5", one / tiny >= 0.5)
        pg_iss.ledger.close()
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
