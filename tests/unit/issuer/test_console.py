"""The console's pages in-process, with an injected clock: sessions, CSRF, cookies, login limits, escaping.

Every test runs on a TinyDB ledger and on a PostgreSQL one: the console keeps
its users, sessions and login failures in whichever the provider has."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from pgsupport import LedgerSite
from support import PRODUCT, FakeClock, make_issuer, one_hash_per_password, request_for

from issuer import Issuer, IssuerConfig
from issuer.errors import AuthenticationError
from issuer.licensing.accounts import AccountsConfig
from issuer.web.console_app import ConsoleConfig, create_console_app
from verifier.errors import BadInputError, RateLimitedError

PASSWORD = "correct horse battery staple"
XSS = ['<script>alert(1)</script>', '"><img src=x onerror=alert(1)>', "{{ 7*7 }}</td><b>bold</b>"]


@pytest.fixture(autouse=True)
def _shared_password_hashes(monkeypatch: pytest.MonkeyPatch) -> None:
    one_hash_per_password(monkeypatch)

@pytest.fixture(params=["tinydb", "postgres"])
def site(request: pytest.FixtureRequest, tmp_path: Path) -> LedgerSite:
    """One TinyDB layout is enough here: accounts and sessions are not sharded."""
    if request.param == "postgres":
        return LedgerSite("postgres", request.getfixturevalue("pg_url"))
    return LedgerSite("tinydb", str(tmp_path / "ledger"))


@pytest.fixture
def iss(tmp_path: Path, clock: FakeClock, site: LedgerSite) -> Issuer:
    issuer = make_issuer(tmp_path, clock, ledger=site.url)
    issuer.add_user("alice", PASSWORD)
    issuer.add_user("bob", PASSWORD)
    return issuer  # type: ignore[no-any-return]


def client_for(iss: Issuer, clock: FakeClock, tmp_path: Path, secure: bool = False) -> TestClient:
    config = ConsoleConfig(ledger=iss.ledger.location, keys=str(tmp_path / "keys"), secure_cookies=secure)
    return TestClient(create_console_app(config, clock=clock, issuer=iss), follow_redirects=False)


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf" value="([0-9a-f]+)"', html)
    assert found, html
    return found.group(1)


def failing_subjects(site: LedgerSite) -> list[str]:
    """The user names and addresses the ledger stores failed logins for, read from its storage."""
    if site.kind == "postgres":
        import psycopg

        with psycopg.connect(site.url) as conn:
            return sorted(row[0] for row in conn.execute("SELECT subject FROM licet.login_failures"))
    logins = Path(site.url) / "accounts" / "logins.json"
    return sorted(doc["subject"] for table in json.loads(logins.read_text()).values() for doc in table.values())


def login(client: TestClient, user: str = "alice", password: str = PASSWORD) -> object:
    page = client.get("/login")
    return client.post("/login", data={"csrf": csrf_of(page.text), "user": user, "password": password})


def test_login_gives_a_strict_httponly_session_cookie(iss: Issuer, clock: FakeClock, tmp_path: Path) -> None:
    client = client_for(iss, clock, tmp_path)
    assert client.get("/").headers["location"] == "/login"
    response = login(client)
    assert response.status_code == 303 and response.headers["location"] == "/"
    cookie = next(c for c in response.headers.get_list("set-cookie") if c.startswith("licet_session="))
    flags = {part.strip().lower() for part in cookie.split(";")[1:]}
    assert "httponly" in flags and "samesite=strict" in flags and "path=/" in flags
    assert "secure" not in flags  # plain HTTP on loopback: a Secure cookie would never come back
    assert client.get("/").status_code == 200
    page = client.get("/")
    assert page.headers["content-security-policy"].startswith("default-src 'none'")
    assert page.headers["x-frame-options"] == "DENY" and page.headers["cache-control"] == "no-store"


def test_session_cookie_is_secure_under_tls(iss: Issuer, clock: FakeClock, tmp_path: Path) -> None:
    client = client_for(iss, clock, tmp_path, secure=True)
    page = client.get("/login")
    login_cookie = page.headers["set-cookie"]
    assert "secure" in login_cookie.lower() and "samesite=strict" in login_cookie.lower()
    client.cookies.set("licet_login", login_cookie.split(";")[0].split("=", 1)[1])
    response = client.post("/login", data={"csrf": csrf_of(page.text), "user": "alice", "password": PASSWORD})
    cookie = next(c for c in response.headers.get_list("set-cookie") if c.startswith("licet_session="))
    assert {"secure", "httponly", "samesite=strict"} <= {p.strip().lower() for p in cookie.split(";")[1:]}


def test_wrong_password_and_unknown_user_get_the_same_answer(iss: Issuer, clock: FakeClock, tmp_path: Path) -> None:
    client = client_for(iss, clock, tmp_path)
    wrong = login(client, "alice", "not the password at all")
    unknown = login(client, "mallory", PASSWORD)
    assert wrong.status_code == unknown.status_code == 401
    assert re.search(r'id="message"[^>]*>([^<]*)', wrong.text).group(1) == re.search(r'id="message"[^>]*>([^<]*)', unknown.text).group(1)
    assert "licet_session" not in wrong.headers.get("set-cookie", "")


def test_login_is_rate_limited_per_user_name_from_an_address(iss: Issuer, clock: FakeClock, tmp_path: Path) -> None:
    client = client_for(iss, clock, tmp_path)
    for _ in range(5):
        assert login(client, "alice", "wrong password, surely").status_code == 401
    refused = login(client, "alice", PASSWORD)  # even the right password, for now
    assert refused.status_code == 429 and "too many failed logins for this user name from this address" in refused.text
    assert refused.headers["retry-after"] == "900"
    clock.advance(minutes=5)
    assert login(client, "alice", PASSWORD).headers["retry-after"] == "600"
    # Another name from that address, and the name from another address, are not refused.
    assert login(client, "bob", PASSWORD).status_code == 303
    assert iss.session(iss.login("alice", PASSWORD, address="198.51.100.7")).actor == "console:alice"
    clock.advance(minutes=10, seconds=1)
    assert login(client, "alice", PASSWORD).status_code == 303


def test_a_right_password_clears_its_names_failures_from_that_address_only(iss: Issuer, clock: FakeClock, site: LedgerSite) -> None:
    for address in ("198.51.100.1", "198.51.100.2"):
        for _ in range(4):
            with pytest.raises(AuthenticationError):
                iss.login("alice", "a wrong guess, again", address=address)
    iss.login("alice", PASSWORD, address="198.51.100.1")
    since = clock.now - dt.timedelta(days=1)
    assert iss.ledger.login_failures(["user:alice from 198.51.100.1"], since) == 0
    assert iss.ledger.login_failures(["address:198.51.100.1"], since) == 4  # the address keeps its failures
    assert iss.ledger.login_failures(["user:alice from 198.51.100.2"], since) == 4
    with pytest.raises(AuthenticationError):
        iss.login("alice", "a wrong guess, again", address="198.51.100.2")
    with pytest.raises(RateLimitedError):
        iss.login("alice", PASSWORD, address="198.51.100.2")


def test_many_names_from_one_address_are_limited_much_later(iss: Issuer, clock: FakeClock, site: LedgerSite, tmp_path: Path) -> None:
    config = IssuerConfig(accounts=AccountsConfig(address_login_limit=8))
    door = Issuer(site.url, tmp_path / "keys", clock=clock, config=config)
    for i in range(8):  # made-up names, and a malformed one: each name its own budget
        with pytest.raises(AuthenticationError):
            door.login(f"guess{i}" if i else "<not a name>", "a wrong guess, again", address="2001:db8::1")
    assert door.session(door.login("alice", PASSWORD, address="198.51.100.7")).actor == "console:alice"
    for user in ("alice", "guess9"):  # the address's bound, for every name, from its whole /64
        with pytest.raises(RateLimitedError, match="too many failed logins from this address — try again in 15 minutes"):
            door.login(user, PASSWORD, address="2001:db8::2")
    clock.advance(minutes=15, seconds=1)
    assert door.session(door.login("alice", PASSWORD, address="2001:db8::2")).actor == "console:alice"
    with pytest.raises(BadInputError, match="address_login_limit"):
        AccountsConfig(login_limit=5, address_login_limit=4)


def test_session_idle_and_absolute_expiry_follow_the_injected_clock(iss: Issuer, clock: FakeClock, tmp_path: Path) -> None:
    client = client_for(iss, clock, tmp_path)
    login(client)
    start = clock.now
    while client.get("/licenses").status_code == 200:  # used every 20 minutes, never idle
        assert clock.now - start < dt.timedelta(hours=12)
        clock.advance(minutes=20)
    assert dt.timedelta(hours=12) <= clock.now - start < dt.timedelta(hours=12, minutes=20)

    login(client)
    stored = hashlib.sha256(client.cookies["licet_session"].encode()).hexdigest()
    clock.advance(minutes=29)
    assert client.get("/").status_code == 200
    assert iss.ledger.session(stored) is not None
    clock.advance(minutes=31)  # idle longer than 30 minutes
    assert client.get("/").status_code == 303
    assert iss.ledger.session(stored) is None  # the expired session was ended in the ledger


def test_logout_ends_the_session_server_side(iss: Issuer, clock: FakeClock, tmp_path: Path) -> None:
    client = client_for(iss, clock, tmp_path)
    login(client)
    stolen = client.cookies.get("licet_session")
    page = client.get("/")
    response = client.post("/logout", data={"csrf": csrf_of(page.text)})
    assert response.status_code == 303 and response.headers["location"] == "/login"
    replay = client_for(iss, clock, tmp_path)
    replay.cookies.set("licet_session", stolen)
    assert replay.get("/").status_code == 303  # the old cookie opens nothing


def test_removing_a_user_ends_their_sessions(iss: Issuer, clock: FakeClock, tmp_path: Path) -> None:
    client = client_for(iss, clock, tmp_path)
    login(client, "bob")
    assert client.get("/").status_code == 200
    iss.remove_user("bob")
    assert client.get("/").status_code == 303


def test_forms_without_or_with_a_wrong_csrf_token_are_refused_and_change_nothing(iss: Issuer, clock: FakeClock, tmp_path: Path, site: LedgerSite) -> None:
    lid = iss.create_license(PRODUCT, customer="Acme").license_id
    client = client_for(iss, clock, tmp_path)
    login(client)
    other = client_for(iss, clock, tmp_path)
    login(other, "bob")
    foreign = csrf_of(other.get("/").text)  # a real token, of another session
    before = site.snapshot()
    forms = [
        (f"/licenses/{lid}", {"customer": "Mallory", "ip": "", "expires": "", "features": "", "limits": ""}),
        (f"/licenses/{lid}/regenerate", {"confirm": "yes"}),
        (f"/licenses/{lid}/revoke", {"confirm": "yes"}),
        ("/licenses/new", {"product": PRODUCT}),
        ("/logout", {}),
    ]
    for path, fields in forms:
        for token in (None, "", "0" * 64, foreign, "é"):
            data = dict(fields) if token is None else {**fields, "csrf": token}
            response = client.post(path, data=data)
            assert response.status_code == 403, (path, token)
            assert "did not come from this console" in response.text and "Traceback" not in response.text
    assert site.snapshot() == before
    assert client.get("/").status_code == 200  # still logged in: the forged logout did nothing
    page = client.get("/login")
    assert client.post("/login", data={"csrf": "0" * 64, "user": "alice", "password": PASSWORD}).status_code == 403
    assert csrf_of(page.text)
    # Without the login page's cookie, the token of an empty key is worth nothing either.
    bare = client_for(iss, clock, tmp_path)
    empty_key_token = iss.accounts.csrf_token("")
    assert bare.post("/login", data={"csrf": empty_key_token, "user": "alice", "password": PASSWORD}).status_code == 403


def test_html_in_customer_names_is_escaped_everywhere(iss: Issuer, clock: FakeClock, tmp_path: Path) -> None:
    client = client_for(iss, clock, tmp_path)
    login(client)
    ids = [iss.create_license(PRODUCT, customer=name).license_id for name in XSS]
    iss.update_license(ids[0], customer=XSS[1])
    iss.revoke(ids[2])
    pages = [client.get("/").text, client.get("/licenses?q=alert").text, client.get("/revocations").text]
    for lid in ids:
        page = client.get(f"/licenses/{lid}")
        pages.append(page.text)
        pages.append(client.post(f"/licenses/{lid}/revoke", data={"csrf": csrf_of(page.text)}).text)
    for html in pages:
        for name in XSS:
            assert name not in html
        assert "<script>alert" not in html and "<img src=x" not in html and "<b>bold</b>" not in html
    assert "&lt;img src=x onerror=alert(1)&gt;" in pages[0]
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in pages[3]  # the edit page's history: the old name
    assert "{{ 7*7 }}" in pages[0] or "{{ 7*7 }}" in pages[-1]  # shown as text, never evaluated


def test_edit_form_saves_only_what_changed_and_records_the_console_user(iss: Issuer, clock: FakeClock, tmp_path: Path) -> None:
    lid = iss.create_license(PRODUCT, customer="Acme", days=30, features=["dns"], limits={"domains": 5}).license_id
    client = client_for(iss, clock, tmp_path)
    login(client)
    page = client.get(f"/licenses/{lid}")
    form = {"csrf": csrf_of(page.text), "customer": "Acme", "ip": "", "expires": re.search(r'name="expires" type="date" value="([^"]*)"', page.text).group(1),
            "features": "dns", "limits": "domains=5"}
    unchanged = client.post(f"/licenses/{lid}", data=form)
    assert unchanged.headers["location"].endswith("done=unchanged")
    assert [e.action for e in iss.show(lid).record.history] == ["created"]
    saved = client.post(f"/licenses/{lid}", data={**form, "customer": "Acme AG", "limits": "domains=6\nmailboxes=100"})
    assert saved.headers["location"].endswith("done=saved")
    event = iss.show(lid).record.history[-1]
    assert event.actor == "console:alice" and set(event.changes) == {"customer", "limits"}
    bad = client.post(f"/licenses/{lid}", data={**form, "limits": "domains=many"})
    assert bad.status_code == 422 and "whole number" in bad.text and 'value="Acme AG"' not in bad.text.split("edit-form")[0]
    assert iss.show(lid).record.limits == {"domains": 6, "mailboxes": 100}


def test_regenerate_asks_first_then_shows_the_date(iss: Issuer, clock: FakeClock, tmp_path: Path) -> None:
    view = iss.create_license(PRODUCT)
    client = client_for(iss, clock, tmp_path)
    login(client)
    page = client.get(f"/licenses/{view.license_id}")
    assert 'id="regenerate">Regenerate key' in page.text
    asked = client.post(f"/licenses/{view.license_id}/regenerate", data={"csrf": csrf_of(page.text)})
    assert asked.status_code == 200 and "Yes, regenerate the key" in asked.text
    assert iss.show(view.license_id).record.generation == 1
    done = client.post(f"/licenses/{view.license_id}/regenerate", data={"csrf": csrf_of(page.text), "confirm": "yes"})
    assert done.status_code == 303
    after = client.get(done.headers["location"])
    assert "Regenerate key (possible from 2026-02-15T00:00:00Z)" in after.text and 'id="regenerate" disabled' in after.text
    assert iss.show(view.license_id).activation_key in after.text
    again = client.post(f"/licenses/{view.license_id}/regenerate", data={"csrf": csrf_of(page.text), "confirm": "yes"})
    assert again.status_code == 409 and "2026-02-15" in again.text


def test_pages_say_what_went_wrong_in_words(iss: Issuer, clock: FakeClock, tmp_path: Path) -> None:
    client = client_for(iss, clock, tmp_path)
    login(client)
    for path, status, words in [("/licenses?status=deleted", 422, "status must be one of"),
                                ("/licenses?cursor=../../x", 422, "invalid cursor"),
                                ("/licenses/LIC-NOSUCH0000", 404, "no license"),
                                ("/licenses/..%2F..%2Fledger.json", 404, "Not Found"),
                                ("/nowhere", 404, "Not Found")]:
        page = client.get(path)
        assert page.status_code == status, path
        assert words in page.text and "Traceback" not in page.text
    page = client.get("/licenses/new")
    bad = client.post("/licenses/new", data={"csrf": csrf_of(page.text), "product": PRODUCT, "expires": "2026-13-01"})
    assert bad.status_code == 422 and "“Last day” must be a date (YYYY-MM-DD)" in bad.text
    created = client.post("/licenses/new", data={"csrf": csrf_of(page.text), "product": PRODUCT, "customer": "New Co", "days": "30"})
    assert created.status_code == 303
    shown = client.get(created.headers["location"])
    assert "License created" in shown.text and 'id="activation-key"' in shown.text


def test_list_pages_walk_every_license_once(iss: Issuer, clock: FakeClock, tmp_path: Path) -> None:
    ids = set(iss.create_licenses(120, PRODUCT))
    client = client_for(iss, clock, tmp_path)
    login(client)
    seen: list[str] = []
    url = "/licenses"
    while url:
        page = client.get(url).text
        seen += re.findall(r'class="license-link">([^<]+)<', page)
        found = re.search(r'href="([^"]+)" id="next-page"', page)
        url = found.group(1).replace("&amp;", "&") if found else ""
    assert len(seen) == len(set(seen)) == 120 and set(seen) == ids


def test_old_failed_logins_are_forgotten(iss: Issuer, clock: FakeClock, site: LedgerSite) -> None:
    for i in range(3):
        with pytest.raises(AuthenticationError):
            iss.login(f"guess{i}", "a wrong guess, again", address=f"2001:db8::{i}")
    # three names from one IPv6 /64, and that /64 for the three addresses
    assert failing_subjects(site) == ["address:2001:db8::/64", *(f"user:guess{i} from 2001:db8::/64" for i in range(3))]
    assert iss.ledger.login_failures(["address:2001:db8::/64"], clock.now - dt.timedelta(days=1)) == 3
    clock.advance(minutes=16)
    with pytest.raises(AuthenticationError):
        iss.login("alice", "a wrong guess, again", address="198.51.100.99")
    assert failing_subjects(site) == ["address:198.51.100.99", "user:alice from 198.51.100.99"]
    assert iss.ledger.login_failures(["address:2001:db8::/64"], clock.now - dt.timedelta(days=1)) == 0


def test_lease_and_revocations_pages(iss: Issuer, clock: FakeClock, tmp_path: Path) -> None:
    view = iss.create_license(PRODUCT, lease_days=10)
    client = client_for(iss, clock, tmp_path)
    login(client)
    page = client.get(f"/licenses/{view.license_id}")
    assert 'name="lease_days" value="10"' in page.text
    form = {"csrf": csrf_of(page.text), "customer": "", "ip": "", "features": "", "limits": "", "lease_days": "0",
            "expires": re.search(r'name="expires" type="date" value="([^"]*)"', page.text).group(1)}
    assert client.post(f"/licenses/{view.license_id}", data=form).headers["location"].endswith("done=saved")
    event = iss.show(view.license_id).record.history[-1]
    assert event.changes == {"lease_days": {"before": 10, "after": 0}} and event.actor == "console:alice"
    assert client.post(f"/licenses/{view.license_id}", data={**form, "lease_days": "many"}).status_code == 422
    iss.redeem(request_for(view.activation_key, "alpha"), method="online")  # a token exists to stop
    iss.revoke(view.license_id)
    revocations = client.get("/revocations")
    assert revocations.status_code == 200 and view.license_id in revocations.text
    serial = int(re.search(r'id="serial">(\d+)<', revocations.text).group(1))
    assert serial >= 1
    download = client.get("/revocations/download")
    assert download.status_code == 200 and download.headers["content-type"].startswith("application/jwt")
    assert download.text.count(".") == 2


def test_the_create_form_says_beside_the_last_day_that_leaving_both_empty_never_expires(iss: Issuer, clock: FakeClock, tmp_path: Path) -> None:
    client = client_for(iss, clock, tmp_path)
    login(client)
    page = client.get("/licenses/new").text
    label = re.search(r'<label for="expires">(.*?)</label>', page, re.S)
    assert label is not None and "never expires" in label.group(1), page
