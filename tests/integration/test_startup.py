"""The panel's start-up flow in each branch, and the client's handling of odd servers."""

from __future__ import annotations

import datetime as dt
import http.server
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from clirun import provider_home
from servers import LicenseServer, free_port
from support import PRODUCT, FakeClock, serve_in_background

from verifier import (
    ActivationRequiredError,
    LicenseError,
    ServerUnavailableError,
    TokenStore,
    TrustedKeys,
    Verifier,
)
from verifier.client import Challenge, activate_online, startup


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return provider_home(tmp_path_factory.mktemp("provider"), ("--product", PRODUCT, "--ip", "127.0.0.1"))


@pytest.fixture(scope="module")
def server(home: Path) -> Iterator[LicenseServer]:
    srv = LicenseServer(home, "--allow-private-callbacks")
    yield srv
    srv.stop()


def verifier(home: Path, machine: str, clock: Any = None) -> Verifier:
    kwargs = {"clock": clock} if clock else {}
    return Verifier(PRODUCT, TrustedKeys.from_file(home / "keys" / "trusted_keys.json"), machine_id=machine, **kwargs)


def boot(home: Path, machine: str, store: TokenStore, server_url: str | None, clock: Any = None) -> Any:
    return startup(verifier(home, machine, clock), store, server_url=server_url, callback_port=free_port(),
                   buy_url="https://example.com/buy", listen="127.0.0.1")


def test_missing_token_activates_automatically_and_stores_it(home: Path, server: LicenseServer, tmp_path: Path) -> None:
    store = TokenStore(tmp_path / "t")
    lic = boot(home, "box-1", store, server.url)
    assert verifier(home, "box-1").verify(store.load()).license_id == lic.license_id


def test_valid_stored_token_runs_without_any_server(home: Path, server: LicenseServer, tmp_path: Path) -> None:
    store = TokenStore(tmp_path / "t")
    first = boot(home, "box-1", store, server.url)
    again = boot(home, "box-1", store, f"http://127.0.0.1:{free_port()}")  # nothing listens there
    assert again.activation_id == first.activation_id


def test_expired_token_without_a_server_names_the_expiry(home: Path, server: LicenseServer, tmp_path: Path) -> None:
    store = TokenStore(tmp_path / "t")
    boot(home, "box-1", store, server.url)
    later = FakeClock(dt.datetime.now(dt.UTC) + dt.timedelta(days=400))  # past the 365-day token cap
    with pytest.raises(ActivationRequiredError) as required:
        boot(home, "box-1", store, None, later)
    assert required.value.reason is not None and required.value.reason.code == "token-expired"


def test_invalid_stored_token_is_replaced_by_automatic_activation(home: Path, server: LicenseServer, tmp_path: Path) -> None:
    store = TokenStore(tmp_path / "t")
    first = boot(home, "box-1", store, server.url)
    store.save("damaged.token.text")
    renewed = boot(home, "box-1", store, server.url)
    assert renewed.activation_id == first.activation_id  # the same activation, not a second one
    assert verifier(home, "box-1").verify(store.load()).activation_id == first.activation_id


def test_no_license_for_this_address_asks_for_the_manual_form(home: Path, server: LicenseServer, tmp_path: Path) -> None:
    boot(home, "box-1", TokenStore(tmp_path / "box-1"), server.url)  # the IP's license goes to box-1, whatever ran before
    with pytest.raises(ActivationRequiredError) as required:
        boot(home, "box-2", TokenStore(tmp_path / "t"), server.url)  # the IP's license is box-1's
    err = required.value
    assert err.reason is not None and err.reason.code == "already-activated"
    assert err.buy_url == "https://example.com/buy"
    assert err.details()["manual_fields"] == ["activation_key"]
    assert "buy a license at https://example.com/buy" in str(err)


def test_no_server_configured_reports_the_missing_token(home: Path, tmp_path: Path) -> None:
    with pytest.raises(ActivationRequiredError) as required:
        boot(home, "box-3", TokenStore(tmp_path / "t"), None)
    assert required.value.reason is None and str(required.value).startswith("activation required")


def test_unreachable_server_is_a_reason_not_a_crash(home: Path, tmp_path: Path) -> None:
    with pytest.raises(ActivationRequiredError) as required:
        boot(home, "box-3", TokenStore(tmp_path / "t"), f"http://127.0.0.1:{free_port()}")
    assert isinstance(required.value.reason, ServerUnavailableError)


class OddServer:
    def __init__(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                # Read the request first: a socket closed with unread data sends a reset,
                # which can reach the client before the answer it is meant to judge.
                self.rfile.read(int(self.headers.get("Content-Length", "0")))
                self.send_response(status)
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                return

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        serve_in_background(self.httpd)

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


KEY = "0000-0000-0000-0000-0000-0000"


@pytest.mark.parametrize(
    ("status", "body", "headers", "expected"),
    [
        (200, b"not json", {}, "without JSON"),
        (200, b"[]", {}, "other than a JSON object"),
        (200, b"{}", {}, "without a token"),
        (500, b"oops", {}, "HTTP 500 without JSON"),
        (302, b"", {"Location": "http://127.0.0.1:1/"}, "HTTP 302"),
        (200, b"{" + b" " * (70 * 1024) + b"}", {}, "too large"),
    ],
)
def test_odd_server_answers_are_server_unavailable(status: int, body: bytes, headers: dict[str, str], expected: str) -> None:
    odd = OddServer(status, body, headers)
    try:
        with pytest.raises(ServerUnavailableError, match=expected):
            activate_online(odd.url, PRODUCT, KEY, machine_id="m")
    finally:
        odd.close()


def test_unknown_problem_code_keeps_the_servers_words() -> None:
    body = json.dumps({"type": "x", "title": "x", "status": 418, "detail": "brewing", "code": "teapot"}).encode()
    odd = OddServer(418, body, {"Content-Type": "application/problem+json"})
    try:
        with pytest.raises(LicenseError, match="brewing") as err:
            activate_online(odd.url, PRODUCT, KEY, machine_id="m")
        assert err.value.code == "teapot"
    finally:
        odd.close()


def test_challenge_answers_only_its_path_and_only_once() -> None:
    challenge = Challenge()
    assert challenge.answer("/") is None
    assert challenge.answer("/.well-known/licet-challenge?x=1") == challenge.value.encode()
    assert challenge.answer("/.well-known/licet-challenge") is None  # used up
    assert len(challenge.hash) == 64 and Challenge().value != challenge.value
