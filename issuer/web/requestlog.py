"""The license server's request log: one JSON line per request, never a key or a token.

Each line holds the time (ISO 8601 UTC), method, path, status, client address
(the one the server believes: the caller's ``client`` function, so that a
request refused before any route, behind a trusted proxy, names the client
and not the proxy), license id (when the request named one) and duration in
milliseconds. Bodies,
headers and query strings are never logged — they carry activation keys,
request codes and tokens — and a path the server does not serve is logged as
``-``, since a client may put anything into it.

A pure ASGI wrapper (no web framework imported): route handlers add what only
they know to ``scope["state"]`` (Starlette's ``request.state``) under
:data:`LICENSE_ID`.

Example::

    app = log_requests(app, paths={"/v1/health"}, stream=sys.stderr, client=whom)
"""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Callable, Collection, MutableMapping
from typing import Any, TextIO

from verifier.clock import format_utc, utc_now

__all__ = ["LICENSE_ID", "log_requests"]

#: ``request.state`` attribute a handler sets to the license the request concerned.
LICENSE_ID = "license_id"

Scope = MutableMapping[str, Any]
ASGIApp = Callable[[Scope, Any, Any], Awaitable[None]]


def log_requests(
    app: ASGIApp,
    *,
    paths: Collection[str],
    stream: TextIO,
    client: Callable[[Scope], str] | None = None,
) -> ASGIApp:
    """Wrap ``app`` so that every HTTP request it answers is logged as one JSON line.

    Args:
        app: the ASGI application.
        paths: the paths the server serves; any other is logged as ``-``.
        stream: where the lines go (the server's stderr).
        client: the address a request's scope comes from, by the server's rule
            (default: the TCP peer).
    """
    known = frozenset(paths)

    async def logged(scope: Scope, receive: Any, send: Any) -> None:
        if scope.get("type") != "http":
            await app(scope, receive, send)
            return
        started = time.monotonic()
        status: list[int] = []
        scope.setdefault("state", {})

        async def send_and_note(message: MutableMapping[str, Any]) -> None:
            if message.get("type") == "http.response.start":
                status.append(int(message.get("status", 0)))
            await send(message)

        try:
            await app(scope, receive, send_and_note)
        finally:
            state = scope.get("state") or {}
            peer = scope.get("client")
            line = {
                "time": format_utc(utc_now()),
                "method": str(scope.get("method", "")),
                "path": scope.get("path") if scope.get("path") in known else "-",
                "status": status[0] if status else None,  # None: the connection was dropped
                "client": (client(scope) if client else None) or (peer[0] if peer else None),
                "license_id": state.get(LICENSE_ID),
                "duration_ms": round((time.monotonic() - started) * 1000, 1),
            }
            stream.write(json.dumps(line, separators=(",", ":")) + "\n")
            stream.flush()

    return logged
