"""The webhook deliverer: sends queued deliveries, signed, in order, at least once.

One pass (:meth:`Deliverer.run_once`) takes each endpoint in turn — held
by :meth:`~issuer.ledger.webhook_api.WebhookStorage.claim`, so two
deliverers never send for one endpoint at once — and sends its due
deliveries in order: a failure holds the later ones back until it is
retried (5 s, 30 s, 2 min, 10 min, 1 h, 6 h, then every 12 h, ±20 %
jitter); after 3 days the delivery is ``failed`` and the endpoint
``paused``. A redelivery (``manual``) goes at once, outside the order.

Every request is a Standard Webhooks request signed with the
``standardwebhooks`` package: ``webhook-id`` (the event's id),
``webhook-timestamp`` (this attempt), ``webhook-signature`` (one ``v1,``
signature per live secret). Targets are resolved first and refused when a
name resolves to a loopback, private or reserved address (unless the
endpoint allows private targets); the connection goes to the address that
was checked. 10 s timeout; redirects are not followed (a 3xx is a failure).

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
import http.client
import random
import socket
import ssl
import threading
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, replace

import standardwebhooks

from issuer.ledger.api import LedgerBackend, SendClaim
from issuer.licensing.outbox import WAKE
from issuer.policy import webhooks as rules
from issuer.webhook_records import Attempt, Delivery, DeliveryStatus, Endpoint
from verifier.clock import Clock, now_from, utc_now

__all__ = ["BackgroundDeliverer", "Deliverer", "Sent", "send"]

TIMEOUT = 10.0
BATCH = 100
BATCH_SECONDS = 2.0
POLL_SECONDS = 0.5
_MAX_ANSWER = 64 * 1024
_USER_AGENT = "licet-webhooks/1"


@dataclass(frozen=True)
class Sent:
    """What one attempt got: the HTTP status (``None``: no answer) and what went wrong."""

    http_status: int | None
    error: str | None

    @property
    def ok(self) -> bool:
        """A 2xx answer."""
        return self.http_status is not None and 200 <= self.http_status < 300


def signature(endpoint: Endpoint, delivery: Delivery, at: _dt.datetime, body: bytes) -> str:
    """The ``webhook-signature`` header: a ``v1,`` signature per live secret, space-separated."""
    return " ".join(
        standardwebhooks.Webhook(secret).sign(delivery.event_id, at, body)
        for secret in endpoint.live_secrets(at)
    )


def _resolve(host: str, port: int, allow_private: bool) -> str:
    """The address to connect to: every address the name has must be allowed."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as err:
        raise ConnectionError(f"cannot resolve {host}: {err}") from None
    addresses = [str(info[4][0]) for info in infos]
    refused = [a for a in addresses if not rules.target_allowed(a, allow_private=allow_private)]
    if refused or not addresses:
        raise PermissionError(
            f"{host} resolves to {', '.join(refused) or 'nothing'}: a loopback, private or "
            "reserved address, refused (add the endpoint with --allow-private if meant)"
        )
    return addresses[0]


def send(
    endpoint: Endpoint,
    delivery: Delivery,
    at: _dt.datetime,
    *,
    timeout: float = TIMEOUT,
) -> Sent:
    """Post one delivery to its endpoint once; never raises for what the receiver does."""
    body = delivery.payload()
    parts = urllib.parse.urlsplit(endpoint.url)
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    headers = {
        "content-type": "application/json",
        "user-agent": _USER_AGENT,
        "webhook-id": delivery.event_id,
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": signature(endpoint, delivery, at, body),
    }
    conn: http.client.HTTPConnection | None = None
    try:
        address = _resolve(host, port, endpoint.allow_private)
        sock = socket.create_connection((address, port), timeout=timeout)
        if parts.scheme == "https":
            sock = ssl.create_default_context().wrap_socket(sock, server_hostname=host)
        conn = http.client.HTTPConnection(host, port, timeout=timeout)
        conn.sock = sock  # connected to the address that was checked
        conn.request("POST", path, body=body, headers=headers)
        answer = conn.getresponse()
        answer.read(_MAX_ANSWER)
        status = answer.status
    except PermissionError as err:
        return Sent(None, str(err))
    except (OSError, http.client.HTTPException) as err:
        return Sent(None, f"{type(err).__name__}: {err}"[:300] or "connection failed")
    finally:
        if conn is not None:
            conn.close()
    if 200 <= status < 300:
        return Sent(status, None)
    if 300 <= status < 400:
        return Sent(status, f"HTTP {status}: redirects are not followed")
    return Sent(status, f"HTTP {status}")


class Deliverer:
    """Sends what is due, endpoint by endpoint.

    Args:
        ledger: the ledger whose queue it serves.
        clock: time source (attempt times, due times, the 3-day window).
        rng: the jitter's random source.
        timeout: seconds per request.
        sender: the function that posts one delivery (:func:`send`).
    """

    def __init__(
        self,
        ledger: LedgerBackend,
        *,
        clock: Clock = utc_now,
        rng: random.Random | None = None,
        timeout: float = TIMEOUT,
        sender: Callable[..., Sent] = send,
    ) -> None:
        self.ledger = ledger
        self._clock = clock
        self._rng = rng or random.Random()  # noqa: S311 - jitter, not a secret
        self._timeout = timeout
        self._send = sender

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
        started = time.monotonic()
        done: list[Delivery] = []
        state = None
        for d in pending:
            if d.manual:
                done.append(self._manual(endpoint, d))
        more = len(pending) == BATCH
        if endpoint.state == Endpoint.ACTIVE:
            for d in (d for d in pending if not d.manual):
                now = now_from(self._clock)
                if d.next_attempt_at is not None and d.next_attempt_at > now:
                    more = False  # held back: nothing after it goes before it
                    break
                after = self._attempt(endpoint, d, now)
                done.append(after)
                if after.status == DeliveryStatus.FAILED:
                    state = Endpoint.PAUSED
                if after.status != DeliveryStatus.DELIVERED:
                    more = False  # a failure holds the later ones back
                    break
                if time.monotonic() - started > BATCH_SECONDS:
                    more = True
                    break
            else:
                more = more and bool(done)
        else:
            more = False
        claim.record(done, state=state)
        return len(done), more

    def _attempt(self, endpoint: Endpoint, d: Delivery, now: _dt.datetime) -> Delivery:
        """Send ``d`` in its order: delivered, due again later, or failed for good."""
        sent = self._send(endpoint, d, now, timeout=self._timeout)
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

    def _manual(self, endpoint: Endpoint, d: Delivery) -> Delivery:
        now = now_from(self._clock)
        sent = self._send(endpoint, d, now, timeout=self._timeout)
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
