"""The panel's side of online activation and renewal, and the panel's start-up flow.

Standard-library HTTP only (the verifier gains no dependency). Answers from
the license server come back as the same :class:`~verifier.errors.LicenseError`
classes the issuer raised, rebuilt from the problem+json ``code``.

Example:
    >>> lic = startup(verifier, store, server_url="https://licenses.example.com",
    ...               callback_port=8472, buy_url="https://example.com/buy")  # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
import http.client
import http.server
import json
import secrets
import socket
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from verifier.claims import License
from verifier.clock import now_from
from verifier.encoding import EncodingError, json_loads_strict
from verifier.errors import (
    ActivationRequiredError,
    BadInputError,
    ClockRollbackError,
    InvalidTokenError,
    LicenseError,
    ServerUnavailableError,
    error_for_code,
)
from verifier.fingerprint import fingerprint
from verifier.renewal import renewal_request
from verifier.request import display_hostname, identity_kind, request_code
from verifier.revocations import MAX_REVOCATIONS_BYTES, RevocationList, revocations_etag
from verifier.store import TokenStore
from verifier.verify import TokenState, Verifier

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
_MAX_RESPONSE = 64 * 1024


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


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None  # a redirect is answered as the error it is, never followed


_OPENER = urllib.request.build_opener(_NoRedirects, urllib.request.ProxyHandler({}))


def _check_url(server_url: str) -> None:
    if not isinstance(server_url, str) or not server_url.startswith(("http://", "https://")):
        raise BadInputError("license server URL must start with http:// or https://")


def _post(server_url: str, path: str, body: dict[str, Any], timeout: float) -> dict[str, Any]:
    _check_url(server_url)
    # The scheme was checked above: http(s) only, never file: or custom ones.
    request = urllib.request.Request(  # noqa: S310
        server_url.rstrip("/") + path,
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json", "Accept": "application/json"},
        method="POST",
    )
    # Whatever comes back — an error status, a cut connection, JSON nested too
    # deep to parse — ends as a LicenseError: a panel must never crash at boot.
    try:
        with _OPENER.open(request, timeout=timeout) as response:
            return _json_reply(response.read(_MAX_RESPONSE + 1), server_url)
    except urllib.error.HTTPError as err:
        try:
            reply = _json_reply(err.read(_MAX_RESPONSE + 1), server_url, status=err.code)
        except (OSError, http.client.HTTPException):
            reply = {}
        code, detail = reply.get("code"), reply.get("detail")
        if isinstance(code, str) and isinstance(detail, str):
            raise error_for_code(code, detail, reply) from None
        raise ServerUnavailableError(f"license server answered HTTP {err.code}") from None
    except (urllib.error.URLError, OSError, http.client.HTTPException) as err:
        reason = getattr(err, "reason", err)
        raise ServerUnavailableError(
            f"cannot reach the license server {server_url}: {reason}"
        ) from None
    except ValueError as err:  # a URL urllib cannot use
        raise BadInputError(f"license server URL {server_url!r} is not usable") from err


def _json_reply(data: bytes, server_url: str, status: int = 200) -> dict[str, Any]:
    if len(data) > _MAX_RESPONSE:
        raise ServerUnavailableError("license server answer is too large")
    try:
        reply = json_loads_strict(data)
    except EncodingError:
        raise ServerUnavailableError(
            f"license server {server_url} answered HTTP {status} without JSON"
        ) from None
    if not isinstance(reply, dict):
        raise ServerUnavailableError("license server answered something other than a JSON object")
    return reply


def _token(reply: dict[str, Any]) -> str:
    token = reply.get("token")
    if not isinstance(token, str):
        raise ServerUnavailableError("license server answered without a token")
    return token


def activate_online(
    server_url: str,
    product: str,
    key: str,
    *,
    machine_id: str | None = None,
    timeout: float = 15.0,
) -> str:
    """Manual online activation with an activation key; returns the token (not yet verified).

    Raises:
        ActivationKeyFormatError: a typo in the key (nothing is sent).
        LicenseError: the server's refusal, e.g. ``AlreadyActivatedError``.
        ServerUnavailableError: no answer, or nonsense.
    """
    code = request_code(product, key, machine_id=machine_id)
    return _token(_post(server_url, "/v1/activations", {"request_code": code}, timeout))


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
    thread = threading.Thread(target=server.serve_forever, daemon=True)
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
        return _token(_post(server_url, "/v1/activations/auto", body, timeout))
    with _responder(challenge, listen, callback_port):
        return _token(_post(server_url, "/v1/activations/auto", body, timeout))


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
        reply = _post(server_url, "/v1/renewals", {"renewal_code": request.encode()}, timeout)
    except ServerUnavailableError:
        raise  # no answer: nothing learned, and no list would come either
    except LicenseError as err:
        verifier.record_refusal(held, err, server_url=server_url)
        verifier.refresh_revocations(server_url, timeout=timeout)
        raise
    verifier.refresh_revocations(server_url, timeout=timeout)
    token = _token(reply)
    lic = verifier.verify(token)
    if lic.activation_id != request.activation_id:
        raise InvalidTokenError("the license server answered a token for another activation")
    store.save(token)
    return lic


def fetch_revocations(
    server_url: str, verifier: Verifier, *, timeout: float = 15.0
) -> RevocationList:
    """Fetch the provider's revocation list and apply it (kept in the verifier's store).

    Sends the held list's entity tag: an unchanged list costs one small answer.

    Returns:
        The list in force afterwards.

    Raises:
        RevocationsError | RevocationsRollbackError: the list was refused.
        ServerUnavailableError: no answer, or nonsense.
    """
    _check_url(server_url)
    current = verifier.revocations
    headers = {"Accept": "application/jwt"}
    if current is not None:
        headers["If-None-Match"] = revocations_etag(current.text)
    request = urllib.request.Request(  # noqa: S310 - the scheme was checked
        server_url.rstrip("/") + "/v1/revocations", headers=headers, method="GET"
    )
    try:
        with _OPENER.open(request, timeout=timeout) as response:
            data = response.read(MAX_REVOCATIONS_BYTES + 1)
    except urllib.error.HTTPError as err:
        if err.code == 304 and current is not None:
            return current
        raise ServerUnavailableError(
            f"license server answered HTTP {err.code} for the revocation list"
        ) from None
    except (urllib.error.URLError, OSError, http.client.HTTPException) as err:
        reason = getattr(err, "reason", err)
        raise ServerUnavailableError(
            f"cannot reach the license server {server_url}: {reason}"
        ) from None
    except ValueError as err:  # a URL urllib cannot use
        raise BadInputError(f"license server URL {server_url!r} is not usable") from err
    if len(data) > MAX_REVOCATIONS_BYTES:
        raise ServerUnavailableError("license server's revocation list is too large")
    return verifier.apply_revocations(data.decode("ascii", errors="replace"))


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
