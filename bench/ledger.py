"""Benchmark of the ledger: redemption cost must not grow with the ledger.

Median in-process cost of one redemption — first activation of a fresh
license, durable write and token signing included — at 1,000 and at 100,000
licenses, and of ``license create`` at both sizes. The 100k ledger is filled
through the bulk path; every measured operation is the real one.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from _common import report
from support import PRODUCT, FakeClock, make_issuer, request_for

OPS = 60


def measure(size: int, folder: Path) -> tuple[float, float]:
    iss = make_issuer(folder, FakeClock())
    start = time.perf_counter()
    iss.create_licenses(size - OPS, PRODUCT)
    print(f"  built a ledger of {size:,} licenses in {time.perf_counter() - start:.1f} s (bulk path)")
    create_times, fresh = [], []
    for _ in range(OPS):
        t = time.perf_counter()
        fresh.append(iss.create_license(PRODUCT).activation_key)
        create_times.append(time.perf_counter() - t)
    requests = [request_for(key, f"server-{i}") for i, key in enumerate(fresh)]
    redeem_times = []
    for request in requests:
        t = time.perf_counter()
        result = iss.redeem(request, method="air-gapped")
        redeem_times.append(time.perf_counter() - t)
        assert result.new
    return statistics.median(redeem_times), statistics.median(create_times)


def main() -> int:
    print("bench/ledger.py — redemption cost against ledger size")
    results = {}
    for size in (1_000, 100_000):
        with tempfile.TemporaryDirectory() as folder:
            results[size] = measure(size, Path(folder))
        redeem, create = results[size]
        print(f"  {size:>7,} licenses: redemption median {redeem * 1e3:.2f} ms, license create median {create * 1e3:.2f} ms")
    ratio = results[100_000][0] / results[1_000][0]
    ok = report("redemption median 100k / 1k (ratio)", ratio, "<= 3", ratio <= 3)
    report("license create median 100k / 1k (ratio, no target)", results[100_000][1] / results[1_000][1], "-", True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
