"""The webhook sender against a real HTTP server on 127.0.0.1: one kept-alive connection per
batch, a connection the receiver closed while idle is reopened and the request sent again, and
the safety rules (no redirects, a bounded answer, a timeout, checked addresses) hold on every
request, reused connection or not."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import standardwebhooks
from support import FakeClock, make_issuer, serve_in_background

from issuer.licensing.sender import Sender
from verifier.clock import utc_now


class _QuietServer(ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client that hung up early, as the sender does on a long answer or a timeout


class _Server:
    """Counts connections and requests; ``behaviour`` says how to answer."""

    def __init__(self) -> None:
        self.connections = 0
        self.ids: list[str] = []
        self.behaviour = "ok"
        self.secret = ""
        self.release = threading.Event()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def setup(self) -> None:
                super().setup()
                outer.connections += 1

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["content-length"]))
                standardwebhooks.Webhook(outer.secret).verify(body, dict(self.headers.items()))
                outer.ids.append(self.headers["webhook-id"])
                if outer.behaviour == "hang":
                    outer.release.wait(10)
                    return
                status = 302 if outer.behaviour == "redirect" else 200
                answer = b"x" * 200_000 if outer.behaviour == "big" else b""
                self.send_response(status)
                if status == 302:
                    self.send_header("location", "http://127.0.0.1:9/elsewhere")
                self.send_header("content-length", str(len(answer)))
                if outer.behaviour == "close":
                    self.send_header("connection", "close")
                self.end_headers()
                self.wfile.write(answer)
                if outer.behaviour == "drop-idle":  # closes without a word, as an idle timeout does
                    self.close_connection = True

        self.http = _QuietServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.http.server_address[1]}/hooks"
        serve_in_background(self.http)

    def close(self) -> None:
        self.release.set()
        self.http.shutdown()
        self.http.server_close()


@pytest.fixture
def server() -> Iterator[_Server]:
    found = _Server()
    yield found
    found.close()


def _deliveries(tmp_path: Path, server: _Server, count: int, url: str | None = None) -> tuple[Any, list[Any]]:
    iss = make_issuer(tmp_path, FakeClock(utc_now()))
    endpoint, secret = iss.webhooks.add(url or server.url, allow_private=url is None)
    server.secret = secret
    return endpoint, [iss.webhooks.test(endpoint.endpoint_id) for _ in range(count)]


def test_a_batch_shares_one_connection_and_every_request_verifies(tmp_path: Path, server: _Server) -> None:
    endpoint, deliveries = _deliveries(tmp_path, server, 5)
    with Sender() as post:
        sent = [post(endpoint, d, utc_now()) for d in deliveries]
    assert [s.http_status for s in sent] == [200] * 5 and all(s.ok for s in sent)
    assert (server.connections, server.ids) == (1, [d.event_id for d in deliveries])


def test_a_connection_closed_while_idle_is_reopened_and_the_request_sent_once(tmp_path: Path, server: _Server) -> None:
    server.behaviour = "drop-idle"
    endpoint, deliveries = _deliveries(tmp_path, server, 3)
    with Sender() as post:
        sent = [post(endpoint, d, utc_now()) for d in deliveries]
    assert all(s.ok for s in sent)
    assert server.ids == [d.event_id for d in deliveries]  # each arrived, once
    assert server.connections == 3


def test_connection_close_answers_get_a_new_connection_each(tmp_path: Path, server: _Server) -> None:
    server.behaviour = "close"
    endpoint, deliveries = _deliveries(tmp_path, server, 3)
    with Sender() as post:
        assert all(post(endpoint, d, utc_now()).ok for d in deliveries)
    assert (server.connections, len(server.ids)) == (3, 3)


def test_a_redirect_is_a_failure_and_is_not_followed(tmp_path: Path, server: _Server) -> None:
    server.behaviour = "redirect"
    endpoint, (delivery,) = _deliveries(tmp_path, server, 1)
    with Sender() as post:
        sent = post(endpoint, delivery, utc_now())
    assert (sent.http_status, sent.ok) == (302, False)
    assert sent.error == "HTTP 302: redirects are not followed"
    assert len(server.ids) == 1


def test_an_answer_longer_than_read_ends_its_connection(tmp_path: Path, server: _Server) -> None:
    server.behaviour = "big"
    endpoint, deliveries = _deliveries(tmp_path, server, 2)
    with Sender() as post:
        assert all(post(endpoint, d, utc_now()).ok for d in deliveries)
    assert (server.connections, len(server.ids)) == (2, 2)  # the rest of the first answer is never read


def test_a_receiver_that_never_answers_times_out(tmp_path: Path, server: _Server) -> None:
    server.behaviour = "hang"
    endpoint, (delivery,) = _deliveries(tmp_path, server, 1)
    with Sender(timeout=0.3) as post:
        sent = post(endpoint, delivery, utc_now())
    assert sent.http_status is None and sent.error is not None and "timed out" in sent.error


def test_a_name_resolving_to_loopback_is_refused_before_connecting(tmp_path: Path, server: _Server) -> None:
    endpoint, (delivery,) = _deliveries(tmp_path, server, 1)
    port = server.http.server_address[1]
    # The same target without --allow-private, by name: resolved, then refused.
    guarded = replace(endpoint, url=f"http://localhost:{port}/hooks", allow_private=False)
    with Sender() as post:
        sent = post(guarded, delivery, utc_now())
        assert sent.http_status is None and "refused" in (sent.error or "")
        assert server.connections == 0
        assert post(endpoint, delivery, utc_now()).ok  # one sender keeps each target apart
    assert (server.connections, server.ids) == (1, [delivery.event_id])
