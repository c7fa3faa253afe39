"""The console's OpenAPI document agrees with what its admin API does, and the README shows it."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from support import PRODUCT, README, FakeClock, make_issuer, problem_codes, readme_section

from issuer.web import apidoc
from verifier import errors

ADMIN = "/v1/admin/"


@pytest.fixture(scope="module")
def console(tmp_path_factory: pytest.TempPathFactory) -> Any:
    from starlette.testclient import TestClient

    from issuer.web.console_app import ConsoleConfig, create_console_app
    from issuer.web.plumbing import limit_body

    folder = tmp_path_factory.mktemp("console-contract")
    iss = make_issuer(folder, FakeClock())
    iss.create_license(PRODUCT)
    _, write = iss.create_token("billing", "write")
    _, read = iss.create_token("dashboard", "read")
    config = ConsoleConfig(ledger=str(folder / "ledger"), keys=str(folder / "keys"))
    app = create_console_app(config, clock=FakeClock(), issuer=iss)
    client = TestClient(limit_body(app, config.max_body_bytes, config.max_header_bytes), raise_server_exceptions=False)
    client.app_state = app.state  # the issuer, for tests that make it fail
    client.write = {"Authorization": f"Bearer {write}"}
    client.read = {"Authorization": f"Bearer {read}"}
    return client


@pytest.fixture(scope="module")
def document(console: Any) -> dict[str, Any]:
    return console.get("/openapi.json").json()  # type: ignore[no-any-return]


def admin_operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [(m, p, op) for p, item in document["paths"].items() if p.startswith(ADMIN) for m, op in item.items()]


def test_every_admin_operation_documents_each_refusal_with_its_codes(document: dict[str, Any]) -> None:
    operations = admin_operations(document)
    assert {(m, p) for m, p, _ in operations} == {
        ("get", "/v1/admin/licenses"), ("post", "/v1/admin/licenses"), ("get", "/v1/admin/licenses/{license_id}"),
        ("patch", "/v1/admin/licenses/{license_id}"), ("post", "/v1/admin/licenses/{license_id}/regenerate"),
        ("post", "/v1/admin/licenses/{license_id}/revoke"), ("get", "/v1/admin/events"),
        ("get", "/v1/admin/webhooks"), ("post", "/v1/admin/webhooks"), ("delete", "/v1/admin/webhooks/{endpoint_id}"),
        ("get", "/v1/admin/webhooks/{endpoint_id}/deliveries"), ("post", "/v1/admin/webhooks/deliveries/{delivery_id}/redeliver"),
    }
    for method, path, operation in operations:
        codes = problem_codes(operation)
        for status, listed in codes.items():
            for code in listed:
                cls = errors.error_class(code)
                assert cls is not None, code
                assert str(cls.http_status) == status, (path, code, status)
                assert apidoc.ADVICE[code] != apidoc.ADVICE[errors.LicenseError.code], code
        assert operation["security"] == [{"HTTPBearer": []}], path
        assert codes["401"] == ["unauthorized"] and "WWW-Authenticate" in operation["responses"]["401"]["headers"]
        assert "bad-input" in codes["422"] and codes["413"] == ["body-too-large"], path
        assert "ledger-busy" in codes["503"] and codes["500"] == ["server-unavailable"], path
        assert ("forbidden" in codes.get("403", [])) == (method != "get"), (method, path)
        assert ("license-not-found" in codes.get("404", [])) == ("{license_id}" in path), (method, path)
        assert ("webhook-not-found" in codes.get("404", [])) == ("_id}" in path and "webhooks" in path), (method, path)
        assert "429" not in codes  # tokens are not rate limited: nothing answers 429
    paths = document["paths"]
    assert problem_codes(paths["/v1/admin/licenses/{license_id}/regenerate"]["post"])["409"] == ["regeneration-too-soon"]
    assert set(problem_codes(paths["/v1/admin/licenses"]["post"])["422"]) == {"bad-input", "unknown-product", "expiry-out-of-range"}
    assert "no-active-key" in problem_codes(paths["/v1/admin/licenses"]["post"])["503"]
    assert set(problem_codes(paths["/v1/admin/webhooks"]["post"])["422"]) == {"bad-input", "webhook-target-refused"}
    assert document["components"]["securitySchemes"]["HTTPBearer"] == {
        "type": "http", "description": "An admin API token (issuer admin token create)", "scheme": "bearer"}
    problem = document["components"]["schemas"]["Problem"]
    assert {"allowed_from", "incident"} <= set(problem["properties"]) and problem["additionalProperties"] is False
    assert not any(p in paths for p in ("/login", "/logout", "/", "/licenses", "/keys", "/revocations"))
    assert "validation" not in json.dumps(document).lower()  # FastAPI's own 422 schema is gone


def test_license_answers_link_to_the_next_operations(document: dict[str, Any]) -> None:
    paths = document["paths"]
    ids = {op["operationId"] for item in paths.values() for op in item.values()}
    created = paths["/v1/admin/licenses"]["post"]["responses"]["201"]["links"]
    assert {link["operationId"] for link in created.values()} == {"get_license", "regenerate_license", "patch_license", "revoke_license"}
    for path in ("/v1/admin/licenses/{license_id}", "/v1/admin/licenses/{license_id}/regenerate"):
        for operation in paths[path].values():
            for link in operation["responses"]["200"]["links"].values():
                assert link["operationId"] in ids
                assert link["parameters"] == {"license_id": "$response.body#/license_id"}


def schema_of(document: dict[str, Any], name: str) -> Any:
    from jsonschema_rs import Draft202012Validator  # schemathesis's own validator

    return Draft202012Validator(document["components"]["schemas"][name], validate_formats=True)


REFUSED_BY_BOTH = [
    {"product": "-leading-dash"},
    {"product": PRODUCT, "ip": "203.0.113.300"},
    {"product": PRODUCT, "ip": " 203.0.113.1"},
    {"product": PRODUCT, "ip": "fe80::1%eth0"},
    {"product": PRODUCT, "days": 0},
    {"product": PRODUCT, "days": 36501},
    {"product": PRODUCT, "days": 2.5},
    {"product": PRODUCT, "days": True},
    {"product": PRODUCT, "days": 3, "expires": "2031-01-01"},
    {"product": PRODUCT, "expires": "2027-02-30"},
    {"product": PRODUCT, "expires": "20270101"},
    {"product": PRODUCT, "expires": "0000-01-01"},
    {"product": PRODUCT, "features": ["no way"]},
    {"product": PRODUCT, "features": [f"f{i}" for i in range(65)]},
    {"product": PRODUCT, "limits": {"a b": 1}},
    {"product": PRODUCT, "limits": {"domains": -1}},
    {"product": PRODUCT, "limits": {"domains": 2**53}},
    {"product": PRODUCT, "customer": "a\u0007b"},
    {"product": PRODUCT, "customer": "a\u009b2J"},
    {"product": PRODUCT, "customer": "Acme \u202eCorp"},
    {"product": PRODUCT, "customer": "Acme\u200b"},
    {"product": PRODUCT, "customer": "Acme\U000e0041"},
    {"product": PRODUCT, "customer": "x" * 257},
    {"product": PRODUCT, "lease_days": 3651},
    {"product": PRODUCT, "owner": "unknown members are refused"},
]


@pytest.mark.parametrize("body", REFUSED_BY_BOTH, ids=lambda b: json.dumps(b)[:60])
def test_a_body_the_schema_refuses_gets_bad_input(console: Any, document: dict[str, Any], body: dict[str, Any]) -> None:
    assert not schema_of(document, "LicenseCreate").is_valid(body)  # the schema refuses it ...
    response = console.post("/v1/admin/licenses", json=body, headers=console.write)
    assert (response.status_code, response.json()["code"]) == (422, "bad-input")  # ... and so does the server


ACCEPTED_BY_BOTH = [
    {"product": PRODUCT, "days": 30.0, "limits": {"domains": 2.0}, "lease_days": 7.0},
    {"product": PRODUCT, "ip": "::ffff:203.0.113.9", "customer": "Zoë & Co — ÖBB", "features": ["dns", "dns"]},
    {"product": PRODUCT, "customer": "\u0634\u0631\u06a9\u062a\u200c\u0647\u0627 👩\u200d💻"},
    {"product": PRODUCT, "days": None, "expires": "2026-12-31", "limits": {"domains": 2**53 - 1}},
    {"product": "brand-new.product_2", "new_product": True, "ip": None, "customer": None, "lease_days": None},
]


def test_the_customer_pattern_is_the_services_rule_for_every_character(document: dict[str, Any]) -> None:
    from verifier.text import hidden_characters

    pattern = re.compile(document["components"]["schemas"]["LicenseCreate"]["properties"]["customer"]["anyOf"][0]["pattern"])
    for point in range(0x110000):
        if not 0xD800 <= point <= 0xDFFF:
            char = chr(point)
            assert (pattern.match(f"a{char}b") is None) == bool(hidden_characters(char)), hex(point)


@pytest.mark.parametrize("body", ACCEPTED_BY_BOTH, ids=lambda b: json.dumps(b)[:60])
def test_a_body_the_schema_accepts_is_created(console: Any, document: dict[str, Any], body: dict[str, Any]) -> None:
    assert schema_of(document, "LicenseCreate").is_valid(body)
    response = console.post("/v1/admin/licenses", json=body, headers=console.write)
    assert response.status_code == 201, response.json()
    assert schema_of(document, "LicenseOut").is_valid(response.json())


def test_a_read_token_gets_licenses_without_their_key_as_the_schema_allows(console: Any, document: dict[str, Any]) -> None:
    schemas = document["components"]["schemas"]
    for name in ("LicenseOut", "LicenseItem"):  # a string when present, never null, and not required
        key = schemas[name]["properties"]["activation_key"]
        assert key["type"] == "string" and "default" not in key and "anyOf" not in key
        assert "activation_key" not in schemas[name]["required"] and "read-scope" in key["description"]
    items = console.get("/v1/admin/licenses", headers=console.read).json()["items"]
    shown = console.get(f"/v1/admin/licenses/{items[0]['license_id']}", headers=console.read).json()
    assert items and all("activation_key" not in item and schema_of(document, "LicenseItem").is_valid(item) for item in items)
    assert "activation_key" not in shown and schema_of(document, "LicenseOut").is_valid(shown)
    keyed = console.get(f"/v1/admin/licenses/{items[0]['license_id']}", headers=console.write).json()
    assert keyed["activation_key"] and schema_of(document, "LicenseOut").is_valid(keyed)


def test_content_the_schema_cannot_judge_has_codes_of_its_own(console: Any, document: dict[str, Any]) -> None:
    for body, code in [({"product": "unheard-of"}, "unknown-product"), ({"product": PRODUCT, "expires": "2001-01-01"}, "expiry-out-of-range"),
                       ({"product": PRODUCT, "expires": "9999-12-31"}, "expiry-out-of-range")]:
        assert schema_of(document, "LicenseCreate").is_valid(body)
        response = console.post("/v1/admin/licenses", json=body, headers=console.write)
        assert (response.status_code, response.json()["code"]) == (422, code)
        assert console.get(response.json()["type"]).status_code == 200  # its page explains it


@pytest.mark.parametrize("query", ["cursor=abc", "cursor=-1", "cursor=1234567890123", "limit=0", "limit=201", "status=deleted", "product=../x"])
def test_query_parameters_the_document_refuses_get_bad_input(console: Any, document: dict[str, Any], query: str) -> None:
    from jsonschema_rs import Draft202012Validator

    name, value = query.split("=")
    parameter = next(p for p in document["paths"]["/v1/admin/licenses"]["get"]["parameters"] if p["name"] == name)
    assert not Draft202012Validator(parameter["schema"], validate_formats=True).is_valid(int(value) if name == "limit" else value)
    response = console.get(f"/v1/admin/licenses?{query}", headers=console.read)
    assert (response.status_code, response.json()["code"]) == (422, "bad-input")


@pytest.mark.parametrize("method", ["PUT", "DELETE", "OPTIONS", "TRACE", "PATCH", "POST"])
def test_405_names_every_method_of_the_path(console: Any, document: dict[str, Any], method: str) -> None:
    for path, item in document["paths"].items():
        documented = {m.upper() for m in item} | ({"HEAD"} if "get" in item else set())
        if method in documented:
            continue
        url = path.replace("{license_id}", "LIC-0000000000").replace("{code}", "bad-input")
        response = console.request(method, url, headers=console.write)
        assert response.status_code == 405, (method, path)
        assert response.headers["content-type"] == apidoc.PROBLEM_MEDIA_TYPE
        assert response.json()["code"] == "method-not-allowed"
        assert {m.strip() for m in response.headers["allow"].split(",")} == documented, path
    page = console.request("PUT", "/login")  # an HTML page says it in words, with Allow too
    assert page.status_code == 405 and page.headers["content-type"].startswith("text/html")
    assert {m.strip() for m in page.headers["allow"].split(",")} == {"GET", "HEAD", "POST"}


def test_head_is_get_without_a_body(console: Any) -> None:
    lid = console.get("/v1/admin/licenses?limit=1", headers=console.read).json()["items"][0]["license_id"]
    for path in ("/v1/admin/licenses", f"/v1/admin/licenses/{lid}", "/v1/admin/events", "/problems/bad-input"):
        got, head = console.get(path, headers=console.read), console.head(path, headers=console.read)
        assert head.status_code == got.status_code == 200, path
        assert head.content == b"" and head.headers["content-length"] == got.headers["content-length"]
    refused = console.head("/v1/admin/licenses")
    assert refused.status_code == 401 and refused.headers["www-authenticate"] == "Bearer"


def test_the_ledger_busy_or_a_bug_is_told_with_an_incident_not_the_detail(console: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    iss = console.app_state.issuer

    def busy(*args: Any, **kwargs: Any) -> Any:
        raise errors.LedgerBusyError("/srv/licet/ledger/.lock is held by pid 4242")

    def bug(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("the secret internals")

    for fault, status, code in [(busy, 503, "ledger-busy"), (bug, 500, "server-unavailable")]:
        monkeypatch.setattr(type(iss.licensing), "search", fault)  # what the route calls
        response = console.get("/v1/admin/licenses", headers=console.read)
        body = response.json()
        assert (response.status_code, body["code"]) == (status, code)
        assert response.headers["content-type"] == apidoc.PROBLEM_MEDIA_TYPE
        assert re.fullmatch(r"[0-9a-f]{12}", body["incident"]) and body["incident"] in body["detail"]
        assert "4242" not in body["detail"] and "internals" not in body["detail"]


def test_readme_console_api_section_is_the_openapi_document(document: dict[str, Any]) -> None:
    current = readme_section("console-api", document)
    for method, path, _ in admin_operations(document):
        assert f"`{method.upper()} {path}`" in current, path
    assert "`regeneration-too-soon`" in current and "`allowed_from`" in README.read_text()
