"""Online activation against a real `issuer serve` (uvicorn) on 127.0.0.1 with real callbacks."""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from clirun import cli, provider_home
from servers import CallbackPanel, LicenseServer, has_open, post_json, wait_until
from support import PRODUCT, code_for, ledger_bytes

from verifier import (
    AlreadyActivatedError,
    CallbackError,
    InvalidActivationKeyError,
    LicenseError,
    LicenseExpiredError,
    LicenseRevokedError,
    NoLicenseForAddressError,
    ProductMismatchError,
    RateLimitedError,
    TrustedKeys,
    Verifier,
)
from verifier.client import Challenge, activate_automatic, activate_online


@pytest.fixture(scope="module")
def server(home: Path) -> Iterator[LicenseServer]:
    srv = LicenseServer(home, "--allow-private-callbacks", "--callback-timeout", "1")
    yield srv
    srv.stop()


def create(home: Path, *extra: str, product: str = PRODUCT) -> dict:  # type: ignore[type-arg]
    return json.loads(cli("issuer", "license", "create", "--product", product, "--json", *extra, cwd=home).stdout)


def show(home: Path, license_id: str) -> dict:  # type: ignore[type-arg]
    return json.loads(cli("issuer", "license", "show", license_id, "--json", cwd=home).stdout)


def verifier_for(home: Path, machine: str) -> Verifier:
    return Verifier(PRODUCT, TrustedKeys.from_file(home / "keys" / "trusted_keys.json"), machine_id=machine)


def post(url: str, body: bytes, content_type: str = "application/json") -> tuple[int, str, dict]:  # type: ignore[type-arg]
    return post_json(url, body, content_type)  # type: ignore[no-any-return]


# --- automatic activation -----------------------------------------------------------------


def auto(server: LicenseServer, behaviour: str = "ok", machine: str = "auto-1", **kwargs: object) -> tuple[str, CallbackPanel]:
    challenge = Challenge()
    panel = CallbackPanel(challenge, behaviour)
    try:
        token = activate_automatic(
            server.url, PRODUCT, callback_port=panel.port, machine_id=machine, challenge=challenge, listen=None, **kwargs  # type: ignore[arg-type]
        )
        return token, panel
    finally:
        panel.close()


@pytest.fixture(scope="module")
def ip_license(home: Path) -> dict:  # type: ignore[type-arg]
    """The module's license assigned to 127.0.0.1: automatic activation has something to find."""
    return create(home, "--ip", "127.0.0.1")


def test_automatic_activation_by_ip(home: Path, server: LicenseServer, ip_license: dict) -> None:  # type: ignore[type-arg]
    lic = ip_license
    token, panel = auto(server, machine="auto-1")
    assert panel.hits == 1
    assert verifier_for(home, "auto-1").verify(token).license_id == lic["license_id"]
    assert show(home, lic["license_id"])["activation"]["method"] == "automatic"
    again, _ = auto(server, machine="auto-1")  # the same server again: same activation
    assert verifier_for(home, "auto-1").verify(again).activation_id == verifier_for(home, "auto-1").verify(token).activation_id
    with pytest.raises(AlreadyActivatedError):
        auto(server, machine="auto-other")


@pytest.mark.parametrize("behaviour", ["wrong", "slow", "redirect", "huge"])
def test_bad_callbacks_activate_nothing(home: Path, server: LicenseServer, ip_license: dict, behaviour: str) -> None:  # type: ignore[type-arg]
    before = ledger_bytes(home / "ledger")
    with pytest.raises(CallbackError) as refused:
        auto(server, behaviour, machine=f"cb-{behaviour}")
    assert refused.value.code == "callback-failed"
    assert ledger_bytes(home / "ledger") == before


def test_no_callback_listener_is_refused(home: Path, server: LicenseServer, ip_license: dict) -> None:  # type: ignore[type-arg]
    from servers import free_port

    with pytest.raises(CallbackError, match="could not reach"):
        activate_automatic(server.url, PRODUCT, callback_port=free_port(), machine_id="x", listen=None)


def test_no_license_for_the_address_means_manual(tmp_path: Path) -> None:
    provider_home(tmp_path)
    create(tmp_path, "--ip", "203.0.113.9")  # assigned elsewhere; the body cannot claim it
    srv = LicenseServer(tmp_path, "--allow-private-callbacks")
    try:
        challenge = Challenge()
        body = {
            "product": PRODUCT,
            "fingerprint": ["mid:" + "0" * 32],
            "callback_port": 9,
            "challenge_hash": challenge.hash,
            "hostname": "x",
        }
        # A body naming an address is refused outright: unknown members are never ignored.
        claimed = {**body, "ip": "203.0.113.9"}
        status, content_type, reply = post(srv.url + "/v1/activations/auto", json.dumps(claimed).encode())
        assert (status, reply["code"]) == (422, "bad-input") and "ip" in reply["detail"]
        status, content_type, reply = post(srv.url + "/v1/activations/auto", json.dumps(body).encode())
        assert status == 404 and content_type == "application/problem+json"
        assert reply["code"] == "no-license-for-address" and "activate manually" in reply["detail"]
        with pytest.raises(NoLicenseForAddressError):
            activate_automatic(srv.url, PRODUCT, callback_port=9, machine_id="m", listen=None)
    finally:
        srv.stop()


def test_private_callbacks_are_refused_by_default(tmp_path: Path) -> None:
    provider_home(tmp_path)
    create(tmp_path, "--ip", "127.0.0.1")
    srv = LicenseServer(tmp_path)
    try:
        challenge = Challenge()
        panel = CallbackPanel(challenge)
        try:
            with pytest.raises(CallbackError, match=r"private address 127\.0\.0\.1"):
                activate_automatic(srv.url, PRODUCT, callback_port=panel.port, machine_id="m", challenge=challenge, listen=None)
            assert panel.hits == 0
        finally:
            panel.close()
    finally:
        srv.stop()


def test_forwarded_address_is_believed_only_from_a_trusted_proxy(tmp_path: Path) -> None:
    provider_home(tmp_path)
    lic = create(tmp_path, "--ip", "127.0.0.2")
    challenge = Challenge()
    panel = CallbackPanel(challenge, host="127.0.0.2")
    body = json.dumps({
        "product": PRODUCT, "fingerprint": ["mid:" + "1" * 32], "callback_port": panel.port,
        "challenge_hash": challenge.hash, "hostname": "proxied",
    }).encode()

    def via_proxy(url: str) -> tuple[int, dict]:  # type: ignore[type-arg]
        request = urllib.request.Request(url + "/v1/activations/auto", data=body, method="POST",
                                         headers={"Content-Type": "application/json", "X-Forwarded-For": "127.0.0.2"})
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as err:
            return err.code, json.loads(err.read())

    untrusting = LicenseServer(tmp_path, "--allow-private-callbacks")
    try:
        status, reply = via_proxy(untrusting.url)
        assert (status, reply["code"]) == (404, "no-license-for-address")
    finally:
        untrusting.stop()
    trusting = LicenseServer(tmp_path, "--allow-private-callbacks", "--trusted-proxy", "127.0.0.1")
    try:
        status, reply = via_proxy(trusting.url)
        assert status == 200 and "token" in reply
        assert show(tmp_path, lic["license_id"])["activated_hostname"] == "proxied"
    finally:
        trusting.stop()
        panel.close()


# --- manual online activation ----------------------------------------------------------------


def test_manual_online_all_five_outcomes(home: Path, server: LicenseServer) -> None:
    from verifier.activation_key import key_from_bytes

    with pytest.raises(InvalidActivationKeyError):
        activate_online(server.url, PRODUCT, key_from_bytes(b"\x01" * 15), machine_id="m1")

    revoked = create(home)
    cli("issuer", "license", "revoke", revoked["license_id"], cwd=home)
    with pytest.raises(LicenseRevokedError):
        activate_online(server.url, PRODUCT, revoked["activation_key"], machine_id="m1")
    other = create(home, "--new-product", product="otherpanel")
    with pytest.raises(ProductMismatchError):
        activate_online(server.url, PRODUCT, other["activation_key"], machine_id="m1")

    lic = create(home, "--feature", "dns")
    token = activate_online(server.url, PRODUCT, lic["activation_key"], machine_id="m1")
    first = verifier_for(home, "m1").verify(token)
    assert first.has("dns")
    again = verifier_for(home, "m1").verify(activate_online(server.url, PRODUCT, lic["activation_key"], machine_id="m1"))
    assert again.activation_id == first.activation_id
    with pytest.raises(AlreadyActivatedError) as refused:
        activate_online(server.url, PRODUCT, lic["activation_key"], machine_id="m2")
    assert refused.value.regenerate_after is not None
    assert "possible from" in str(refused.value)


def test_manual_online_expired_license(home: Path, server: LicenseServer) -> None:
    import datetime as dt

    from support import FakeClock

    from issuer import Issuer

    clock = FakeClock(dt.datetime.now(dt.UTC) - dt.timedelta(days=10))
    key = Issuer(home / "ledger", home / "keys", clock=clock).create_license(PRODUCT, days=1).activation_key
    with pytest.raises(LicenseExpiredError):
        activate_online(server.url, PRODUCT, key, machine_id="m1")


# --- bad input -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "body", "status", "code"),
    [
        ("/v1/activations", b"{not json", 422, "bad-input"),
        ("/v1/activations", b'{"request_code": 12}', 422, "bad-input"),
        ("/v1/activations", b'{"request_code": ["LICET1.x"]}', 422, "bad-input"),
        ("/v1/activations", b"{}", 422, "bad-input"),
        ("/v1/activations", b"[]", 422, "bad-input"),
        ("/v1/activations", b'{"request_code": "LICET1.garbage"}', 422, "invalid-request-code"),
        ("/v1/activations", b'{"request_code": "' + b"A" * 20000 + b'"}', 413, "body-too-large"),
        ("/v1/activations/auto", b'{"product": "p"}', 422, "bad-input"),
        ("/v1/activations/auto", b'{"product": "p", "fingerprint": "mid", "callback_port": "80", "challenge_hash": "x"}', 422, "bad-input"),
        ("/v1/activations/auto", b'{"product": "p", "fingerprint": ["mid:zz"], "callback_port": 80, "challenge_hash": "' + b"a" * 64 + b'"}', 422, "bad-input"),
        ("/v1/activations/auto", b'{"product": "p", "fingerprint": ["x"], "callback_port": 70000, "challenge_hash": "' + b"a" * 64 + b'"}', 422, "bad-input"),
        ("/v1/nothing-here", b"{}", 404, "not-found"),
    ],
)
def test_bad_requests_get_problem_json_and_change_nothing(
    home: Path, server: LicenseServer, path: str, body: bytes, status: int, code: str
) -> None:
    before = ledger_bytes(home / "ledger")
    got_status, content_type, reply = post(server.url + path, body)
    assert (got_status, reply["code"]) == (status, code), reply
    assert content_type == "application/problem+json"
    assert set(reply) >= {"type", "title", "status", "detail", "code"} and reply["status"] == status
    assert ledger_bytes(home / "ledger") == before


def test_get_on_a_post_route_and_unknown_routes(server: LicenseServer) -> None:
    for path, status in (("/v1/activations", 405), ("/nope", 404)):
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(server.url + path, timeout=5)
        assert err.value.code == status
        assert err.value.headers["Content-Type"] == "application/problem+json"


def test_openapi_is_served(server: LicenseServer) -> None:
    with urllib.request.urlopen(server.url + "/openapi.json", timeout=5) as response:
        spec = json.loads(response.read())
    assert {"/v1/activations", "/v1/activations/auto", "/v1/health"} <= set(spec["paths"])


def test_repeated_wrong_keys_are_rate_limited(tmp_path: Path) -> None:
    from verifier.activation_key import key_from_bytes

    provider_home(tmp_path)
    good = create(tmp_path)
    srv = LicenseServer(tmp_path, "--failure-limit", "5")
    try:
        for i in range(5):
            with pytest.raises(InvalidActivationKeyError):
                activate_online(srv.url, PRODUCT, key_from_bytes(bytes([i]) * 15), machine_id="guesser")
        with pytest.raises(RateLimitedError, match="try again in"):
            activate_online(srv.url, PRODUCT, key_from_bytes(b"\x09" * 15), machine_id="guesser")
        with pytest.raises(RateLimitedError):  # even a right key waits out the window
            activate_online(srv.url, PRODUCT, good["activation_key"], machine_id="guesser")
        assert show(tmp_path, good["license_id"])["status"] == "issued"
    finally:
        srv.stop()


# --- races ---------------------------------------------------------------------------------------


def test_two_workers_and_eight_clients_yield_one_activation(tmp_path: Path) -> None:
    provider_home(tmp_path)
    lic = create(tmp_path)
    srv = LicenseServer(tmp_path, "--workers", "2")
    try:
        codes = [code_for(lic["activation_key"], f"racer-{i}") for i in range(8)]
        barrier, outcomes = threading.Barrier(8), []

        def racer(code: str) -> None:
            barrier.wait(timeout=60)
            outcomes.append(post(srv.url + "/v1/activations", json.dumps({"request_code": code}).encode())[0])

        threads = [threading.Thread(target=racer, args=(c,)) for c in codes]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
        assert sorted(outcomes) == [200] + [409] * 7
        history = show(tmp_path, lic["license_id"])["history"]
        assert [e["action"] for e in history].count("activated") == 1
    finally:
        srv.stop()


def test_online_and_cli_racing_yield_one_activation(home: Path, server: LicenseServer) -> None:
    import fcntl
    import os
    import subprocess

    from clirun import script

    lic = create(home)
    lock_fd = os.open(home / "ledger" / "ledger.lock", os.O_RDWR | os.O_CLOEXEC)
    fcntl.flock(lock_fd, fcntl.LOCK_EX)  # the server worker and the CLI both queue behind this
    online: list[object] = []

    def online_activation() -> None:
        try:
            online.append(activate_online(server.url, PRODUCT, lic["activation_key"], machine_id="online-box"))
        except LicenseError as err:
            online.append(err)

    try:
        cli_proc = subprocess.Popen([script("issuer"), "activate", code_for(lic["activation_key"], "cli-box")],
                                    cwd=home, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        thread = threading.Thread(target=online_activation)
        thread.start()
        lock = home / "ledger" / "ledger.lock"
        wait_until(lambda: has_open(cli_proc.pid, lock), 60, "the CLI to queue for the ledger lock")
        wait_until(lambda: has_open(server.proc.pid, lock), 60, "the server to queue for the ledger lock")
    finally:
        os.close(lock_fd)
    _, err = cli_proc.communicate(timeout=60)
    thread.join(timeout=60)
    wins = [cli_proc.returncode == 0, isinstance(online[0], str)]
    assert sum(wins) == 1, (cli_proc.returncode, err, online)
    loser = err if cli_proc.returncode else str(online[0])
    assert "already activated" in loser
    history = show(home, lic["license_id"])["history"]
    assert [e["action"] for e in history].count("activated") == 1
