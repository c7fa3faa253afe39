"""The panel's side of online activation and renewal, and the panel's start-up flow.

Standard-library HTTP only (the verifier gains no dependency), spoken through
:mod:`verifier.wire`. Answers from the license server come back as the same
:class:`~verifier.errors.LicenseError` classes the issuer raised, rebuilt
from the problem+json ``code``. :func:`activate_online` and
:func:`fetch_revocations` are the wire's, importable from here as well.

Example:
    >>> lic = startup(verifier, store, server_url="https://licenses.example.com",
    ...               callback_port=8472, buy_url="https://example.com/buy")  # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
import http.server
import secrets
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from verifier.claims import License
from verifier.clock import now_from
from verifier.errors import (
    ActivationRequiredError,
    BadInputError,
    ClockRollbackError,
    InvalidTokenError,
    LicenseError,
    ServerUnavailableError,
)
from verifier.fingerprint import fingerprint
from verifier.renewal import renewal_request
from verifier.request import display_hostname, identity_kind
from verifier.store import TokenStore
from verifier.verify import TokenState, Verifier
from verifier.wire import activate_online, fetch_revocations, post_json, token_from

__all__ = [
    "CHALLENGE_PATH",
    "Challenge",
    "activate_automatic",
    "activate_online",
    "fetch_revocations",
    "renew_online",
    "startup",
]

CHALLENGE_PATH = "/.well-known/licet-challenge"


class Challenge:
    """A fresh secret the license server must fetch back from this panel — once.

    A panel that runs its own web server on the callback port answers
    ``GET /.well-known/licet-challenge`` with :meth:`answer` while it waits
    for the license server, instead of letting :func:`activate_automatic`
    start a temporary responder. The challenge is given out at most once:
    whoever fetches it first (the license server, in the normal course)
    uses it up, so a stranger who reads it cannot replay it for a forged
    request, and a panel that is not activating has nothing to give.

    Args:
        value: the secret (a fresh random one by default).
    """

    def __init__(self, value: str | None = None) -> None:
        self.value = value or secrets.token_urlsafe(32)
        self._given = False
        self._lock = threading.Lock()

    @property
    def hash(self) -> str:
        """What goes to the license server: SHA-256 hex of the value."""
        return hashlib.sha256(self.value.encode()).hexdigest()

    def answer(self, path: str) -> bytes | None:
        """The body to serve for ``path``.

        The value on the first request for the challenge path; ``None`` for
        any other path and for every later request.
        """
        if path.split("?", 1)[0] != CHALLENGE_PATH:
            return None
        with self._lock:
            if self._given:
                return None
            self._given = True
        return self.value.encode()


class _ChallengeHandler(http.server.BaseHTTPRequestHandler):
    challenge: Challenge

    def do_GET(self) -> None:
        body = self.challenge.answer(self.path)
        self.send_response(200 if body is not None else 404)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body or b"")))
        self.end_headers()
        self.wfile.write(body or b"")

    def log_message(self, format: str, *args: Any) -> None:
        return  # the panel's log is not ours to fill


@contextmanager
def _responder(challenge: Challenge, host: str, port: int) -> Iterator[None]:
    handler = type("Handler", (_ChallengeHandler,), {"challenge": challenge})
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    server_class = type("Server", (http.server.ThreadingHTTPServer,), {"address_family": family})
    try:
        server = server_class((host, port), handler)
    except OSError as err:
        raise BadInputError(
            f"cannot listen on {host}:{port} for the callback: {err.strerror}"
        ) from None
    # shutdown() returns once serve_forever next looks at its flag: every 0.5 s by
    # default, which every automatic activation would wait out after its answer.
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
    )
    thread.start()
    try:
        yield
    finally:
        server.shutdown()
        server.server_close()


def activate_automatic(
    server_url: str,
    product: str,
    *,
    callback_port: int,
    machine_id: str | None = None,
    hostname: str | None = None,
    challenge: Challenge | None = None,
    listen: str | None = "0.0.0.0",  # noqa: S104 - the license server must reach us from outside
    timeout: float = 20.0,
) -> str:
    """Automatic activation by this server's IP; returns the token (not yet verified).

    Args:
        server_url: the license server.
        product: the product.
        callback_port: where the license server calls back.
        machine_id: stable-id override for containers and cloned VMs.
        hostname: shown to the provider; defaults to this host's name.
        challenge: the challenge the panel's own web server answers; a fresh one otherwise.
        listen: address for a temporary callback responder; ``None`` when the
            panel's own web server answers the callback on ``callback_port``.
        timeout: seconds for the whole exchange.

    Raises:
        NoLicenseForAddressError: no license for this address — show the manual form.
        LicenseError: any other refusal.
    """
    challenge = challenge or Challenge()
    body = {
        "product": product,
        "fingerprint": list(fingerprint(product, machine_id)),
        "callback_port": callback_port,
        "challenge_hash": challenge.hash,
        "hostname": display_hostname(hostname or socket.gethostname()),
        "identity": identity_kind(machine_id),
    }
    if listen is None:
        return token_from(post_json(server_url, "/v1/activations/auto", body, timeout))
    with _responder(challenge, listen, callback_port):
        return token_from(post_json(server_url, "/v1/activations/auto", body, timeout))


def renew_online(
    server_url: str, verifier: Verifier, store: TokenStore, *, timeout: float = 15.0
) -> License:
    """Renew the stored token's lease at the license server, and store the new token.

    The new token must verify here, for the same activation, before it
    replaces the old one. Whenever the server answers, its revocation list is
    fetched and applied too (one that does not verify is not installed; the
    reason is in ``verifier.notes``). A refusal for good — the activation was
    superseded, the license revoked, or the license has no such activation —
    is recorded in the store (:meth:`Verifier.record_refusal`): the held token
    stops at once instead of running to the end of its lease.

    Raises:
        BadInputError: no token is stored.
        ActivationSupersededError | LicenseRevokedError | LicenseExpiredError |
        WrongServerError | ActivationNotFoundError: the server's refusal.
        ServerUnavailableError: no answer, or nonsense.
        TokenStoreError: the new token could not be stored.
    """
    held = store.load()
    if held is None:
        raise BadInputError(f"no activation token in {store.path} to renew — activate first")
    request = renewal_request(
        held,
        product=verifier.product,
        machine_id=verifier.machine_id,
        server_fingerprint=verifier.server_fingerprint,
    )
    try:
        reply = post_json(server_url, "/v1/renewals", {"renewal_code": request.encode()}, timeout)
    except ServerUnavailableError:
        raise  # no answer: nothing learned, and no list would come either
    except LicenseError as err:
        verifier.record_refusal(held, err, server_url=server_url)
        verifier.refresh_revocations(server_url, timeout=timeout)
        raise
    verifier.refresh_revocations(server_url, timeout=timeout)
    token = token_from(reply)
    lic = verifier.verify(token)
    if lic.activation_id != request.activation_id:
        raise InvalidTokenError("the license server answered a token for another activation")
    store.save(token)
    return lic


_REFRESH_REVOCATIONS = 86400  # a list older than a day is fetched again at start-up


def startup(
    verifier: Verifier,
    store: TokenStore,
    *,
    server_url: str | None = None,
    callback_port: int | None = None,
    buy_url: str | None = None,
    challenge: Challenge | None = None,
    listen: str | None = "0.0.0.0",  # noqa: S104 - see activate_automatic
) -> License:
    """The panel's start-up flow.

    1. With a license server configured and a revocation list older than a
       day (or none), fetch the list first (failures are not fatal: they end
       up in ``verifier.notes``).
    2. The stored token is ``valid`` → its license. In ``grace``, renew online
       when a server is configured; if that fails the panel still runs (the
       status screen shows the days left) — unless the server refused for
       good (superseded, revoked, no such activation: recorded in the store).
    3. ``clock_rollback`` → :class:`ClockRollbackError`: correct the clock.
    4. Otherwise (expired, superseded, revoked, missing, invalid, wrong
       server), with a server configured: renew an expired token whose
       activation is still current, else try automatic activation; on
       success the token is stored and its license returned.
    5. Otherwise raise :class:`ActivationRequiredError` with the reason, the
       buy link and the fields the manual form needs.

    Raises:
        ClockRollbackError: the clock was set back.
        ActivationRequiredError: the panel must show the activation form.
    """
    if server_url is not None:
        held = verifier.revocations
        now = now_from(verifier.clock).timestamp()
        if held is None or now - held.iat > _REFRESH_REVOCATIONS:
            # Offline or refused: the stored list (if any) still applies.
            verifier.refresh_revocations(server_url)
    status = verifier.status(store.load())
    if status.state == TokenState.CLOCK_ROLLBACK and status.error is not None:
        raise status.error
    reason = status.error
    if server_url is not None and status.state in (TokenState.GRACE, TokenState.EXPIRED):
        try:
            return renew_online(server_url, verifier, store)
        except ClockRollbackError:
            raise
        except LicenseError as err:
            reason = err
        # In grace a failed renewal still runs, to the end of the lease and renewing at
        # the next start or from cron — unless the refusal was recorded and stopped it.
        status = verifier.status(store.load())
    if status.license is not None:
        return status.license
    if server_url is not None and callback_port is not None:
        try:
            token = activate_automatic(
                server_url,
                verifier.product,
                callback_port=callback_port,
                machine_id=verifier.machine_id,
                challenge=challenge,
                listen=listen,
            )
            lic = verifier.verify(token)
            store.save(token)
            return lic
        except LicenseError as err:
            reason = err
    raise ActivationRequiredError(reason=reason, buy_url=buy_url)
