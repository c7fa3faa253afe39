"""Posting webhook deliveries: Standard Webhooks requests over checked, kept-alive connections.

Every request is a Standard Webhooks request signed with the
``standardwebhooks`` package: ``webhook-id`` (the event's id),
``webhook-timestamp`` (this attempt), ``webhook-signature`` (one ``v1,``
signature per live secret). A target's name is resolved each time a
connection opens, and refused when it resolves to a loopback, private or
reserved address (unless the endpoint allows private targets); the
connection goes to the address that was checked. 10 s timeout; redirects
are not followed (a 3xx is a failure); at most 64 KiB of an answer is read.

A :class:`Sender` keeps one connection per target open between requests,
as a receiver (and the proxy in front of it) expects of a webhook sender:
a deliverer's batch for one endpoint costs one TCP (and TLS) handshake, not
one per delivery. A request on a reused connection that the receiver had
closed meanwhile is sent once more on a new one — it got no answer, and
delivery is at least once.

Example:
    >>> with Sender() as post:  # doctest: +SKIP
    ...     sent = post(endpoint, delivery, utc_now())
"""

from __future__ import annotations

import datetime as _dt
import http.client
import socket
import ssl
import urllib.parse
from dataclasses import dataclass
from types import TracebackType

import standardwebhooks

from issuer.policy import webhooks as rules
from issuer.webhook_records import Delivery, Endpoint

__all__ = ["TIMEOUT", "Sender", "Sent", "signature"]

TIMEOUT = 10.0
_MAX_ANSWER = 64 * 1024
_USER_AGENT = "licet-webhooks/1"
# What a kept-alive connection the receiver closed while idle looks like on the next request.
# (http.client.RemoteDisconnected is a ConnectionResetError.)
_STALE = (BrokenPipeError, ConnectionResetError)


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


class _CheckedConnection(http.client.HTTPConnection):
    """An HTTP(S) connection that opens only to an address checked just before.

    ``http.client`` reopens a connection the receiver closed by calling
    :meth:`connect`: every socket this class ever has went through the check.
    """

    def __init__(self, host: str, port: int, *, tls: bool, allow_private: bool, timeout: float):
        super().__init__(host, port, timeout=timeout)
        self._tls = tls
        self._allow_private = allow_private

    def connect(self) -> None:
        address = _resolve(self.host, self.port, self._allow_private)
        sock = socket.create_connection((address, self.port), timeout=self.timeout)
        # As http.client's own connect does: a request on a kept-alive connection
        # must not wait for the receiver's delayed ACK of the one before.
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if self._tls:
            sock = ssl.create_default_context().wrap_socket(sock, server_hostname=self.host)
        self.sock = sock


class Sender:
    """Posts deliveries, keeping a connection per target open until :meth:`close`.

    Args:
        timeout: seconds for connecting and for each read of an answer.
    """

    def __init__(self, timeout: float = TIMEOUT) -> None:
        self._timeout = timeout
        self._open: dict[tuple[str, str, int, bool], _CheckedConnection] = {}

    def __enter__(self) -> Sender:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close every connection kept open."""
        for conn in self._open.values():
            conn.close()
        self._open.clear()

    def __call__(self, endpoint: Endpoint, delivery: Delivery, at: _dt.datetime) -> Sent:
        """Post one delivery to its endpoint once; never raises for what the receiver does."""
        body = delivery.payload()
        parts = urllib.parse.urlsplit(endpoint.url)
        host = parts.hostname or ""
        tls = parts.scheme == "https"
        port = parts.port or (443 if tls else 80)
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        headers = {
            "content-type": "application/json",
            "user-agent": _USER_AGENT,
            "webhook-id": delivery.event_id,
            "webhook-timestamp": str(int(at.timestamp())),
            "webhook-signature": signature(endpoint, delivery, at, body),
        }
        key = (parts.scheme, host, port, endpoint.allow_private)
        conn = self._open.get(key)
        if conn is None:
            conn = self._open[key] = _CheckedConnection(
                host, port, tls=tls, allow_private=endpoint.allow_private, timeout=self._timeout
            )
        reused = conn.sock is not None  # kept open after an earlier answer
        try:
            try:
                status = self._post(conn, path, body, headers)
            except _STALE:
                if not reused:
                    raise  # a new connection: the receiver's doing, not an idle close
                conn.close()
                status = self._post(conn, path, body, headers)
        except PermissionError as err:
            self._drop(key)
            return Sent(None, str(err))
        except (OSError, http.client.HTTPException) as err:
            self._drop(key)
            return Sent(None, f"{type(err).__name__}: {err}"[:300] or "connection failed")
        if 200 <= status < 300:
            return Sent(status, None)
        if 300 <= status < 400:
            return Sent(status, f"HTTP {status}: redirects are not followed")
        return Sent(status, f"HTTP {status}")

    @staticmethod
    def _post(conn: _CheckedConnection, path: str, body: bytes, headers: dict[str, str]) -> int:
        conn.request("POST", path, body=body, headers=headers)
        answer = conn.getresponse()
        answer.read(_MAX_ANSWER)
        if not answer.isclosed():  # more than we read: the connection cannot serve another
            conn.close()
        return answer.status

    def _drop(self, key: tuple[str, str, int, bool]) -> None:
        conn = self._open.pop(key, None)
        if conn is not None:
            conn.close()
