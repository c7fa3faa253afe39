"""Benchmark of the PostgreSQL ledger, every figure from one run.

1. Ledger size on PostgreSQL: two databases, of 1,000 and of BIG licenses
   (``--licenses``, env ``LICET_BENCH_PG_LICENSES``: 100,000 by default,
   1,000,000 for the full run), filled through the bulk path (``COPY``, in
   chunks; the load's time and rows/s are printed) and vacuumed as
   autovacuum would after an import. Medians, measured alternately so the
   machine's drift hits both alike, of an in-process redemption (target:
   BIG <= 1.5 x 1k), of the console's first list page and of a search by
   activation key (targets: BIG <= 3 x 1k each).
1b. ``issuer ledger copy`` of a TinyDB ledger of COPY licenses (``--copy``,
   env ``LICET_BENCH_COPY_LICENSES``, 100,000 by default) to PostgreSQL:
   rows per second.
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

import argparse
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
from clirun import cli  # noqa: E402
from pgsupport import drop_ledger, fresh_database  # noqa: E402
from servers import LicenseServer  # noqa: E402
from support import PRODUCT, FakeClock, code_for, make_issuer, request_for  # noqa: E402

CLIENTS = 16
PER_CONFIG = 640
OPS = 200


CHUNK = 50_000  # licenses per bulk insert: one COPY each, memory stays bounded


def ready_ledger(url: str, folder: Path, size: int):  # type: ignore[no-untyped-def]
    """A PostgreSQL ledger of ``size`` licenses, OPS of them fresh; returns the issuer and their keys."""
    import psycopg

    iss = make_issuer(folder, FakeClock(), ledger=url)
    start = time.perf_counter()
    left = size - OPS
    while left > 0:
        iss.create_licenses(min(CHUNK, left), PRODUCT)
        left -= CHUNK
    loaded = time.perf_counter() - start
    fresh = [iss.create_license(PRODUCT).activation_key for _ in range(OPS)]
    start = time.perf_counter()
    with psycopg.connect(url, autocommit=True) as conn:  # what autovacuum does after an import
        conn.execute("VACUUM ANALYZE licet.licenses, licet.license_keys")
    print(f"  loaded {size - OPS:,} licenses into PostgreSQL in {loaded:.1f} s "
          f"({(size - OPS) / loaded:,.0f} licenses/s, bulk path: COPY in chunks of {CHUNK:,}), "
          f"then {OPS} one by one; vacuumed in {time.perf_counter() - start:.1f} s")
    return iss, fresh


def alternating(small_calls: list, big_calls: list) -> tuple[float, float]:  # type: ignore[type-arg]
    """Median seconds of the small and the big ledger's calls, made in turn."""
    times: dict[int, list[float]] = {0: [], 1: []}
    for pair in zip(small_calls, big_calls, strict=True):
        for which, call in enumerate(pair):
            t = time.perf_counter()
            call()
            times[which].append(time.perf_counter() - t)
    return statistics.median(times[0]), statistics.median(times[1])


def size_figures(small_url: str, big_url: str, folder: Path, big_size: int) -> dict[str, tuple[float, float]]:
    """Medians at 1,000 and at ``big_size`` licenses: redemption, list page, search by key."""
    small, small_keys = ready_ledger(small_url, folder / "small", 1_000)
    big, big_keys = ready_ledger(big_url, folder / "big", big_size)
    figures = {}

    def redeem(iss, key: str, i: int):  # type: ignore[no-untyped-def]
        return lambda: iss.redeem(request_for(key, f"server-{i}"), method="air-gapped")

    def search(iss, key: str):  # type: ignore[no-untyped-def]
        return lambda: iss.search(text=key, limit=50)

    def page(iss):  # type: ignore[no-untyped-def]
        return lambda: iss.search(limit=50)

    # A search that scans the whole ledger takes long at 1M: fewer samples there.
    samples = 3 if big_size > 100_000 else 20
    figures["search by activation key"] = alternating([search(small, k) for k in small_keys[:samples]],
                                                      [search(big, k) for k in big_keys[:samples]])
    figures["console list page"] = alternating([page(small)] * 20, [page(big)] * 20)
    figures["redemption"] = alternating([redeem(small, k, i) for i, k in enumerate(small_keys)],
                                        [redeem(big, k, i) for i, k in enumerate(big_keys)])
    found = bool(small.search(text=small_keys[0]).items) and bool(big.search(text=big_keys[0]).items)
    print(f"  a search by activation key {'finds its license' if found else 'finds NO license'} "
          "(the console's search box, issuer.Issuer.search(text=key))")
    small.ledger.close()
    big.ledger.close()
    return figures


def copy_rate(url: str, folder: Path, size: int) -> float:
    """Rows/s of `issuer ledger copy` from a TinyDB ledger of ``size`` licenses to PostgreSQL."""
    home = folder / "copy"
    iss = make_issuer(home, FakeClock())
    start = time.perf_counter()
    left = size
    while left > 0:
        iss.create_licenses(min(CHUNK, left), PRODUCT)
        left -= CHUNK
    print(f"  built a TinyDB ledger of {size:,} licenses in {time.perf_counter() - start:.1f} s")
    start = time.perf_counter()
    cli("issuer", "ledger", "copy", "--from", str(home / "ledger"), "--to", url, cwd=home)
    took = time.perf_counter() - start
    print(f"  issuer ledger copy TinyDB -> PostgreSQL: {size:,} licenses in {took:.1f} s, "
          f"{size / took:,.0f} licenses/s (read, written, read back and checked)")
    return size / took


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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="the PostgreSQL ledger: size, copy, nodes")
    parser.add_argument("--licenses", type=int, default=int(os.environ.get("LICET_BENCH_PG_LICENSES", 100_000)),
                        help="licenses in the big ledger (default 100,000; 1,000,000 for the full run)")
    parser.add_argument("--copy", type=int, default=int(os.environ.get("LICET_BENCH_COPY_LICENSES", 100_000)),
                        help="licenses copied TinyDB -> PostgreSQL (default 100,000)")
    parser.add_argument("--no-nodes", action="store_true", help="skip the activations/s of one and two nodes")
    args = parser.parse_args(argv)
    big_size = args.licenses
    print("bench/postgres.py — the PostgreSQL ledger: size, copy, nodes, and against TinyDB")
    ok = True
    with fresh_database() as url, fresh_database() as big_url, tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        figures = size_figures(url, big_url, root, big_size)
        targets = {"redemption": 1.5, "console list page": 3.0, "search by activation key": 3.0}
        for name, (small, big) in figures.items():
            print(f"  {name}: median {small * 1e3:.2f} ms at 1,000 licenses, {big * 1e3:.2f} ms at {big_size:,}")
            ratio = big / small
            ok &= report(f"PostgreSQL {name} median {big_size:,} / 1,000 (ratio)", ratio,
                         f"<= {targets[name]:g}", ratio <= targets[name])
        drop_ledger(big_url)
        copy_rate(big_url, root, args.copy)

        if not args.no_nodes:
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
