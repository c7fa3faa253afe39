"""Prove that a panel answers at its address: fetch its challenge and check it.

Automatic activation trusts only the TCP peer address, so before a key is
used the license server calls the panel back on that address, under one
deadline and tight size bounds (h11 speaks the HTTP), and expects the
challenge whose SHA-256 came with the request.

Example:
    >>> confirm_panel("203.0.113.7", 8600, digest, allow_private=False,
    ...               timeout=5.0, max_bytes=1024)  # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
import hmac
import socket
import time

import h11

from issuer.addresses import callback_allowed
from verifier.client import CHALLENGE_PATH
from verifier.errors import CallbackError

__all__ = ["confirm_panel", "fetch_challenge"]

_MAX_CALLBACK_HEADERS = 8 * 1024


def confirm_panel(
    address: str,
    port: int,
    challenge_hash: str,
    *,
    allow_private: bool,
    timeout: float,
    max_bytes: int,
) -> None:
    """Refuse unless the panel at ``address:port`` answers the challenge ``challenge_hash`` hashes.

    Raises:
        CallbackError: a private address while those are not allowed, no
            answer within bounds, or the wrong challenge.
    """
    if not callback_allowed(address, allow_private):
        raise CallbackError(
            f"callbacks to the private address {address} are disabled on this server"
        )
    answer = fetch_challenge(address, port, timeout=timeout, max_bytes=max_bytes)
    digest = hashlib.sha256(answer.strip()).hexdigest()
    if not hmac.compare_digest(digest, challenge_hash):
        raise CallbackError("the panel answered the callback with the wrong challenge")


def fetch_challenge(address: str, port: int, *, timeout: float, max_bytes: int) -> bytes:
    """Ask the panel at ``address:port`` for its challenge, within tight bounds.

    One deadline (``timeout`` seconds) covers the whole exchange — connect,
    request, status line, headers and body — so a panel trickling its answer
    a byte at a time holds a server thread no longer than that. Redirects are
    not followed; headers over 8 KiB and bodies over ``max_bytes``
    are refused.

    Raises:
        CallbackError: unreachable, slow, redirected, not 200, not HTTP, or too large.
    """
    where = f"{address}:{port}"
    deadline = time.monotonic() + timeout

    def remaining() -> float:
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError
        return left

    host = f"[{address}]" if ":" in address else address
    conn = h11.Connection(h11.CLIENT, max_incomplete_event_size=_MAX_CALLBACK_HEADERS)
    request = h11.Request(
        method="GET",
        target=CHALLENGE_PATH,
        headers=[("Host", f"{host}:{port}"), ("Connection", "close"), ("Accept", "text/plain")],
    )
    body = b""
    try:
        with socket.create_connection((address, port), timeout=remaining()) as sock:
            sock.settimeout(remaining())
            sock.sendall(conn.send(request) + conn.send(h11.EndOfMessage()))
            while True:
                event = conn.next_event()
                if event is h11.NEED_DATA:
                    sock.settimeout(remaining())
                    conn.receive_data(sock.recv(4096))
                elif isinstance(event, h11.Response):
                    if event.status_code != 200:
                        raise CallbackError(
                            f"the panel at {where} answered the callback with "
                            f"HTTP {event.status_code}"
                        )
                elif isinstance(event, h11.Data):
                    body += event.data
                    if len(body) > max_bytes:
                        raise CallbackError("the panel's callback answer is too large")
                elif isinstance(event, h11.EndOfMessage | h11.ConnectionClosed):
                    break
    except TimeoutError as err:
        raise CallbackError(
            f"the panel at {where} did not answer the callback within {timeout:g} s"
        ) from err
    except h11.RemoteProtocolError as err:
        raise CallbackError(f"the panel at {where} answered the callback with non-HTTP") from err
    except OSError as err:
        raise CallbackError(
            f"the license server could not reach the panel at {where} ({err.strerror or err})"
        ) from err
    return body
