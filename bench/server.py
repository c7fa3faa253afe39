"""Benchmark of the license server, every figure from one run.

16 concurrent clients on loopback post manual online activations of distinct
licenses to a real `issuer serve` with one worker and with two; printed are
activations per second and p50/p99 latency. In the same run, the in-process
redemption rate of the same ledger without HTTP is measured. Target: online
throughput >= 0.5 x the in-process rate.
"""

from __future__ import annotations

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
from servers import LicenseServer  # noqa: E402
from support import PRODUCT, FakeClock, code_for, make_issuer, request_for  # noqa: E402

CLIENTS = 16
PER_CONFIG = 480
IN_PROCESS = 240


def keys_for(iss, count: int) -> list[str]:  # type: ignore[no-untyped-def]
    return [iss.show(license_id).activation_key for license_id in iss.create_licenses(count, PRODUCT)]


def online(url: str, codes: list[str]) -> tuple[float, list[float]]:
    return post_concurrently([url], "/v1/activations", [{"request_code": code} for code in codes], CLIENTS)


def in_process_rate(iss, count: int, tag: str) -> float:  # type: ignore[no-untyped-def]
    requests = [request_for(key, f"{tag}-{i}") for i, key in enumerate(keys_for(iss, count))]
    start = time.perf_counter()
    for request in requests:
        iss.redeem(request, method="online")
    return count / (time.perf_counter() - start)


def main() -> int:
    print("bench/server.py — online activation throughput")
    ok = True
    with tempfile.TemporaryDirectory() as folder:
        home = Path(folder)
        iss = make_issuer(home, FakeClock())
        # The disk's fsync speed drifts, so the in-process rate (same ledger, same
        # redemption, no HTTP) is measured before and after each online run and
        # each online run is compared with the mean of the two around it.
        before = in_process_rate(iss, IN_PROCESS, "inproc-0")
        for workers in (1, 2):
            codes = [code_for(key, f"w{workers}-{i}") for i, key in enumerate(keys_for(iss, PER_CONFIG))]
            server = LicenseServer(home, "--workers", str(workers))
            try:
                online(server.url, [code_for(k, f"warm{workers}-{i}") for i, k in enumerate(keys_for(iss, CLIENTS))])
                rate, latencies = online(server.url, codes)
            finally:
                server.stop()
            after = in_process_rate(iss, IN_PROCESS, f"inproc-{workers}")
            baseline = (before + after) / 2
            cuts = statistics.quantiles(latencies, n=100)
            print(f"  in-process redemption around this run: {before:.0f} and {after:.0f} activations/s")
            print(f"  {workers} worker(s): {rate:.0f} activations/s, p50 {cuts[49] * 1e3:.1f} ms, p99 {cuts[98] * 1e3:.1f} ms"
                  f" ({PER_CONFIG} activations, {CLIENTS} clients)")
            ok &= report(f"online ({workers} worker(s)) / in-process rate", rate / baseline, ">= 0.5", rate / baseline >= 0.5)
            before = after
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
