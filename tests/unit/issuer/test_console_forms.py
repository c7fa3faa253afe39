"""The console's forms in-process: the create form's choices, refusals in the form's own words with
every bad field marked, a revoked license's page, the error page, the login page of a console without
users, and search by what a customer quotes. On a TinyDB ledger and a PostgreSQL one."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from pgsupport import LedgerSite
from support import PRODUCT, FakeClock, make_issuer, request_for

from issuer import Issuer
from issuer.web.console_app import ConsoleConfig, create_console_app

PASSWORD = "correct horse battery staple"
CLI_FLAG = re.compile(r"(?<![\w-])--[a-z]")


@pytest.fixture(params=["tinydb", "postgres"])
def site(request: pytest.FixtureRequest, tmp_path: Path) -> LedgerSite:
    if request.param == "postgres":
        return LedgerSite("postgres", request.getfixturevalue("pg_url"))
    return LedgerSite("tinydb", str(tmp_path / "ledger"))


@pytest.fixture
def iss(tmp_path: Path, clock: FakeClock, site: LedgerSite) -> Issuer:
    return make_issuer(tmp_path, clock, ledger=site.url, lease_days=45, accept_machine_id=False)  # type: ignore[no-any-return]


@pytest.fixture
def client(iss: Issuer, clock: FakeClock, tmp_path: Path) -> TestClient:
    config = ConsoleConfig(ledger=iss.ledger.location, keys=str(tmp_path / "keys"))
    return TestClient(create_console_app(config, clock=clock, issuer=iss), follow_redirects=False)


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf" value="([0-9a-f]+)"', html)
    assert found, html
    return found.group(1)


def login(client: TestClient, iss: Issuer) -> None:
    iss.add_user("alice", PASSWORD)
    page = client.get("/login")
    assert client.post("/login", data={"csrf": csrf_of(page.text), "user": "alice", "password": PASSWORD}).status_code == 303


def marked(html: str) -> dict[str, str]:
    """The fields a page marks as wrong, with the message beside each."""
    fields = re.findall(r'id="([a-z_]+)"[^>]*aria-invalid="true" aria-describedby="([a-z_]+)-error"', html)
    assert all(name == described for name, described in fields), fields
    said = dict(re.findall(r'<p class="field-error" id="([a-z_]+)-error">([^<]*)</p>', html))
    assert set(said) == {name for name, _ in fields}, (fields, said)
    return said


def test_the_login_page_says_how_to_make_the_first_user(iss: Issuer, client: TestClient) -> None:
    page = client.get("/login")
    assert 'id="no-users"' in page.text and "issuer admin user add NAME" in page.text
    iss.add_user("alice", PASSWORD)
    assert "no-users" not in client.get("/login").text


def test_the_create_form_offers_the_ledgers_products_the_machine_id_choice_and_the_default_lease(iss: Issuer, client: TestClient) -> None:
    login(client, iss)
    first = client.get("/licenses/new")
    assert re.findall(r'<option value="([^"]*)"', first.text.split('id="product"')[1].split("</select>")[0]) == ["+new"]
    assert "the provider's default (45)" in first.text and "the provider's default (refused)" in first.text
    made = client.post("/licenses/new", data={"csrf": csrf_of(first.text), "product": "+new", "new_product_name": PRODUCT,
                                               "machine_ids": "accept"})
    assert made.status_code == 303
    lid = made.headers["location"].split("/")[2].split("?")[0]
    assert iss.show(lid).record.product == PRODUCT and iss.show(lid).accepts_machine_id is True
    iss.create_license("dnsmanager", new_product=True)
    page = client.get("/licenses/new")
    options = page.text.split('id="product"')[1].split("</select>")[0]
    assert re.findall(r'<option value="([^"]*)"', options) == ["dnsmanager", PRODUCT, "+new"]
    chosen = client.post("/licenses/new", data={"csrf": csrf_of(page.text), "product": PRODUCT, "machine_ids": ""})
    view = iss.show(chosen.headers["location"].split("/")[2].split("?")[0])
    assert view.record.product == PRODUCT and view.accepts_machine_id is False and view.record.accept_machine_id is None
    refused = client.post("/licenses/new", data={"csrf": csrf_of(page.text), "product": "dnsmanagr", "machine_ids": "refuse"})
    assert refused.status_code == 422 and "(“new product”)" in refused.text and not CLI_FLAG.search(refused.text)
    assert marked(refused.text) == {"product": re.search(r'id="message" role="alert">([^<]*)<', refused.text).group(1)}
    assert 'value="refuse" selected' in refused.text  # what was chosen stays chosen


def test_a_form_with_several_bad_fields_names_and_marks_each(iss: Issuer, client: TestClient) -> None:
    login(client, iss)
    iss.create_license(PRODUCT)
    before = len(iss.licenses())
    page = client.get("/licenses/new")
    bad = client.post("/licenses/new", data={"csrf": csrf_of(page.text), "product": PRODUCT, "days": "soon", "ip": "nope",
                                             "lease_days": "many", "limits": "domains=lots", "customer": "Acme"})
    assert bad.status_code == 422 and len(iss.licenses()) == before
    said = marked(bad.text)
    assert set(said) == {"days", "ip", "lease_days", "limits"}
    assert said["days"] == "“Valid for days” must be a whole number from 1 to 36500"
    assert "“Valid for days”" in bad.text and "“Server IP”" in bad.text and "“Lease in days”" in bad.text and "“Limits”" in bad.text
    assert bad.text.count('role="alert"') == 1 and 'value="Acme"' in bad.text
    both = client.post("/licenses/new", data={"csrf": csrf_of(page.text), "product": PRODUCT, "days": "30", "expires": "2030-01-01"})
    assert both.status_code == 422 and "give “Valid for days” or “Last day”, not both" in both.text
    assert set(marked(both.text)) == {"days", "expires"} and not CLI_FLAG.search(both.text)

    lid = iss.licenses()[0].license_id
    edit = client.get(f"/licenses/{lid}")
    saved = client.post(f"/licenses/{lid}", data={"csrf": csrf_of(edit.text), "customer": "", "ip": "300.1.1.1",
                                                  "expires": "31.12.2027", "features": "", "limits": "", "lease_days": ""})
    assert saved.status_code == 422 and set(marked(saved.text)) == {"ip", "expires"}
    assert "2 fields need a fix: “Server IP”, “Last day”" in saved.text


def test_a_revoked_license_shows_no_copy_button_and_no_next_regeneration(iss: Issuer, client: TestClient) -> None:
    login(client, iss)
    view = iss.create_license(PRODUCT, lease_days=7)
    page = client.get(f"/licenses/{view.license_id}").text
    assert 'id="copy-key"' in page and 'id="next-regeneration"' in page
    assert "empty: the provider's default (45)" in page and "…" not in page.split('id="lease_days"')[0].rsplit("<label", 1)[1]
    iss.revoke(view.license_id)
    page = client.get(f"/licenses/{view.license_id}").text
    assert 'id="copy-key"' not in page and 'id="next-regeneration"' not in page and "Next regeneration" not in page
    assert 'id="key-dead"' in page


def test_the_error_page_keeps_the_navigation_and_says_its_message_once(iss: Issuer, client: TestClient) -> None:
    missing = client.get("/licenses/LIC-NOSUCH0000")
    assert missing.status_code == 303  # not logged in: the login page
    login(client, iss)
    page = client.get("/licenses/LIC-NOSUCH0000")
    assert page.status_code == 404 and page.text.count("no license") == 1 and page.text.count('role="alert"') == 1
    assert 'href="/licenses/new"' in page.text and 'id="logout"' in page.text
    nowhere = client.get("/nowhere")
    assert nowhere.status_code == 404 and nowhere.text.count("Not Found") == 1 and 'href="/licenses/new"' in nowhere.text


def test_the_console_finds_a_license_by_what_a_customer_quotes(iss: Issuer, client: TestClient) -> None:
    login(client, iss)
    view = iss.create_license(PRODUCT, customer="Acme", accept_machine_id=True)
    other = iss.create_license(PRODUCT, customer="Other")
    old_key = view.activation_key
    iss.regenerate(view.license_id)
    key = iss.show(view.license_id).activation_key
    assert key is not None and old_key is not None
    activated = iss.redeem(request_for(key, "panel-7.acme.example"), method="air-gapped")
    ids = re.compile(r'class="license-link">(LIC-[0-9A-Z]+)<')
    for text in (view.license_id.lower(), key.replace("-", "").lower(), "PANEL-7", activated.activation_id.lower()):
        assert ids.findall(client.get("/licenses", params={"q": text}).text) == [view.license_id], text
    assert ids.findall(client.get("/licenses", params={"q": old_key}).text) == []
    assert ids.findall(client.get("/licenses").text) == [other.license_id, view.license_id]
