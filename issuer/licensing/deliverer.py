"""The webhook deliverer: sends queued deliveries, signed, in order, at least once.

One pass (:meth:`Deliverer.run_once`) takes each endpoint in turn — held
by :meth:`~issuer.ledger.webhook_api.WebhookStorage.claim`, so two
deliverers never send for one endpoint at once — and sends its due
deliveries in order: a failure holds the later ones back until it is
retried (5 s, 30 s, 2 min, 10 min, 1 h, 6 h, then every 12 h, ±20 %
jitter); after 3 days the delivery is ``failed`` and the endpoint
``paused``. A redelivery (``manual``) goes at once, outside the order.

Requests go out through a :class:`~issuer.licensing.sender.Sender`
(signed, to checked addresses, no redirects, 10 s timeout); one batch for
one endpoint shares one kept-alive connection.

:class:`BackgroundDeliverer` runs passes in a thread of its own with a
small fixed pool of senders, on a ledger of its own (its own database
connections): ``issuer serve`` and ``issuer console`` keep serving
whatever the receivers do.

Example:
    >>> Deliverer(ledger).run_once()  # doctest: +SKIP
"""

from __future__ import annotations

import concurrent.futures
import datetime as _dt
import random
import threading
import time
from collections.abc import Callable
from dataclasses import replace

from issuer.ledger.api import LedgerBackend, SendClaim
from issuer.licensing.outbox import WAKE
from issuer.licensing.sender import TIMEOUT, Sender
from issuer.policy import webhooks as rules
from issuer.webhook_records import Attempt, Delivery, DeliveryStatus, Endpoint
from verifier.clock import Clock, now_from, utc_now

__all__ = ["BackgroundDeliverer", "Deliverer"]

# A batch is recorded in one write when it ends, after at most BATCH deliveries or
# BATCH_SECONDS: what a crash before that write sends again is bounded by time, and a
# long queue is not rewritten every hundred deliveries (a folder ledger's queue is one
# file per endpoint: with 1,000 queued, batches of 100 sent 20-25 % slower than 500).
BATCH = 500
BATCH_SECONDS = 2.0
POLL_SECONDS = 0.5


class Deliverer:
    """Sends what is due, endpoint by endpoint.

    Args:
        ledger: the ledger whose queue it serves.
        clock: time source (attempt times, due times, the 3-day window).
        rng: the jitter's random source.
        timeout: seconds per request.
    """

    def __init__(
        self,
        ledger: LedgerBackend,
        *,
        clock: Clock = utc_now,
        rng: random.Random | None = None,
        timeout: float = TIMEOUT,
    ) -> None:
        self.ledger = ledger
        self._clock = clock
        self._rng = rng or random.Random()  # noqa: S311 - jitter, not a secret
        self._timeout = timeout

    def run_once(self) -> int:
        """One pass over what is due, honouring next-attempt times; the attempts made."""
        made = 0
        for endpoint in self.ledger.webhooks().endpoints():
            made += self.serve(endpoint.endpoint_id)
        return made

    def serve(self, endpoint_id: str) -> int:
        """Send an endpoint's due deliveries until none is due (or one fails); the attempts made."""
        made = 0
        while True:
            tried, more = self._batch(endpoint_id)
            made += tried
            if not more:
                return made

    def _batch(self, endpoint_id: str) -> tuple[int, bool]:
        with self.ledger.webhooks().claim(endpoint_id) as claim:
            if claim is None:
                return 0, False
            return self._send_batch(claim)

    def _send_batch(self, claim: SendClaim) -> tuple[int, bool]:
        endpoint = claim.endpoint()
        if endpoint is None:
            return 0, False
        pending = claim.pending(BATCH)
        with Sender(self._timeout) as post:  # one kept-alive connection for the batch
            done, state, more = self._send_due(post, endpoint, pending)
        claim.record(done, state=state)
        return len(done), more

    def _send_due(
        self, post: Sender, endpoint: Endpoint, pending: list[Delivery]
    ) -> tuple[list[Delivery], str | None, bool]:
        """Send what is due; the deliveries after, the endpoint's new state, and whether more."""
        started = time.monotonic()
        done: list[Delivery] = []
        state = None
        for d in pending:
            if d.manual:
                done.append(self._manual(post, endpoint, d))
        more = len(pending) == BATCH
        if endpoint.state != Endpoint.ACTIVE:
            return done, state, False
        for d in (d for d in pending if not d.manual):
            now = now_from(self._clock)
            if d.next_attempt_at is not None and d.next_attempt_at > now:
                return done, state, False  # held back: nothing after it goes before it
            after = self._attempt(post, endpoint, d, now)
            done.append(after)
            if after.status == DeliveryStatus.FAILED:
                state = Endpoint.PAUSED
            if after.status != DeliveryStatus.DELIVERED:
                return done, state, False  # a failure holds the later ones back
            if time.monotonic() - started > BATCH_SECONDS:
                return done, state, True
        return done, state, more and bool(done)

    def _attempt(
        self, post: Sender, endpoint: Endpoint, d: Delivery, now: _dt.datetime
    ) -> Delivery:
        """Send ``d`` in its order: delivered, due again later, or failed for good."""
        sent = post(endpoint, d, now)
        attempts = (*d.attempts, Attempt(now, sent.http_status, sent.error))
        if sent.ok:
            return replace(
                d, status=DeliveryStatus.DELIVERED, attempts=attempts, next_attempt_at=None
            )
        failures = sum(1 for a in attempts if a.at >= d.window_start)
        due = rules.next_attempt(failures, now=now, window_start=d.window_start, rng=self._rng)
        if due is None:
            return replace(d, status=DeliveryStatus.FAILED, attempts=attempts, next_attempt_at=None)
        return replace(d, attempts=attempts, next_attempt_at=due)

    def _manual(self, post: Sender, endpoint: Endpoint, d: Delivery) -> Delivery:
        now = now_from(self._clock)
        sent = post(endpoint, d, now)
        attempts = (*d.attempts, Attempt(now, sent.http_status, sent.error))
        status = DeliveryStatus.DELIVERED if sent.ok else DeliveryStatus.FAILED
        return replace(d, status=status, attempts=attempts, next_attempt_at=None, manual=False)


class BackgroundDeliverer:
    """A deliverer in a thread of its own, with a small fixed pool of senders.

    It looks every :data:`POLL_SECONDS` (at once when this process queues a
    delivery) and serves at most ``workers`` endpoints at a time; a slow
    receiver occupies one sender, never a request handler.

    Args:
        open_ledger: opens the ledger it uses (a ledger of its own).
        clock: time source.
        workers: endpoints served at once.
    """

    def __init__(
        self,
        open_ledger: Callable[[], LedgerBackend],
        *,
        clock: Clock = utc_now,
        workers: int = 4,
    ) -> None:
        self._open = open_ledger
        self._clock = clock
        self._workers = workers
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start the thread (a daemon: it never keeps the process alive)."""
        self._thread = threading.Thread(target=self._run, name="licet-webhooks", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Ask the thread to stop, and wait a little for it."""
        self._stop.set()
        WAKE.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def run_forever(self) -> None:
        """Deliver in this thread until interrupted (``issuer webhook deliver``)."""
        try:
            self._run()
        except KeyboardInterrupt:
            self._stop.set()

    def _run(self) -> None:
        ledger: LedgerBackend | None = None
        with concurrent.futures.ThreadPoolExecutor(
            self._workers, thread_name_prefix="licet-webhook-send"
        ) as pool:
            while not self._stop.is_set():
                try:
                    if ledger is None:
                        ledger = self._open()
                    deliverer = Deliverer(ledger, clock=self._clock)
                    endpoints = ledger.webhooks().endpoints()
                    futures = [pool.submit(deliverer.serve, e.endpoint_id) for e in endpoints]
                    concurrent.futures.wait(futures)
                    for f in futures:
                        f.result()
                except Exception:  # noqa: S110 - the ledger is busy or away: next pass
                    pass
                WAKE.wait(POLL_SECONDS)
                WAKE.clear()
        if ledger is not None:
            ledger.close()
