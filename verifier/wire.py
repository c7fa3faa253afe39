"""The license server's HTTP as a panel sees it: JSON posts, the revocation list, refusals.

Standard-library HTTP only (the verifier gains no dependency), no redirects
followed and no proxy taken from the environment. Every answer ends as a
value or a :class:`~verifier.errors.LicenseError`: a refusal comes back as
the exact class the issuer raised, rebuilt from the problem+json ``code``;
no answer, or nonsense, is :class:`~verifier.errors.ServerUnavailableError`.
A panel must never crash at boot on what a server sends.

This module knows the wire, not the flows: :mod:`verifier.client` builds the
panel's activation, renewal and start-up on top of it, and
:meth:`verifier.Verifier.activate` uses :func:`activate_online` directly.

Example:
    >>> token = activate_online("https://licenses.example.com", "ispmanager",
    ...                         "K7Q2-...")  # doctest: +SKIP
"""

from __future__ import annotations

import http.client
import json
import urllib.error
import urllib.request
from typing import Any, Protocol

from verifier.encoding import EncodingError, json_loads_strict
from verifier.errors import BadInputError, ServerUnavailableError, error_for_code
from verifier.request import request_code
from verifier.revocations import MAX_REVOCATIONS_BYTES, RevocationList, revocations_etag

__all__ = [
    "DEFAULT_SERVER_PORT",
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


def post_json(server_url: str, path: str, body: dict[str, Any], timeout: float) -> dict[str, Any]:
    """POST ``body`` as JSON to ``server_url + path`` and return the JSON object answered.

    Raises:
        BadInputError: the URL is not usable.
        LicenseError: the server's refusal, rebuilt as its exact class.
        ServerUnavailableError: no answer, an error status without a problem
            document, an answer too large or not a JSON object.
    """
    check_url(server_url)
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
        except (OSError, http.client.HTTPException, ServerUnavailableError):
            reply = {}
        code, detail = reply.get("code"), reply.get("detail")
        # No licet code, or a licet server's framework answer for a path it lacks (the
        # console's port given by mistake): not the license server. A licet refusal that
        # happens to be a 404 (license-not-found, ...) carries its own code and words.
        if err.code == 404 and (code is None or (code == "not-found" and detail == "Not Found")):
            raise _not_a_license_server(server_url, path) from None
        if isinstance(code, str) and isinstance(detail, str):
            raise error_for_code(code, detail, reply) from None
        if not reply:
            raise ServerUnavailableError(
                f"license server {server_url} answered HTTP {err.code} without JSON"
            ) from None
        raise ServerUnavailableError(f"license server answered HTTP {err.code}") from None
    except (urllib.error.URLError, OSError, http.client.HTTPException) as err:
        raise _unreachable(server_url, err) from None
    except ValueError as err:  # a URL urllib cannot use
        raise BadInputError(f"license server URL {server_url!r} is not usable") from err


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
) -> str:
    """Manual online activation with an activation key; returns the token (not yet verified).

    Raises:
        ActivationKeyFormatError: a typo in the key (nothing is sent).
        LicenseError: the server's refusal, e.g. ``AlreadyActivatedError``.
        ServerUnavailableError: no answer, or nonsense.
    """
    code = request_code(product, key, machine_id=machine_id)
    return token_from(post_json(server_url, "/v1/activations", {"request_code": code}, timeout))


class RevocationHolder(Protocol):
    """What keeps a panel's revocation list (a :class:`~verifier.Verifier`)."""

    @property
    def revocations(self) -> RevocationList | None:
        """The list in force, or ``None``."""

    def apply_revocations(self, text: object) -> RevocationList:
        """Check a signed list and apply it if it is newer than the one held."""


def fetch_revocations(
    server_url: str, verifier: RevocationHolder, *, timeout: float = 15.0
) -> RevocationList:
    """Fetch the provider's revocation list and apply it (kept in the verifier's store).

    Sends the held list's entity tag: an unchanged list costs one small answer.

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
    request = urllib.request.Request(  # noqa: S310 - the scheme was checked
        server_url.rstrip("/") + "/v1/revocations", headers=headers, method="GET"
    )
    try:
        with _OPENER.open(request, timeout=timeout) as response:
            data = response.read(MAX_REVOCATIONS_BYTES + 1)
    except urllib.error.HTTPError as err:
        if err.code == 304 and current is not None:
            return current
        if err.code == 404:
            raise _not_a_license_server(server_url, "/v1/revocations") from None
        raise ServerUnavailableError(
            f"license server answered HTTP {err.code} for the revocation list"
        ) from None
    except (urllib.error.URLError, OSError, http.client.HTTPException) as err:
        raise _unreachable(server_url, err) from None
    except ValueError as err:  # a URL urllib cannot use
        raise BadInputError(f"license server URL {server_url!r} is not usable") from err
    if len(data) > MAX_REVOCATIONS_BYTES:
        raise ServerUnavailableError("license server's revocation list is too large")
    return verifier.apply_revocations(data.decode("ascii", errors="replace"))
