"""What both servers share on the wire: a whole-request deadline, size limits, the listening socket.

uvicorn runs the license server (``issuer serve``) and the console
(``issuer console``); both take their protocol, body and header limits, and
shut-down grace from here, so the two answer slow or oversized clients alike.

Example:
    >>> app = limit_body(app, 16 * 1024, 16 * 1024)  # doctest: +SKIP
"""

from __future__ import annotations

import socket
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

from issuer.errors import ListenError
from issuer.web.problems import problem
from verifier import errors as e

__all__ = ["SHUTDOWN_GRACE", "ASGIApp", "DeadlineProtocol", "limit_body", "listen"]

ASGIApp = Callable[
    [MutableMapping[str, Any], Callable[[], Awaitable[Any]], Callable[[Any], Awaitable[None]]],
    Awaitable[None],
]

# On SIGTERM, requests in progress get this long to finish before the process exits.
# Without it, one idle TLS keep-alive connection (every browser keeps one open) holds
# the exit for asyncio's 30-second TLS shut-down, and a restart hangs that long.
SHUTDOWN_GRACE = 5  # seconds, whole: uvicorn takes an int


class DeadlineProtocol(H11Protocol):
    """uvicorn's h11 protocol with a deadline for receiving each whole request.

    uvicorn has no such timeout: its keep-alive timer restarts with every byte,
    so a client trickling a request (slowloris) would hold a connection for
    ever. ASGI middleware cannot help: it runs only once the headers are in.
    """

    receive_timeout = 10.0

    def connection_made(self, transport: Any) -> None:
        """A new connection: the deadline for its first request starts."""
        super().connection_made(transport)
        self._arm_deadline()

    def on_response_complete(self) -> None:
        """A response went out: the deadline for the next request starts."""
        super().on_response_complete()
        self._arm_deadline()

    def connection_lost(self, exc: Exception | None) -> None:
        """The connection is gone: its deadline with it."""
        deadline = getattr(self, "_deadline", None)
        if deadline is not None:
            deadline.cancel()
        super().connection_lost(exc)

    def _arm_deadline(self) -> None:
        deadline = getattr(self, "_deadline", None)
        if deadline is not None:
            deadline.cancel()
        self._deadline = self.loop.call_later(self.receive_timeout, self._on_deadline)

    def _on_deadline(self) -> None:
        # IDLE: the request line or headers never completed; SEND_BODY: the body did not.
        if self.conn.their_state in (h11.IDLE, h11.SEND_BODY) and not self.transport.is_closing():
            self.transport.close()


def limit_body(app: ASGIApp, max_bytes: int, max_header_bytes: int) -> ASGIApp:
    """ASGI middleware: 431 for oversized headers, 413 for bodies over ``max_bytes``."""

    async def limited(scope: MutableMapping[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await app(scope, receive, send)
            return
        headers = scope.get("headers") or []
        if sum(len(name) + len(value) + 4 for name, value in headers) > max_header_bytes:
            too_long = problem(
                431,
                e.HeadersTooLargeError.code,
                f"request headers are larger than {max_header_bytes} bytes",
            )
            await too_long(scope, receive, send)
            return
        encoding = dict(headers).get(b"content-encoding", b"identity").strip().lower()
        if encoding not in (b"", b"identity"):
            refused = problem(
                422, e.BadInputError.code, "request bodies must be plain JSON, not encoded"
            )
            await refused(scope, receive, send)
            return
        declared = dict(headers).get(b"content-length")
        too_big = problem(
            413, e.BodyTooLargeError.code, f"request body is larger than {max_bytes} bytes"
        )
        if declared is not None and (not declared.isdigit() or int(declared) > max_bytes):
            await too_big(scope, receive, send)
            return
        # Bodies are small: read the whole body here (FastAPI would turn an error
        # raised while it reads into a 400), then hand it to the app in one piece.
        body = b""
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return  # the client went away
            body += message.get("body", b"")
            if len(body) > max_bytes:
                await too_big(scope, receive, send)
                return
            if not message.get("more_body", False):
                break
        delivered = False

        async def replay() -> Any:
            nonlocal delivered
            if not delivered:
                delivered = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await app(scope, replay, send)

    return limited


def listen(host: str, port: int) -> socket.socket:
    """Bind and listen now, so a busy port is a refusal before anything is announced.

    Raises:
        ListenError: the address is busy, not local, or not allowed.
    """
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
        family, kind, proto, _, address = infos[0]
        sock = socket.socket(family, kind, proto)
    except (OSError, IndexError) as err:
        raise ListenError(f"cannot listen on {host}:{port}: {err}") from None
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)  # IPv4 clients too
        sock.bind(address)
        sock.listen(2048)
    except OSError as err:
        sock.close()
        raise ListenError(f"cannot listen on {host}:{port}: {err.strerror or err}") from None
    sock.set_inheritable(True)  # worker processes serve this same socket
    return sock
