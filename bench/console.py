"""Benchmark of the provider console and the admin API.

1. The license list page (first page, and a page deep in the list) with
   100,000 licenses in the ledger against the same pages with 1,000: the
   list reads index pages, never every license, so the ratio stays near 1.
2. Creating a license through the admin API of a real ``issuer console``
   (HTTP on 127.0.0.1, keep-alive) against ``Issuer.create_license`` in
   process, on the same ledger: throughput ratio.
"""

from __future__ import annotations

import http.client
import json
import re
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "integration"))

import warnings

warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient` is deprecated")

from _common import report  # noqa: E402
from fastapi.testclient import TestClient  # noqa: E402
from servers import free_port  # noqa: E402
from support import PRODUCT, FakeClock, make_issuer  # noqa: E402

from issuer.web.console_app import ConsoleConfig, create_console_app  # noqa: E402

PASSWORD = "correct horse battery staple"
ROUNDS = 40


def list_page_times(size: int, folder: Path) -> tuple[float, float, float, float]:
    clock = FakeClock()
    iss = make_issuer(folder, clock)
    start = time.perf_counter()
    ids = iss.create_licenses(size, PRODUCT)
    print(f"  built a ledger of {size:,} licenses in {time.perf_counter() - start:.1f} s (bulk path)")
    iss.add_user("bench", PASSWORD)
    config = ConsoleConfig(ledger=str(folder / "ledger"), keys=str(folder / "keys"))
    client = TestClient(create_console_app(config, clock=clock, issuer=iss), follow_redirects=False)
    page = client.get("/login")
    csrf = re.search(r'name="csrf" value="([0-9a-f]+)"', page.text).group(1)  # type: ignore[union-attr]
    assert client.post("/login", data={"csrf": csrf, "user": "bench", "password": PASSWORD}).status_code == 303
    deep = f"/licenses?cursor={size // 2}"  # a page in the middle of the list

    def timed(url: str, rows: int = 50, rounds: int = ROUNDS) -> float:
        samples = []
        for _ in range(rounds):
            t = time.perf_counter()
            response = client.get(url)
            samples.append(time.perf_counter() - t)
            assert response.status_code == 200 and response.text.count('class="license-link"') == rows
        return statistics.median(samples)

    timed("/licenses")  # warm-up: templates compiled, files cached
    by_id = timed(f"/licenses?q={ids[size // 3]}", rows=1)
    by_text = timed("/licenses?q=no+such+customer", rows=0, rounds=3)  # reads every index page
    return timed("/licenses"), timed(deep), by_id, by_text


def api_create_ratio(folder: Path) -> tuple[float, float]:
    iss = make_issuer(folder, FakeClock())
    _, token = iss.create_token("bench", "write")
    port = free_port()
    proc = subprocess.Popen(
        [str(Path(sys.executable).parent / "issuer"), "console", "--port", str(port),
         "--ledger", str(folder / "ledger"), "--keys", str(folder / "keys")],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/openapi.json", timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        body = json.dumps({"product": PRODUCT, "days": 365, "features": ["dns"]})
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}

        def over_api() -> None:
            conn.request("POST", "/v1/admin/licenses", body=body, headers=headers)
            response = conn.getresponse()
            response.read()
            assert response.status == 201

        def in_process() -> None:
            iss.create_license(PRODUCT, days=365, features=["dns"])

        over_api()
        in_process()
        api_times, local_times = [], []
        for _ in range(ROUNDS):  # interleaved, so both see the same disk and load
            t = time.perf_counter()
            over_api()
            api_times.append(time.perf_counter() - t)
            t = time.perf_counter()
            in_process()
            local_times.append(time.perf_counter() - t)
        conn.close()
        return statistics.median(api_times), statistics.median(local_times)
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def main() -> int:
    print("bench/console.py — provider console and admin API")
    pages = {}
    for size in (1_000, 100_000):
        with tempfile.TemporaryDirectory() as folder:
            pages[size] = list_page_times(size, Path(folder))
        first, deep, by_id, by_text = pages[size]
        print(f"  {size:>7,} licenses: list page median {first * 1e3:.2f} ms, a page mid-list {deep * 1e3:.2f} ms, "
              f"search by whole id {by_id * 1e3:.2f} ms, text search with no match {by_text * 1e3:.1f} ms")
    first_ratio = pages[100_000][0] / pages[1_000][0]
    deep_ratio = pages[100_000][1] / pages[1_000][1]
    ok = report("list page 100k / 1k (ratio)", first_ratio, "<= 3", first_ratio <= 3)
    ok &= report("mid-list page 100k / 1k (ratio)", deep_ratio, "<= 3", deep_ratio <= 3)
    id_ratio = pages[100_000][2] / pages[1_000][2]
    ok &= report("search by whole license id 100k / 1k (ratio)", id_ratio, "<= 3", id_ratio <= 3)
    text_ratio = pages[100_000][3] / pages[1_000][3]
    report("text search, no match: reads every index page (ratio, no target)", text_ratio, "-", True)
    with tempfile.TemporaryDirectory() as folder:
        api_time, local_time = api_create_ratio(Path(folder))
    print(f"  create license: admin API median {api_time * 1e3:.2f} ms, in-process median {local_time * 1e3:.2f} ms")
    throughput = local_time / api_time
    ok &= report("admin API create / in-process create (throughput)", throughput, ">= 0.5", throughput >= 0.5)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
