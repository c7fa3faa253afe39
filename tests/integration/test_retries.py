"""The verifier's online calls retry a 503 or a lost connection within a budget, and nothing else.

Against a real HTTP server on 127.0.0.1 that answers from a script and counts
the requests it got. The waits go to a recording ``sleep`` whose seconds move
a fake clock, so the budget is checked without the test waiting it out.
"""

from __future__ import annotations

import http.server
import json
from collections.abc import Iterator
from typing import Any

import pytest
from servers import free_port
from support import PRODUCT, serve_in_background

from verifier.errors import (
    AlreadyActivatedError,
    LedgerUnavailableError,
    LicenseError,
    ServerUnavailableError,
)
from verifier.wire import RETRY, RetryPolicy, activate_online, fetch_revocations

KEY = "0000-0000-0000-0000-0000-0000"
UNAVAILABLE = (503, {"Content-Type": "application/problem+json", "Retry-After": "1"},
               {"type": "about:blank", "title": "t", "status": 503, "detail": "failing over", "code": "ledger-unavailable",
                "retry_after": 1})
TOKEN = (200, {"Content-Type": "application/json"}, {"token": "aaa.bbb.ccc"})
TAKEN = (409, {"Content-Type": "application/problem+json"},
         {"type": "about:blank", "title": "t", "status": 409, "detail": "bound elsewhere", "code": "already-activated"})


class Scripted:
    """Answers each request with the next of ``answers`` (the last one again once they run out)."""

    def __init__(self, answers: list[tuple[int, dict[str, str], Any]]) -> None:
        self.answers = answers
        self.requests: list[str] = []
        scripted = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                self.rfile.read(length)
                scripted.requests.append(self.path)
                status, headers, body = scripted.answers[min(len(scripted.requests), len(scripted.answers)) - 1]
                data = json.dumps(body).encode()
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = answer

            def log_message(self, *args: Any) -> None:
                return

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        serve_in_background(self.server)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class Waits:
    """A policy's ``sleep`` and ``clock``: records each wait, and the clock moves by it."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.waits.append(seconds)

    def clock(self) -> float:
        return sum(self.waits)

    def policy(self, jitter: float = 1.5) -> RetryPolicy:
        return RetryPolicy(sleep=self.sleep, clock=self.clock, jitter=lambda wait: wait * jitter)


@pytest.fixture
def waits() -> Waits:
    return Waits()


@pytest.fixture
def scripted() -> Iterator[list[Scripted]]:
    made: list[Scripted] = []
    yield made
    for server in made:
        server.close()


def serve(made: list[Scripted], *answers: tuple[int, dict[str, str], Any]) -> Scripted:
    server = Scripted(list(answers))
    made.append(server)
    return server


def test_two_503s_then_a_token_is_a_token_after_three_requests(scripted: list[Scripted], waits: Waits) -> None:
    server = serve(scripted, UNAVAILABLE, UNAVAILABLE, TOKEN)
    assert activate_online(server.url, PRODUCT, KEY, machine_id="m", retry=waits.policy()) == "aaa.bbb.ccc"
    assert server.requests == ["/v1/activations"] * 3
    assert waits.waits == [1.5, 1.5]  # Retry-After: 1, with the most jitter


def test_a_server_that_stays_unavailable_ends_with_ledger_unavailable_within_the_budget(scripted: list[Scripted], waits: Waits) -> None:
    answer = (503, {**UNAVAILABLE[1], "Retry-After": "10"}, {**UNAVAILABLE[2], "retry_after": 10})
    server = serve(scripted, answer)
    with pytest.raises(LedgerUnavailableError) as refused:
        activate_online(server.url, PRODUCT, KEY, machine_id="m", retry=waits.policy())
    assert refused.value.retry_after == 10
    # Retry-After 10 is capped at 5 s (7.5 with jitter): a third wait would pass 15 s.
    assert waits.waits == [7.5, 7.5] and len(server.requests) == 3
    assert sum(waits.waits) <= RETRY.budget


def test_no_more_than_four_requests_however_short_the_waits(scripted: list[Scripted], waits: Waits) -> None:
    server = serve(scripted, UNAVAILABLE)
    with pytest.raises(LedgerUnavailableError):
        activate_online(server.url, PRODUCT, KEY, machine_id="m", retry=waits.policy(jitter=1.0))
    assert len(server.requests) == RETRY.attempts == 4 and waits.waits == [1.0, 1.0, 1.0]


@pytest.mark.parametrize(
    "answer",
    [
        TAKEN,
        (500, {"Content-Type": "text/plain"}, "oops"),
        (503, {"Content-Type": "application/problem+json"},
         {"type": "about:blank", "title": "t", "status": 503, "detail": "too large", "code": "revocations-too-large"}),
    ],
)
def test_any_other_answer_is_final(scripted: list[Scripted], waits: Waits, answer: tuple[int, dict[str, str], Any]) -> None:
    server = serve(scripted, answer, TOKEN)
    with pytest.raises(LicenseError):
        activate_online(server.url, PRODUCT, KEY, machine_id="m", retry=waits.policy())
    assert len(server.requests) == 1 and waits.waits == []


def test_a_503_then_a_refusal_is_the_refusal(scripted: list[Scripted], waits: Waits) -> None:
    server = serve(scripted, UNAVAILABLE, TAKEN, TOKEN)
    with pytest.raises(AlreadyActivatedError):
        activate_online(server.url, PRODUCT, KEY, machine_id="m", retry=waits.policy())
    assert len(server.requests) == 2


def test_no_connection_is_retried_with_a_doubling_backoff() -> None:
    waits = Waits()
    with pytest.raises(ServerUnavailableError, match="cannot reach"):
        activate_online(f"http://127.0.0.1:{free_port()}", PRODUCT, KEY, machine_id="m", retry=waits.policy(jitter=1.0))
    assert waits.waits == [0.5, 1.0, 2.0]


def test_the_revocation_list_is_retried_on_503_too(scripted: list[Scripted], waits: Waits) -> None:
    class Holder:
        revocations = None

        def apply_revocations(self, text: object) -> Any:
            raise AssertionError("no list was answered")

    server = serve(scripted, UNAVAILABLE)
    with pytest.raises(ServerUnavailableError, match="HTTP 503"):
        fetch_revocations(server.url, Holder(), retry=waits.policy())
    assert server.requests == ["/v1/revocations"] * 4 and waits.waits == [1.5, 1.5, 1.5]


def test_the_default_policy_really_waits_and_then_succeeds(scripted: list[Scripted]) -> None:
    server = serve(scripted, UNAVAILABLE, TOKEN)
    assert activate_online(server.url, PRODUCT, KEY, machine_id="m") == "aaa.bbb.ccc"
    assert len(server.requests) == 2
