"""A real webhook receiver for tests: a small HTTP server on 127.0.0.1 that verifies every delivery.

Each request is verified with ``standardwebhooks.Webhook(secret).verify``;
what it got is kept in order. ``fail`` answers: a list of statuses to give
before answering 200 (per webhook-id).
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import standardwebhooks
from support import serve_in_background


class Receiver:
    def __init__(self) -> None:
        self.secrets: list[str] = []
        self.got: list[dict[str, Any]] = []  # verified deliveries, in arrival order
        self.headers: list[dict[str, str]] = []
        self.times: list[float] = []  # time.perf_counter() of each verified arrival
        self.failures: dict[str, list[int]] = {}  # webhook-id -> statuses to answer first
        self.fail_all = 0  # answer this status to everything (0: no)
        self.unverified = 0
        self.stall_next = False  # hold the next request until ``release`` is set, then answer 500
        self.stalled = threading.Event()
        self.release = threading.Event()
        self.lock = threading.Lock()
        self.arrived = threading.Condition(self.lock)
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", "0")))
                headers = {k.lower(): v for k, v in self.headers.items()}
                status = receiver.answer(body, headers)
                self.send_response(status)
                self.send_header("content-length", "0")
                self.end_headers()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks"
        self.thread = serve_in_background(self.server)

    def answer(self, body: bytes, headers: dict[str, str]) -> int:
        with self.lock:
            stall, self.stall_next = self.stall_next, False
        if stall:
            self.stalled.set()
            self.release.wait(30)
            return 500
        with self.lock:
            if self.fail_all:
                return self.fail_all
            queued = self.failures.get(headers.get("webhook-id", ""), [])
            if queued:
                return queued.pop(0)
            verified = False
            for secret in self.secrets:
                try:
                    standardwebhooks.Webhook(secret).verify(body, headers)
                    verified = True
                except standardwebhooks.WebhookVerificationError:
                    continue
            if not verified:
                self.unverified += 1
                return 401
            self.got.append(json.loads(body))
            self.times.append(time.perf_counter())
            self.headers.append(headers)
            self.arrived.notify_all()
            return 200

    def ids(self) -> list[str]:
        return [h["webhook-id"] for h in self.headers]

    def wait_for(self, count: int, timeout: float = 20.0) -> None:
        with self.arrived:
            if not self.arrived.wait_for(lambda: len(self.got) >= count, timeout):
                raise AssertionError(f"{len(self.got)} of {count} deliveries arrived")

    def serve_plain(self) -> None:
        """Answer 200 to everything without verifying (a receiver process for benchmarks)."""
        self.answer = lambda body, headers: 200  # type: ignore[method-assign]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


if __name__ == "__main__":  # a receiver process that answers 200 to everything: python webhook_receiver.py
    r = Receiver()
    r.serve_plain()
    # A deliverer stopped mid-request resets its connection: nothing to report in a benchmark.
    r.server.handle_error = lambda request, address: None  # type: ignore[method-assign]
    print(r.url, flush=True)
    r.thread.join()
