"""The license server's HTTP as a panel sees it: JSON posts, the revocation list, refusals.

Standard-library HTTP only (the verifier gains no dependency), no redirects
followed and no proxy taken from the environment. Every answer ends as a
value or a :class:`~verifier.errors.LicenseError`: a refusal comes back as
the exact class the issuer raised, rebuilt from the problem+json ``code``;
no answer, or nonsense, is :class:`~verifier.errors.ServerUnavailableError`.
A panel must never crash at boot on what a server sends.

A call the server could not serve *now* is made again: a ``503`` answer
(its database failing over, a balancer with no node up) or no connection
at all is made again, at most ``RETRY.attempts`` times in all within
``RETRY.budget`` seconds, waiting the ``Retry-After`` the server asked for
(at most ``RETRY.longest`` seconds) or a doubling back-off, each wait with
random jitter so that panels turned away together do not come back
together. Any other answer — a 4xx refusal, a 200, a 500 — ends the call
at once; activations and renewals are idempotent for the same server, so a
retry after a lost answer is safe.

This module knows the wire, not the flows: :mod:`verifier.client` builds the
panel's activation, renewal and start-up on top of it, and
:meth:`verifier.Verifier.activate` uses :func:`activate_online` directly.

Example:
    >>> token = activate_online("https://licenses.example.com", "ispmanager",
    ...                         "K7Q2-...")  # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
import http.client
import json
import random
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any, Protocol, TypeVar

from verifier.encoding import EncodingError, json_loads_strict
from verifier.errors import BadInputError, LicenseError, ServerUnavailableError, error_for_code
from verifier.request import request_code
from verifier.revocations import MAX_REVOCATIONS_BYTES, RevocationList, revocations_etag

__all__ = [
    "DEFAULT_SERVER_PORT",
    "RETRY",
    "RetryPolicy",
    "RevocationHolder",
    "activate_online",
    "check_url",
    "fetch_revocations",
    "post_json",
    "token_from",
]

_MAX_RESPONSE = 64 * 1024
#: The port ``issuer serve`` listens on unless told otherwise.
DEFAULT_SERVER_PORT = 8470
_T = TypeVar("_T")
#: A 503 that waiting will not cure: the provider's revocation list is larger than panels accept.
_FOR_GOOD = frozenset({"revocations-too-large"})


@dataclasses.dataclass(frozen=True)
class RetryPolicy:
    """How often, and how long, a call the server could not serve now is made again.

    Attributes:
        attempts: calls in all, the first one included.
        budget: seconds from the first call after which no new one starts.
        longest: most seconds waited before one retry, whatever ``Retry-After`` says.
        first_backoff: seconds before the first retry when the server named no
            wait (no connection); doubled for each further one.
        sleep: waits (tests pass one that records the waits).
        clock: monotonic seconds (tests pass one that the recorded waits advance).
        jitter: ``jitter(wait)`` is the wait actually taken, from ``wait`` to 1.5 times ``wait``.
    """

    attempts: int = 4
    budget: float = 15.0
    longest: float = 5.0
    first_backoff: float = 0.5
    sleep: Callable[[float], None] = time.sleep
    clock: Callable[[], float] = time.monotonic
    jitter: Callable[[float], float] = lambda wait: wait * random.uniform(1.0, 1.5)  # noqa: S311

    def wait(self, retry: int, retry_after: int | None) -> float:
        """Seconds to wait before retry number ``retry`` (1, 2, ...), jitter included."""
        asked = retry_after if retry_after is not None else self.first_backoff * 2 ** (retry - 1)
        return self.jitter(min(float(asked), self.longest))


#: The online calls' retries: at most 4 calls within 15 s (docs/PROTOCOL.md, "Retries").
RETRY = RetryPolicy()


class _Again(Exception):
    """An attempt the server could not serve now: ``error`` is raised if no retry is left."""

    def __init__(self, error: LicenseError, retry_after: int | None) -> None:
        super().__init__(str(error))
        self.error = error
        self.retry_after = retry_after


def _retrying(attempt: Callable[[], _T], policy: RetryPolicy | None) -> _T:
    """``attempt()``, made again on :class:`_Again` while the policy (or :data:`RETRY`) allows."""
    # Read at call time, not as a default argument, so one setting of RETRY governs every call.
    policy = RETRY if policy is None else policy
    start = policy.clock()
    retry = 0
    while True:
        try:
            return attempt()
        except _Again as again:
            retry += 1
            wait = policy.wait(retry, again.retry_after)
            if retry >= policy.attempts or policy.clock() - start + wait > policy.budget:
                raise again.error from None
            policy.sleep(wait)


def _retry_after(headers: Any) -> int | None:
    """The whole seconds of a ``Retry-After`` header, or ``None`` (absent, a date, nonsense)."""
    value = (headers.get("Retry-After") or "").strip() if headers is not None else ""
    return int(value) if value.isdigit() else None


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None  # a redirect is answered as the error it is, never followed


_OPENER = urllib.request.build_opener(_NoRedirects, urllib.request.ProxyHandler({}))


def check_url(server_url: str) -> None:
    """Refuse a license server URL that is not ``http://`` or ``https://``.

    Raises:
        BadInputError: any other scheme (``file:``, custom ones) or not text.
    """
    if not isinstance(server_url, str) or not server_url.startswith(("http://", "https://")):
        raise BadInputError("license server URL must start with http:// or https://")


def post_json(
    server_url: str,
    path: str,
    body: dict[str, Any],
    timeout: float,
    *,
    retry: RetryPolicy | None = None,
) -> dict[str, Any]:
    """POST ``body`` as JSON to ``server_url + path`` and return the JSON object answered.

    A 503 or no connection is retried as ``retry`` says (see the module).

    Raises:
        BadInputError: the URL is not usable.
        LicenseError: the server's refusal, rebuilt as its exact class (after
            the retries, the last 503's, e.g. ``LedgerUnavailableError``).
        ServerUnavailableError: no answer, an error status without a problem
            document, an answer too large or not a JSON object.
    """
    check_url(server_url)
    data = json.dumps(body).encode()

    def attempt() -> dict[str, Any]:
        # The scheme was checked above: http(s) only, never file: or custom ones.
        request = urllib.request.Request(  # noqa: S310
            server_url.rstrip("/") + path,
            data=data,
            headers={"Content-Type": "application/json", "Accept": "application/json"},
            method="POST",
        )
        return _post_once(request, server_url, path, timeout)

    return _retrying(attempt, retry)


def _post_once(
    request: urllib.request.Request, server_url: str, path: str, timeout: float
) -> dict[str, Any]:
    # Whatever comes back — an error status, a cut connection, JSON nested too
    # deep to parse — ends as a LicenseError: a panel must never crash at boot.
    try:
        with _OPENER.open(request, timeout=timeout) as response:
            return _json_reply(response.read(_MAX_RESPONSE + 1), server_url)
    except urllib.error.HTTPError as err:
        error = _refusal(err, server_url, path)
        if err.code == 503 and error.code not in _FOR_GOOD:
            raise _Again(error, _retry_after(err.headers)) from None
        raise error from None
    except (urllib.error.URLError, OSError, http.client.HTTPException) as err:
        raise _Again(_unreachable(server_url, err), None) from None
    except ValueError as err:  # a URL urllib cannot use
        raise BadInputError(f"license server URL {server_url!r} is not usable") from err


def _refusal(err: urllib.error.HTTPError, server_url: str, path: str) -> LicenseError:
    """The error an error answer stands for: its problem's exact class, else server-unavailable."""
    try:
        reply = _json_reply(err.read(_MAX_RESPONSE + 1), server_url, status=err.code)
    except (OSError, http.client.HTTPException, ServerUnavailableError):
        reply = {}
    code, detail = reply.get("code"), reply.get("detail")
    # No licet code, or a licet server's framework answer for a path it lacks (the
    # console's port given by mistake): not the license server. A licet refusal that
    # happens to be a 404 (license-not-found, ...) carries its own code and words.
    if err.code == 404 and (code is None or (code == "not-found" and detail == "Not Found")):
        return _not_a_license_server(server_url, path)
    if isinstance(code, str) and isinstance(detail, str):
        return error_for_code(code, detail, reply)
    if not reply:
        return ServerUnavailableError(
            f"license server {server_url} answered HTTP {err.code} without JSON"
        )
    return ServerUnavailableError(f"license server answered HTTP {err.code}")


def _not_a_license_server(server_url: str, path: str) -> ServerUnavailableError:
    # Anything may answer 404 for a path it does not know (a web server, the console on
    # 8471); a licet license server knows every path the panel posts to.
    return ServerUnavailableError(
        f"{server_url} is not a licet license server (HTTP 404 for {path}) — check the URL; "
        f"'issuer serve' listens on port {DEFAULT_SERVER_PORT} unless told otherwise"
    )


def _unreachable(server_url: str, err: Exception) -> ServerUnavailableError:
    reason = getattr(err, "reason", err)
    return ServerUnavailableError(f"cannot reach the license server {server_url}: {reason}")


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


def token_from(reply: dict[str, Any]) -> str:
    """The ``token`` of an activation or renewal answer (not yet verified).

    Raises:
        ServerUnavailableError: the answer carries no token.
    """
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
    retry: RetryPolicy | None = None,
) -> str:
    """Manual online activation with an activation key; returns the token (not yet verified).

    A 503 or no connection is retried as ``retry`` says.

    Raises:
        ActivationKeyFormatError: a typo in the key (nothing is sent).
        LicenseError: the server's refusal, e.g. ``AlreadyActivatedError``.
        LedgerUnavailableError: the provider's database stayed away through the retries.
        ServerUnavailableError: no answer, or nonsense.
    """
    code = request_code(product, key, machine_id=machine_id)
    reply = post_json(server_url, "/v1/activations", {"request_code": code}, timeout, retry=retry)
    return token_from(reply)


class RevocationHolder(Protocol):
    """What keeps a panel's revocation list (a :class:`~verifier.Verifier`)."""

    @property
    def revocations(self) -> RevocationList | None:
        """The list in force, or ``None``."""

    def apply_revocations(self, text: object) -> RevocationList:
        """Check a signed list and apply it if it is newer than the one held."""


def fetch_revocations(
    server_url: str,
    verifier: RevocationHolder,
    *,
    timeout: float = 15.0,
    retry: RetryPolicy | None = None,
) -> RevocationList:
    """Fetch the provider's revocation list and apply it (kept in the verifier's store).

    Sends the held list's entity tag: an unchanged list costs one small answer.
    A 503 or no connection is retried as ``retry`` says.

    Returns:
        The list in force afterwards.

    Raises:
        RevocationsError | RevocationsRollbackError: the list was refused.
        ServerUnavailableError: no answer, or nonsense.
    """
    check_url(server_url)
    current = verifier.revocations
    headers = {"Accept": "application/jwt"}
    if current is not None:
        headers["If-None-Match"] = revocations_etag(current.text)

    def attempt() -> bytes | None:
        request = urllib.request.Request(  # noqa: S310 - the scheme was checked
            server_url.rstrip("/") + "/v1/revocations", headers=headers, method="GET"
        )
        return _get_list_once(request, server_url, timeout, unchanged_ok=current is not None)

    data = _retrying(attempt, retry)
    if data is None and current is not None:
        return current
    data = data or b""
    if len(data) > MAX_REVOCATIONS_BYTES:
        raise ServerUnavailableError("license server's revocation list is too large")
    return verifier.apply_revocations(data.decode("ascii", errors="replace"))


def _get_list_once(
    request: urllib.request.Request, server_url: str, timeout: float, *, unchanged_ok: bool
) -> bytes | None:
    """The list's bytes, or ``None`` for ``304 Not Modified`` (when a list is held)."""
    try:
        with _OPENER.open(request, timeout=timeout) as response:
            return bytes(response.read(MAX_REVOCATIONS_BYTES + 1))
    except urllib.error.HTTPError as err:
        if err.code == 304 and unchanged_ok:
            return None
        if err.code == 404:
            raise _not_a_license_server(server_url, "/v1/revocations") from None
        error = ServerUnavailableError(
            f"license server answered HTTP {err.code} for the revocation list"
        )
        if err.code == 503 and _problem_code(err) not in _FOR_GOOD:
            raise _Again(error, _retry_after(err.headers)) from None
        raise error from None
    except (urllib.error.URLError, OSError, http.client.HTTPException) as err:
        raise _Again(_unreachable(server_url, err), None) from None
    except ValueError as err:  # a URL urllib cannot use
        raise BadInputError(f"license server URL {server_url!r} is not usable") from err


def _problem_code(err: urllib.error.HTTPError) -> object:
    """The ``code`` of an error answer's problem document, if it has one."""
    try:
        reply = json_loads_strict(err.read(_MAX_RESPONSE + 1))
    except (OSError, http.client.HTTPException, EncodingError):
        return None
    return reply.get("code") if isinstance(reply, dict) else None
