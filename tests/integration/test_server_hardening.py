"""The license server under hostile clients: slowloris, oversized headers and bodies."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from servers import LicenseServer
from support import TIMING

pytestmark = TIMING


@pytest.fixture(scope="module")
def server(home: Path) -> Iterator[LicenseServer]:
    srv = LicenseServer(home, "--request-timeout", "1.5")
    yield srv
    srv.stop()


def hung_up_within(server: LicenseServer, first: bytes, trickle: bytes = b"", limit: float = 6.0) -> float:
    """Send ``first``, then ``trickle`` a byte every 0.25 s; return when the server hangs up."""
    sock = socket.create_connection(("127.0.0.1", server.port))
    sock.settimeout(limit)
    start = time.monotonic()
    try:
        sock.sendall(first)
        for byte in trickle:
            time.sleep(0.25)
            sock.sendall(bytes([byte]))
        while sock.recv(4096):
            pass
    except (BrokenPipeError, ConnectionResetError):
        pass
    finally:
        sock.close()
    elapsed = time.monotonic() - start
    assert elapsed < limit, "the server kept a slow connection open"
    return elapsed


def test_a_connection_that_sends_nothing_is_closed(server: LicenseServer) -> None:
    assert hung_up_within(server, b"") >= 1.0


def test_slow_headers_are_cut_off(server: LicenseServer) -> None:
    hung_up_within(server, b"POST /v1/activations HTTP/1.1\r\nHost: x\r\n", b"X-Slow: " + b"a" * 40)


def test_slow_body_is_cut_off(server: LicenseServer) -> None:
    head = b"POST /v1/activations HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 200\r\n\r\n"
    hung_up_within(server, head, b'{"request_code": "' + b"A" * 40)


def test_a_prompt_client_is_unaffected_and_kept_alive(server: LicenseServer) -> None:
    import http.client

    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
    try:
        for _ in range(3):  # one connection, several requests, each well inside the deadline
            conn.request("GET", "/v1/health")
            response = conn.getresponse()
            assert response.status == 200 and json.loads(response.read())["status"] == "ok"
            time.sleep(0.6)
    finally:
        conn.close()


def raw_request(server: LicenseServer, request: bytes) -> tuple[int, dict]:  # type: ignore[type-arg]
    sock = socket.create_connection(("127.0.0.1", server.port))
    sock.settimeout(10)
    try:
        sock.sendall(request)
        data = b""
        while b"\r\n\r\n" not in data or not data.rstrip().endswith(b"}"):
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    finally:
        sock.close()
    head, _, body = data.partition(b"\r\n\r\n")
    assert b"application/problem+json" in head
    return int(head.split()[1]), json.loads(body)


def test_oversized_headers_are_refused(server: LicenseServer) -> None:
    status, reply = raw_request(server, b"GET /v1/health HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 70_000 + b"\r\n\r\n")
    assert (status, reply["code"]) == (431, "headers-too-large")


def test_oversized_declared_body_is_refused_before_reading(server: LicenseServer) -> None:
    status, reply = raw_request(
        server, b"POST /v1/activations HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 99999999\r\n\r\n"
    )
    assert (status, reply["code"]) == (413, "body-too-large")


def test_oversized_chunked_body_is_refused(server: LicenseServer) -> None:
    chunk = b"A" * 8000
    body = b"".join(b"%x\r\n%s\r\n" % (len(chunk), chunk) for _ in range(4)) + b"0\r\n\r\n"
    status, reply = raw_request(
        server,
        b"POST /v1/activations HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n" + body,
    )
    assert (status, reply["code"]) == (413, "body-too-large")
