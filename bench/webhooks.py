"""Benchmark of webhooks.

1. Latency from a committed change (a new license) to the receiver's 2xx,
   with a background deliverer running: median <= 1 s.
2. Throughput of 1,000 queued events to a local receiver against the
   receiver's own request rate measured in the same run (the same requests
   from a plain client on one kept-alive connection, as the deliverer
   sends a batch): ratio >= 0.5.
3. Activations per second with 3 endpoints configured against none, an
   ``issuer webhook deliver`` process (as shipped) and a receiver process
   running in both: ratio >= 0.9 (the outbox must not slow activations
   down). Runs go in pairs, one of each, in alternating order; the figure
   is the median of the pairs' ratios, so a slower minute of a shared
   machine falls on both sides of a pair instead of on one side of the
   figure. This machine's speed swings by a third from one minute to the
   next, and a pair's ratio with it: 9 pairs, not 5.
"""

from __future__ import annotations

import http.client
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from _common import report
from support import PRODUCT, FakeClock, make_issuer, request_for
from webhook_receiver import Receiver

from issuer.ledger import open_ledger
from issuer.licensing.deliverer import BackgroundDeliverer, Deliverer
from verifier.clock import utc_now

EVENTS = 1_000
LATENCY_SAMPLES = 30
ACTIVATIONS = 300
PAIRS = 9


def latency(folder: Path) -> float:
    receiver = Receiver()
    iss = make_issuer(folder, FakeClock(utc_now()))
    _, secret = iss.webhooks.add(receiver.url, allow_private=True)
    receiver.secrets.append(secret)
    background = BackgroundDeliverer(lambda: open_ledger(folder / "ledger"))
    background.start()
    samples = []
    try:
        for i in range(LATENCY_SAMPLES):
            iss._clock.now = utc_now()
            iss.create_license(product=PRODUCT, days=30)
            committed = time.perf_counter()
            receiver.wait_for(i + 1)
            samples.append(receiver.times[i] - committed)
    finally:
        background.stop()
        receiver.close()
    return statistics.median(samples)


def throughput(folder: Path) -> tuple[float, float]:
    receiver = Receiver()
    clock = FakeClock(utc_now())
    iss = make_issuer(folder, clock)
    endpoint, secret = iss.webhooks.add(receiver.url, allow_private=True)
    receiver.secrets.append(secret)
    for _ in range(EVENTS):
        iss.webhooks.test(endpoint.endpoint_id)
    clock.now = utc_now()
    start = time.perf_counter()
    Deliverer(iss.ledger, clock=clock).run_once()
    delivered = len(receiver.got) / (time.perf_counter() - start)
    assert len(receiver.got) == EVENTS, len(receiver.got)
    # The receiver's own rate: the same signed requests from a plain client on one connection.
    (d,) = iss.webhooks.deliveries(endpoint.endpoint_id, limit=1)
    body = d.payload()
    headers = {
        k: v for k, v in receiver.headers[-1].items() if k.startswith(("webhook-", "content-type"))
    }
    host, port = receiver.url.removeprefix("http://").split("/")[0].split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    start = time.perf_counter()
    for _ in range(EVENTS):
        conn.request("POST", "/hooks", body=body, headers=headers)
        conn.getresponse().read()
    own = EVENTS / (time.perf_counter() - start)
    conn.close()
    receiver.close()
    return delivered, own


def activations(endpoints: int) -> float:
    """Activations per second in a fresh setup with ``endpoints`` endpoints."""
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        iss = make_issuer(folder, FakeClock(utc_now()))
        receiver = subprocess.Popen(
            [sys.executable, str(Path(__file__).resolve().parent.parent / "tests" / "webhook_receiver.py")],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert receiver.stdout is not None
        url = receiver.stdout.readline().strip()
        for _ in range(endpoints):
            iss.webhooks.add(url, allow_private=True)
        command = ["issuer", "webhook", "deliver", "--ledger", str(folder / "ledger")]
        deliverer = subprocess.Popen([*command, "--keys", str(folder / "keys")], stdout=subprocess.DEVNULL)
        try:
            ids = iss.create_licenses(ACTIVATIONS, PRODUCT, days=30)
            keys = [iss.show(i).activation_key for i in ids]
            requests = [request_for(k, f"server-{n}") for n, k in enumerate(keys)]
            start = time.perf_counter()
            for r in requests:
                iss.redeem(r, method="online")
            return ACTIVATIONS / (time.perf_counter() - start)
        finally:
            for proc in (deliverer, receiver):
                proc.terminate()
                proc.wait()


def main() -> int:
    print("bench/webhooks.py — webhook delivery (folder ledger)")
    with tempfile.TemporaryDirectory() as folder:
        median = latency(Path(folder))
    ok = report("commit -> receiver 2xx, median (s)", median, "<= 1", median <= 1)
    with tempfile.TemporaryDirectory() as folder:
        delivered, own = throughput(Path(folder))
    print(
        f"  {EVENTS:,} queued events: delivered {delivered:,.0f}/s; the receiver alone takes {own:,.0f}/s"
    )
    ok &= report(
        "delivery rate / receiver's own rate (ratio)",
        delivered / own,
        ">= 0.5",
        delivered / own >= 0.5,
    )
    # Pairs alternate their order, so that neither side always runs first.
    pairs: list[tuple[float, float]] = []
    for n in range(PAIRS):
        rates = {count: activations(count) for count in ((0, 3) if n % 2 == 0 else (3, 0))}
        pairs.append((rates[0], rates[3]))
    for none, three in pairs:
        print(f"  activations: {none:,.0f}/s with no endpoint, {three:,.0f}/s with 3")
    ratio = statistics.median(three / none for none, three in pairs)
    ok &= report(
        f"activations with 3 endpoints / none (median of {PAIRS} pairs)",
        ratio,
        ">= 0.9",
        ratio >= 0.9,
    )
    print(
        json.dumps(
            {
                "latency_median_s": median,
                "delivery_ratio": delivered / own,
                "activation_ratio": ratio,
            }
        )
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
