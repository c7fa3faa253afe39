"""Renewal and the revocation list against a real `issuer serve`, and through the console scripts."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from clirun import assert_one_line_refusal, cli, provider_home
from servers import LicenseServer, post_json
from support import PRODUCT, code_for, ledger_bytes, wait_past_second

from verifier import (
    ActivationSupersededError,
    LicenseRevokedError,
    RateLimitedError,
    TokenState,
    TokenStore,
    TrustedKeys,
    Verifier,
    WrongServerError,
    renewal_code,
)
from verifier.client import fetch_revocations, renew_online


@pytest.fixture(scope="module")
def server(home: Path) -> Iterator[LicenseServer]:
    srv = LicenseServer(home, "--failure-limit", "50")
    yield srv
    srv.stop()


def create(home: Path, *extra: str) -> dict:  # type: ignore[type-arg]
    return json.loads(cli("issuer", "license", "create", "--product", PRODUCT, "--json", *extra, cwd=home).stdout)


def panel(home: Path, tmp_path: Path, machine: str) -> tuple[Verifier, TokenStore]:
    store = TokenStore(tmp_path / f"{machine}.token")
    keys = TrustedKeys.from_file(home / "keys" / "trusted_keys.json")
    return Verifier(PRODUCT, keys, machine_id=f"machine-{machine}", store=store), store


def activated(home: Path, tmp_path: Path, machine: str, *extra: str) -> tuple[dict, Verifier, TokenStore]:  # type: ignore[type-arg]
    lic = create(home, *extra)
    token = cli("issuer", "activate", code_for(lic["activation_key"], machine), cwd=home).stdout.strip()
    v, store = panel(home, tmp_path, machine)
    v.verify(token)
    store.save(token)
    return lic, v, store


def post(url: str, body: bytes) -> tuple[int, str, dict]:  # type: ignore[type-arg]
    return post_json(url, body)  # type: ignore[no-any-return]


def get(url: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], str]:
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, {k.lower(): v for k, v in response.headers.items()}, response.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, {k.lower(): v for k, v in err.headers.items()}, err.read().decode()


def test_online_renewal_keeps_the_activation_and_extends_the_lease(home: Path, server: LicenseServer, tmp_path: Path) -> None:
    # A 2-day lease: a 30-day one may already end at its calendar cap (the start of the
    # day a month ahead), which a renewal a second later cannot move.
    lic, v, store = activated(home, tmp_path, "renew-a", "--days", "365", "--lease-days", "2")
    first = v.verify(store.load())
    wait_past_second()  # a token's times are whole seconds: the renewal must be in a later one
    renewed = renew_online(server.url, v, store)
    assert renewed.activation_id == first.activation_id and renewed.license_id == lic["license_id"]
    assert renewed.exp > first.exp and renewed.iat > first.iat
    assert v.verify(store.load()) == renewed
    shown = json.loads(cli("issuer", "license", "show", lic["license_id"], "--json", cwd=home).stdout)
    assert shown["history"][-1]["action"] == "renewed" and "online" in shown["history"][-1]["detail"]
    assert shown["activation"]["renewed_at"] is not None


def test_superseded_activation_gets_409(home: Path, server: LicenseServer, tmp_path: Path) -> None:
    lic, v, store = activated(home, tmp_path, "renew-b")
    cli("issuer", "license", "regenerate", lic["license_id"], cwd=home)
    held = store.load()
    with pytest.raises(ActivationSupersededError):
        renew_online(server.url, v, store)
    assert store.load() == held  # nothing replaced, but the refusal stops it at once
    assert v.status(held).state == TokenState.SUPERSEDED
    status, kind, body = post(server.url + "/v1/renewals",
                              json.dumps({"renewal_code": renewal_code(held, product=PRODUCT, machine_id="machine-renew-b")}).encode())
    assert (status, kind, body["code"]) == (409, "application/problem+json", "activation-superseded")


def test_revoked_license_is_refused_and_the_list_stops_it_offline(home: Path, server: LicenseServer, tmp_path: Path) -> None:
    lic, v, store = activated(home, tmp_path, "renew-c")
    cli("issuer", "license", "revoke", lic["license_id"], cwd=home)
    assert v.status(store.load()).state == TokenState.VALID  # until the panel learns of it
    applied = fetch_revocations(server.url, v)
    assert lic["license_id"] in applied.licenses
    assert v.status(store.load()).state == TokenState.REVOKED
    assert TokenStore(store.path).load_revocations() == applied.text
    with pytest.raises(LicenseRevokedError):
        renew_online(server.url, v, store)


def test_renewal_from_another_server_is_refused(home: Path, server: LicenseServer, tmp_path: Path) -> None:
    _, _, store = activated(home, tmp_path, "renew-d")
    thief, thief_store = panel(home, tmp_path, "thief")
    thief_store.save(store.load() or "")
    before = ledger_bytes(home / "ledger")
    with pytest.raises(WrongServerError):
        renew_online(server.url, thief, thief_store)
    assert ledger_bytes(home / "ledger") == before


@pytest.mark.parametrize("body", [
    b'{"renewal_code": "garbage"}',
    b'{"renewal_code": "LICET1R.AAAA"}',
    b'{"renewal_code": 42}',
    b'{"renewal_code": ["LICET1R."]}',
    b'{"renewal_code": ' + json.dumps("LICET1R." + "A" * 5000).encode() + b"}",
    b"{not json",
    b"[]",
])
def test_garbage_renewal_codes_get_problem_json_and_change_nothing(home: Path, server: LicenseServer, body: bytes) -> None:
    before = ledger_bytes(home / "ledger")
    status, kind, reply = post(server.url + "/v1/renewals", body)
    assert 400 <= status < 500 and kind == "application/problem+json"
    assert reply["code"] in ("invalid-renewal-code", "bad-input") and "\n" not in reply["detail"]
    assert ledger_bytes(home / "ledger") == before


def test_revocation_list_is_served_with_an_etag(home: Path, server: LicenseServer, tmp_path: Path) -> None:
    status, headers, text = get(server.url + "/v1/revocations")
    assert status == 200 and headers["content-type"].startswith("application/jwt")
    assert text.count(".") == 2 and headers["etag"].startswith('"')
    assert get(server.url + "/v1/revocations", {"If-None-Match": headers["etag"]})[0] == 304
    v, _ = panel(home, tmp_path, "etag")
    first = fetch_revocations(server.url, v)
    assert fetch_revocations(server.url, v) == first  # answered 304: nothing new
    lic = create(home)
    cli("issuer", "license", "revoke", lic["license_id"], cwd=home)
    status, newer, _ = get(server.url + "/v1/revocations", {"If-None-Match": headers["etag"]})
    assert status == 200 and newer["etag"] != headers["etag"]
    assert fetch_revocations(server.url, v).serial == first.serial + 1


def test_cron_renewal_through_the_console_script(home: Path, server: LicenseServer, tmp_path: Path) -> None:
    lic, _, store = activated(home, tmp_path, "cron")
    base = ["--product", PRODUCT, "--trusted-keys", str(home / "keys" / "trusted_keys.json"),
            "--store", str(store.path), "--machine-id", "machine-cron"]
    not_due = cli("verifier", "renew", "--server", server.url, *base, cwd=tmp_path)
    assert "not due" in not_due.stdout
    forced = cli("verifier", "renew", "--server", server.url, "--force", *base, cwd=tmp_path)
    assert forced.stdout.startswith("renewed: license " + lic["license_id"])
    status = json.loads(cli("verifier", "status", *base, "--json", cwd=tmp_path).stdout)
    for name in ("state", "license_id", "product", "features", "expires_at", "renew_at",
                 "license_expires_at", "days_left", "revocations_serial"):
        assert name in status, name
    # A 30-day lease, a day or two shorter when the next month is short.
    assert status["state"] == "valid" and 27 <= status["days_left"] <= 30
    cli("issuer", "license", "regenerate", lic["license_id"], cwd=home)
    refused = cli("verifier", "renew", "--server", server.url, "--force", *base, cwd=tmp_path, check=None)
    assert_one_line_refusal(refused, "superseded")
    unreachable = cli("verifier", "renew", "--server", "http://127.0.0.1:9", "--force", *base, cwd=tmp_path, check=None)
    assert_one_line_refusal(unreachable, "cannot reach the license server")


def test_renewals_are_rate_limited_like_activations(tmp_path: Path) -> None:
    home = provider_home(tmp_path)
    srv = LicenseServer(home, "--failure-limit", "2")
    try:
        lic = create(home)
        token = cli("issuer", "activate", code_for(lic["activation_key"], "victim"), cwd=home).stdout.strip()
        guess = renewal_code(token, product=PRODUCT, machine_id="machine-guesser")
        for _ in range(2):
            assert post(srv.url + "/v1/renewals", json.dumps({"renewal_code": guess}).encode())[2]["code"] == "wrong-server"
        status, _, reply = post(srv.url + "/v1/renewals", json.dumps({"renewal_code": guess}).encode())
        assert (status, reply["code"]) == (429, RateLimitedError.code)
    finally:
        srv.stop()
