"""The admin REST API through a real `issuer console` on 127.0.0.1."""

from __future__ import annotations

import datetime as dt
import getpass
import http.client
import ipaddress
import json
import re
import ssl
import subprocess
import threading
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

import pytest
from clirun import assert_one_line_refusal, cli, provider_home
from consoles import PASSWORD, ConsoleServer, add_user, api, license_files, make_token, post_huge
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from servers import LicenseServer
from support import PRODUCT, code_for

from issuer import Issuer
from issuer.web.license_server import SHUTDOWN_GRACE

OS_USER = getpass.getuser()


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # The first license names the module's product: tests that add other products
    # (with new_product) may then run in any order.
    folder = provider_home(tmp_path_factory.mktemp("console-api"), ("--product", PRODUCT))
    add_user(folder, "alice")
    return folder


@pytest.fixture(scope="module")
def console(home: Path) -> Iterator[ConsoleServer]:
    server = ConsoleServer(home)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def writer(home: Path) -> str:
    return make_token(home, "billing", "write")


@pytest.fixture(scope="module")
def reader(home: Path) -> str:
    return make_token(home, "dashboard", "read")


def create(console: ConsoleServer, token: str, **body: object) -> dict:  # type: ignore[type-arg]
    status, _, license = api(console.url, "POST", "/v1/admin/licenses", token, {"product": PRODUCT, **body})
    assert status == 201, license
    return license  # type: ignore[no-any-return]


def assert_problem(status: int, headers: dict[str, str], body: object, expected: int, code: str | None = None) -> None:
    assert status == expected, body
    assert headers["content-type"].startswith("application/problem+json")
    assert isinstance(body, dict) and body["status"] == expected and body["detail"] and body["code"]
    if code is not None:
        assert body["code"] == code, body


def test_no_token_or_a_wrong_one_is_401_and_read_tokens_cannot_write(home: Path, console: ConsoleServer, reader: str) -> None:
    for token in (None, "licet_" + "A" * 43, "not-a-token", ""):
        status, headers, body = api(console.url, "GET", "/v1/admin/licenses", token)
        assert_problem(status, headers, body, 401, "unauthorized")
        assert headers["www-authenticate"] == "Bearer"
    status, _, page = api(console.url, "GET", "/v1/admin/licenses", reader)
    assert status == 200 and "items" in page
    before = license_files(home)
    status, headers, body = api(console.url, "POST", "/v1/admin/licenses", reader, {"product": PRODUCT})
    assert_problem(status, headers, body, 403, "forbidden")
    assert license_files(home) == before


def test_a_revoked_token_stops_working_at_once(home: Path, console: ConsoleServer) -> None:
    token = make_token(home, "short-lived", "read")
    assert api(console.url, "GET", "/v1/admin/licenses?limit=1", token)[0] == 200
    cli("issuer", "admin", "token", "revoke", "short-lived", cwd=home)
    status, headers, body = api(console.url, "GET", "/v1/admin/licenses?limit=1", token)
    assert_problem(status, headers, body, 401, "unauthorized")


def test_create_read_patch_regenerate_revoke(home: Path, console: ConsoleServer, writer: str, reader: str) -> None:
    created = create(console, writer, customer="Acme GmbH", ip="203.0.113.10", days=365, features=["dns"], limits={"domains": 10})
    lid = created["license_id"]
    assert created["status"] == "issued" and created["activation_key"] and created["key_generation"] == 1
    assert created["customer"] == "Acme GmbH" and created["ip"] == "203.0.113.10" and created["features"] == ["dns"]

    status, _, shown = api(console.url, "GET", f"/v1/admin/licenses/{lid}", reader)
    assert status == 200
    assert "activation_key" not in shown  # a read-scope token never sees keys; a write one does
    assert api(console.url, "GET", f"/v1/admin/licenses/{lid}", writer)[2]["activation_key"] == created["activation_key"]
    assert shown["activation"] is None and shown["next_regeneration"] and shown["history"][0]["action"] == "created"
    assert shown["history"][0]["actor"] == "api:billing"

    status, _, patched = api(console.url, "PATCH", f"/v1/admin/licenses/{lid}", writer,
                             {"customer": "Acme AG", "ip": None, "features": ["dns", "mail"], "limits": {"domains": 20}, "expires": "2031-12-31"})
    assert status == 200, patched
    assert patched["customer"] == "Acme AG" and patched["ip"] is None
    assert patched["features"] == ["dns", "mail"] and patched["limits"] == {"domains": 20}
    assert patched["expires_at"].startswith("2032-01-01")  # usable through 2031-12-31
    change = patched["history"][-1]
    assert change["action"] == "updated" and change["actor"] == "api:billing"
    assert change["changes"]["customer"] == {"before": "Acme GmbH", "after": "Acme AG"}
    assert change["changes"]["ip"] == {"before": "203.0.113.10", "after": None}
    assert "product" not in change["changes"]  # only what changed

    status, _, leased = api(console.url, "PATCH", f"/v1/admin/licenses/{lid}", writer, {"lease_days": 7})
    assert status == 200 and leased["lease_days"] == 7 and not leased["lease_days_default"]
    assert leased["history"][-1]["changes"] == {"lease_days": {"before": None, "after": 7}}
    status, _, leased = api(console.url, "PATCH", f"/v1/admin/licenses/{lid}", writer, {"lease_days": None})
    assert status == 200 and leased["lease_days_default"]
    assert create(console, writer, lease_days=0)["lease_days"] == 0

    status, _, regenerated = api(console.url, "POST", f"/v1/admin/licenses/{lid}/regenerate", writer)
    assert status == 200
    assert regenerated["key_generation"] == 2 and regenerated["activation_key"] != created["activation_key"]
    month_later = dt.date.fromisoformat(regenerated["next_regeneration"][:10])
    assert month_later > dt.datetime.now(dt.UTC).date()

    before = license_files(home)
    status, headers, body = api(console.url, "POST", f"/v1/admin/licenses/{lid}/regenerate", writer)
    assert_problem(status, headers, body, 409, "regeneration-too-soon")
    assert body["allowed_from"][:10] == month_later.isoformat()
    assert month_later.isoformat() in body["detail"]
    assert license_files(home) == before

    status, _, revoked = api(console.url, "POST", f"/v1/admin/licenses/{lid}/revoke", writer)
    assert status == 200 and revoked["status"] == "revoked"
    status, headers, body = api(console.url, "POST", f"/v1/admin/licenses/{lid}/revoke", writer)
    assert_problem(status, headers, body, 403, "license-revoked")

    status, headers, body = api(console.url, "GET", "/v1/admin/licenses/LIC-NOSUCHONE0", reader)
    assert_problem(status, headers, body, 404, "license-not-found")


def test_pagination_visits_every_license_exactly_once(home: Path, console: ConsoleServer, writer: str, reader: str) -> None:
    product = "pagetest"
    Issuer(home / "ledger", home / "keys").create_licenses(125, product)
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        query = f"/v1/admin/licenses?product={product}&limit=9" + (f"&cursor={cursor}" if cursor else "")
        status, _, page = api(console.url, "GET", query, reader)
        assert status == 200, page
        seen += [item["license_id"] for item in page["items"]]
        assert all(item["product"] == product for item in page["items"])
        pages += 1
        if pages == 3:  # licenses created while a client pages through do not disturb its walk
            create(console, writer, customer="late")
            Issuer(home / "ledger", home / "keys").create_licenses(3, product)
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == len(set(seen)) == 125
    assert pages == 14  # 13 full pages of 9 and one of 8
    everything = {v.license_id for v in Issuer(home / "ledger", home / "keys").licenses() if v.record.product == product}
    assert set(seen) | set() <= everything and len(everything) == 128


def test_search_and_filters(home: Path, console: ConsoleServer, writer: str, reader: str) -> None:
    one = create(console, writer, customer="Zebra Hosting Ltd", ip="198.51.100.77")
    two = create(console, writer, customer="zebra cloud")
    api(console.url, "POST", f"/v1/admin/licenses/{two['license_id']}/revoke", writer)
    def ids(query: str) -> set[str]:
        status, _, page = api(console.url, "GET", "/v1/admin/licenses?" + query, reader)
        assert status == 200, page
        return {item["license_id"] for item in page["items"]}
    assert ids("q=ZEBRA") == {one["license_id"], two["license_id"]}
    assert ids("q=198.51.100.77") == {one["license_id"]}
    assert ids(f"q={one['license_id'][-6:].lower()}") == {one["license_id"]}
    assert ids("q=zebra&status=revoked") == {two["license_id"]}
    assert ids("q=zebra&status=issued") == {one["license_id"]}
    assert ids("q=zebra&product=other") == set()


def test_search_finds_a_license_by_its_current_key_hostname_and_activation_id(home: Path, console: ConsoleServer,
                                                                              writer: str, reader: str) -> None:
    lid = create(console, writer, customer="Keyed Co")["license_id"]
    old_key = api(console.url, "GET", f"/v1/admin/licenses/{lid}", writer)[2]["activation_key"]
    status, _, regenerated = api(console.url, "POST", f"/v1/admin/licenses/{lid}/regenerate", writer)
    assert status == 200, regenerated
    key = regenerated["activation_key"]
    cli("issuer", "activate", code_for(key, "api-host-9.example"), cwd=home)
    activation_id = api(console.url, "GET", f"/v1/admin/licenses/{lid}", reader)[2]["activation"]["activation_id"]

    def ids(text: str) -> list[str]:
        status, _, page = api(console.url, "GET", "/v1/admin/licenses?" + urllib.parse.urlencode({"q": text}), reader)
        assert status == 200, page
        return [item["license_id"] for item in page["items"]]
    for text in (key, key.replace("-", "").lower(), "API-HOST-9", activation_id, activation_id.lower(), lid.lower()):
        assert ids(text) == [lid], text
    assert ids(old_key) == [] and ids(old_key.replace("-", "")) == []


def test_refusals_name_the_apis_own_fields(home: Path, console: ConsoleServer, writer: str) -> None:
    before = license_files(home)
    status, headers, body = api(console.url, "POST", "/v1/admin/licenses", writer, {"product": "brandnewpanel"})
    assert_problem(status, headers, body, 422, "unknown-product")
    assert body["detail"].endswith("add it as a new product (new_product)") and "--" not in body["detail"]
    status, headers, body = api(console.url, "POST", "/v1/admin/licenses", writer,
                                {"product": PRODUCT, "days": 30, "expires": "2030-01-01"})
    assert_problem(status, headers, body, 422, "bad-input")
    assert body["detail"] == "give days or expires, not both"
    assert license_files(home) == before


def test_a_console_without_users_says_how_to_add_one(tmp_path: Path) -> None:
    home = provider_home(tmp_path)
    server = ConsoleServer(home)
    try:
        assert "no console users yet: issuer admin user add NAME" in server.output().splitlines()
    finally:
        server.stop()
    add_user(home, "alice")
    server = ConsoleServer(home)
    try:
        assert "no console users" not in server.output()
    finally:
        server.stop()


def test_events_feed_follows_every_door_in_order(home: Path, console: ConsoleServer, writer: str, reader: str) -> None:
    status, _, start = api(console.url, "GET", "/v1/admin/events?limit=200", reader)
    after = start["next_cursor"]
    while True:  # catch up to the end of the log
        status, _, page = api(console.url, "GET", f"/v1/admin/events?after={after}&limit=200", reader)
        if not page["items"]:
            break
        after = page["next_cursor"]

    by_cli = json.loads(cli("issuer", "license", "create", "--product", PRODUCT, "--json", cwd=home).stdout)
    by_api = create(console, writer)
    api(console.url, "PATCH", f"/v1/admin/licenses/{by_cli['license_id']}", writer, {"customer": "from billing"})
    server = LicenseServer(home)
    try:
        cli("verifier", "activate", "--server", server.url, "--product", PRODUCT, "--key", by_api["activation_key"],
            "--trusted-keys", "keys/trusted_keys.json", "--store", "panel.token", "--machine-id", "panel-one", cwd=home)
    finally:
        server.stop()
    cli("issuer", "license", "set", by_api["license_id"], "--customer", "from the cli", cwd=home)

    events = []
    cursor = after
    while True:  # two at a time, to walk the feed's pages too
        status, _, page = api(console.url, "GET", f"/v1/admin/events?after={cursor}&limit=2", reader)
        assert status == 200
        if not page["items"]:
            assert page["next_cursor"] == cursor
            break
        events += page["items"]
        cursor = page["next_cursor"]
    assert [int(e["cursor"]) for e in events] == list(range(int(after) + 1, int(after) + 1 + len(events)))
    assert [(e["action"], e["actor"], e["license_id"]) for e in events] == [
        ("created", f"cli:{OS_USER}", by_cli["license_id"]),
        ("created", "api:billing", by_api["license_id"]),
        ("updated", "api:billing", by_cli["license_id"]),
        ("activated", "panel:online", by_api["license_id"]),
        ("updated", f"cli:{OS_USER}", by_api["license_id"]),
    ]
    assert events[2]["changes"] == {"customer": {"before": None, "after": "from billing"}}
    assert events[3]["changes"]["status"] == {"before": "issued", "after": "activated"}
    assert all(dt.datetime.fromisoformat(e["time"]).tzinfo is not None for e in events)
    assert set(events[0]) == {"cursor", "time", "actor", "action", "license_id", "changes"}


BAD_BODIES: list[tuple[str, bytes, int, str]] = [
    ("not JSON", b"{product: ", 422, "bad-input"),
    ("a list", b"[]", 422, "bad-input"),
    ("wrong type: product", json.dumps({"product": 5}).encode(), 422, "bad-input"),
    ("wrong type: days", json.dumps({"product": PRODUCT, "days": "30"}).encode(), 422, "bad-input"),
    ("wrong type: features", json.dumps({"product": PRODUCT, "features": "dns"}).encode(), 422, "bad-input"),
    ("wrong type: limit", json.dumps({"product": PRODUCT, "limits": {"domains": "10"}}).encode(), 422, "bad-input"),
    ("negative limit", json.dumps({"product": PRODUCT, "limits": {"domains": -1}}).encode(), 422, "bad-input"),
    ("bool days", json.dumps({"product": PRODUCT, "days": True}).encode(), 422, "bad-input"),
    ("unknown field", json.dumps({"product": PRODUCT, "owner": "x"}).encode(), 422, "bad-input"),
    ("oversized customer", json.dumps({"product": PRODUCT, "customer": "x" * 5000}).encode(), 422, "bad-input"),
    ("control characters", json.dumps({"product": PRODUCT, "customer": "a\u0000b"}).encode(), 422, "bad-input"),
    ("bad product name", json.dumps({"product": "../etc"}).encode(), 422, "bad-input"),
    ("bad ip", json.dumps({"product": PRODUCT, "ip": "300.1.1.1"}).encode(), 422, "bad-input"),
    ("bad date", json.dumps({"product": PRODUCT, "expires": "2027-02-30"}).encode(), 422, "bad-input"),
    ("past date", json.dumps({"product": PRODUCT, "expires": "2001-01-01"}).encode(), 422, "expiry-out-of-range"),
    ("year zero", json.dumps({"product": PRODUCT, "expires": "0000-01-01"}).encode(), 422, "bad-input"),
    ("fraction of a day", json.dumps({"product": PRODUCT, "days": 30.5}).encode(), 422, "bad-input"),
    ("padded ip", json.dumps({"product": PRODUCT, "ip": " 203.0.113.1"}).encode(), 422, "bad-input"),
    ("days and expires", json.dumps({"product": PRODUCT, "days": 3, "expires": "2031-01-01"}).encode(), 422, "bad-input"),
    ("huge body", json.dumps({"product": PRODUCT, "customer": "x" * (2 << 20)}).encode(), 413, "body-too-large"),
    ("negative lease", json.dumps({"product": PRODUCT, "lease_days": -1}).encode(), 422, "bad-input"),
    ("too many features", json.dumps({"product": PRODUCT, "features": [f"f{i}" for i in range(100)]}).encode(), 422, "bad-input"),
]


@pytest.mark.parametrize(("what", "raw", "expected", "code"), BAD_BODIES, ids=[b[0] for b in BAD_BODIES])
def test_bad_create_bodies_are_refused_and_change_nothing(home: Path, console: ConsoleServer, writer: str,
                                                           what: str, raw: bytes, expected: int, code: str) -> None:
    before = license_files(home)
    if len(raw) > 1 << 20:
        status, headers, body = post_huge(console.url, "/v1/admin/licenses", writer, raw)
    else:
        status, headers, body = api(console.url, "POST", "/v1/admin/licenses", writer, raw=raw)
    assert_problem(status, headers, body, expected, code)
    assert license_files(home) == before


def test_bad_patches_and_path_tricks_change_nothing(home: Path, console: ConsoleServer, writer: str, reader: str) -> None:
    lid = create(console, writer, customer="<b>keep</b>")["license_id"]
    before = license_files(home)
    for body, expected in [({"customer": 7}, 422), ({"product": "other"}, 422), ({"status": "activated"}, 422),
                           ({"ip": "localhost"}, 422), ({"limits": {"a b": 1}}, 422), ({"features": ["ok", "no way"]}, 422),
                           ({"expires": "yesterday"}, 422), ({"days": 0}, 422)]:
        status, headers, problem = api(console.url, "PATCH", f"/v1/admin/licenses/{lid}", writer, body)
        assert_problem(status, headers, problem, expected)
    for path in ["/v1/admin/licenses/..%2F..%2Fledger.json", "/v1/admin/licenses/%2e%2e", "/v1/admin/licenses/LIC-1%00",
                 "/v1/admin/licenses/" + "A" * 300, "/v1/admin/licenses/../../ledger/ledger.json"]:
        status, headers, problem = api(console.url, "GET", path, reader)
        assert 400 <= status < 500 and headers["content-type"].startswith("application/problem+json"), (path, status)
        status, headers, problem = api(console.url, "PATCH", path, writer, {"customer": "x"})
        assert 400 <= status < 500, (path, status)
    for query in ["cursor=abc", "cursor=-1", "limit=0", "limit=100000", "status=deleted", "product=../x"]:
        status, headers, problem = api(console.url, "GET", f"/v1/admin/licenses?{query}", reader)
        assert_problem(status, headers, problem, status)
        assert status == 422, query
    assert license_files(home) == before


def test_tokens_and_passwords_are_never_stored_in_clear(home: Path, console: ConsoleServer, writer: str, reader: str) -> None:
    everything = b"".join(p.read_bytes() for p in (home / "ledger").rglob("*") if p.is_file())
    for secret in (writer, reader, PASSWORD):
        assert secret.encode() not in everything
        assert json.dumps(secret).encode() not in everything
    users = json.loads((home / "ledger" / "accounts" / "accounts.json").read_text())
    hashes = [doc["secret_hash"] for doc in users["accounts"].values() if doc["kind"] == "user"]
    assert hashes and all(h.startswith("$argon2id$") for h in hashes)
    listed = cli("issuer", "admin", "token", "list", "--json", cwd=home).stdout
    assert writer not in listed and "billing" in listed


def test_console_and_cli_changing_one_license_at_once_lose_nothing(home: Path, console: ConsoleServer, writer: str) -> None:
    lid = create(console, writer, ip="192.0.2.1")["license_id"]
    rounds = 8
    errors: list[str] = []

    def through_api() -> None:
        for i in range(rounds):
            status, _, body = api(console.url, "PATCH", f"/v1/admin/licenses/{lid}", writer, {"customer": f"api-{i}"})
            if status != 200:
                errors.append(str(body))

    def through_cli() -> None:
        for i in range(rounds):
            proc = cli("issuer", "license", "set", lid, "--ip", f"192.0.2.{10 + i}", "--feature", f"f{i}", cwd=home, check=None)
            if proc.returncode != 0:
                errors.append(proc.stderr)

    threads = [threading.Thread(target=through_api), threading.Thread(target=through_cli)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    shown = json.loads(cli("issuer", "license", "show", lid, "--json", cwd=home).stdout)
    assert shown["customer"] == f"api-{rounds - 1}"
    assert shown["ip"] == f"192.0.2.{10 + rounds - 1}" and shown["features"] == [f"f{rounds - 1}"]
    updates = [e for e in shown["history"] if e["action"] == "updated"]
    assert len(updates) == 2 * rounds
    assert sorted(e["actor"] for e in updates) == sorted(["api:billing"] * rounds + [f"cli:{OS_USER}"] * rounds)
    history = json.loads(cli("issuer", "license", "history", lid, "--json", cwd=home).stdout)
    assert [(e["action"], e["actor"], e["changes"]) for e in history] == [(e["action"], e["actor"], e["changes"]) for e in shown["history"]]
    # The IP index followed every change: only the last address finds the license.
    ledger = Issuer(home / "ledger", home / "keys").ledger
    assert [r.license_id for r in ledger.licenses_for_ip(f"192.0.2.{10 + rounds - 1}")] == [lid]
    assert ledger.licenses_for_ip("192.0.2.1") == [] and ledger.licenses_for_ip("192.0.2.10") == []


def test_the_openapi_document_lists_every_verb_status_and_the_problem_schema(console: ConsoleServer) -> None:
    status, _, doc = api(console.url, "GET", "/openapi.json", None)
    assert status == 200
    paths = doc["paths"]
    assert set(paths["/v1/admin/licenses"]) == {"get", "post"}
    assert set(paths["/v1/admin/licenses/{license_id}"]) == {"get", "patch"}
    assert "post" in paths["/v1/admin/licenses/{license_id}/regenerate"]
    assert "post" in paths["/v1/admin/licenses/{license_id}/revoke"]
    assert "get" in paths["/v1/admin/events"]
    regenerate = paths["/v1/admin/licenses/{license_id}/regenerate"]["post"]["responses"]
    assert {"200", "401", "403", "404", "409", "422"} <= set(regenerate)
    too_soon = regenerate["409"]["content"]["application/problem+json"]["schema"]["allOf"]
    assert too_soon[0]["$ref"].endswith("/Problem") and too_soon[1]["properties"]["code"]["enum"] == ["regeneration-too-soon"]
    assert "application/problem+json" in regenerate["422"]["content"]
    assert {"type", "title", "status", "detail", "code", "allowed_from"} <= set(doc["components"]["schemas"]["Problem"]["properties"])
    assert doc["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"
    assert not any(p.startswith("/licenses") or p == "/login" for p in paths)  # pages are not API


def test_a_public_address_needs_tls_or_an_explicit_flag(home: Path) -> None:
    for host in ("0.0.0.0", "192.0.2.1", "::"):
        proc = cli("issuer", "console", "--host", host, "--port", "1", cwd=home, check=None)
        assert_one_line_refusal(proc, "without TLS", code=2)
    proc = cli("issuer", "console", "--tls-cert", "cert.pem", cwd=home, check=None)
    assert_one_line_refusal(proc, "both --tls-cert and --tls-key", code=2)


def _self_signed(folder: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1)).not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = folder / "tls-cert.pem", folder / "tls-key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    key_path.chmod(0o600)
    return cert_path, key_path


@pytest.mark.slow  # waits out the shutdown grace for the idle TLS connection
def test_under_tls_the_session_cookie_is_secure(home: Path) -> None:
    cert, key = _self_signed(home)
    context = ssl.create_default_context(cafile=str(cert))
    server = ConsoleServer(home, "--tls-cert", str(cert), "--tls-key", str(key), context=context)
    try:
        conn = http.client.HTTPSConnection("127.0.0.1", server.port, context=context, timeout=10)
        conn.request("GET", "/login")
        page = conn.getresponse()
        html = page.read().decode()
        login_cookie = page.getheader("set-cookie") or ""
        assert {"Secure", "HttpOnly", "SameSite=strict"} <= {p.strip() for p in login_cookie.split(";")}
        assert page.getheader("strict-transport-security")
        csrf = re.search(r'name="csrf" value="([0-9a-f]+)"', html).group(1)  # type: ignore[union-attr]
        body = urllib.parse.urlencode({"csrf": csrf, "user": "alice", "password": PASSWORD})
        conn.request("POST", "/login", body=body, headers={
            "Content-Type": "application/x-www-form-urlencoded", "Cookie": login_cookie.split(";")[0]})
        answer = conn.getresponse()
        answer.read()
        assert answer.status == 303
        session = [v for k, v in answer.getheaders() if k.lower() == "set-cookie" and v.startswith("licet_session=")]
        assert session and {"Secure", "HttpOnly", "SameSite=strict"} <= {p.strip() for p in session[0].split(";")}
        # A browser keeps its connection open: a restart must not wait for asyncio's
        # 30-second TLS shut-down of it, only for the grace given to requests in progress.
        server.proc.terminate()
        try:
            server.proc.wait(timeout=SHUTDOWN_GRACE + 10)
        except subprocess.TimeoutExpired:
            pytest.fail("issuer console under TLS did not exit on SIGTERM while a browser connection idled")
        conn.close()
    finally:
        server.stop()
