"""The license server's OpenAPI document, problem pages and methods agree with what it does."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from support import PRODUCT, FakeClock, make_issuer, problem_codes, readme_section, server_fp

from issuer.web import apidoc
from verifier import errors

HASH = "a" * 64


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Any:
    from starlette.testclient import TestClient

    from issuer.web.license_server import ServerConfig, create_app
    from issuer.web.plumbing import limit_body

    folder = tmp_path_factory.mktemp("contract")
    make_issuer(folder, FakeClock())
    config = ServerConfig(ledger=str(folder / "ledger"), keys=str(folder / "keys"))
    app = limit_body(create_app(config), config.max_body_bytes, config.max_header_bytes)
    return TestClient(app, raise_server_exceptions=False)


@pytest.fixture(scope="module")
def document(client: Any) -> dict[str, Any]:
    return client.get("/openapi.json").json()  # type: ignore[no-any-return]


def auto_body(**changes: Any) -> dict[str, Any]:
    body = {"product": PRODUCT, "fingerprint": list(server_fp("alpha")), "callback_port": 8470, "challenge_hash": HASH}
    body.update(changes)
    return body


def test_every_operation_documents_its_refusals_as_problem_json_with_their_codes(document: dict[str, Any]) -> None:
    for path, item in document["paths"].items():
        for method, operation in item.items():
            codes = problem_codes(operation)
            assert codes, (method, path)
            for status, listed in codes.items():
                for code in listed:
                    cls = errors.error_class(code)
                    assert cls is not None, code
                    # A bug is answered 500 under server-unavailable; the rest with their own status.
                    assert str(cls.http_status) == status, (path, code, status)
                    # Every documented code tells the client what to do, in words of its own.
                    assert apidoc.ADVICE[code] != apidoc.ADVICE[errors.LicenseError.code], code
            assert "422" not in codes or "bad-input" in codes["422"], path
    for operation in (document["paths"]["/v1/activations"]["post"], document["paths"]["/v1/activations/auto"]["post"]):
        codes = problem_codes(operation)
        assert "already-activated" in codes["409"] and "rate-limited" in codes["429"]
        assert {"ledger-busy", "ledger-corrupt", "private-key-error"} <= set(codes["503"])
    assert "validation" not in json.dumps(document).lower()  # FastAPI's own 422 schema is gone


def test_the_advice_catalogue_covers_every_registered_code_and_no_other() -> None:
    from error_catalogue import every_error_class

    codes = {cls.code for cls in every_error_class()}
    assert {cls.code for cls in errors.error_classes()} == codes
    assert set(apidoc.ADVICE) == codes
    assert all(isinstance(words, str) and words.strip() for words in apidoc.ADVICE.values())


def test_the_problem_schema_names_every_extension_member(document: dict[str, Any]) -> None:
    problem = document["components"]["schemas"]["Problem"]
    assert problem["additionalProperties"] is False
    assert set(problem["required"]) == {"type", "title", "status", "detail", "code"}
    assert {"regenerate_after", "allowed_from", "retry_after", "incident"} <= set(problem["properties"])


def test_request_bodies_refuse_unknown_members_and_carry_the_servers_patterns(document: dict[str, Any]) -> None:
    schemas = document["components"]["schemas"]
    auto, manual = schemas["AutoRequest"], schemas["ManualRequest"]
    assert auto["additionalProperties"] is False and manual["additionalProperties"] is False
    fp = auto["properties"]["fingerprint"]
    assert fp["uniqueItems"] is True and fp["maxItems"] == 10 and fp["items"]["pattern"]
    assert {(rule["contains"]["pattern"], rule["maxContains"]) for rule in fp["allOf"]} == {("^mid:", 1), ("^uuid:", 1), ("^mac:", 8)}
    assert (auto["properties"]["callback_port"]["minimum"], auto["properties"]["callback_port"]["maximum"]) == (1, 65535)
    assert auto["properties"]["identity"]["enum"] == ["hardware", "machine-id"]
    for name in ("product", "challenge_hash", "hostname"):
        assert auto["properties"][name]["pattern"], name
    assert manual["properties"]["request_code"]["pattern"].startswith("^")


@pytest.mark.parametrize(
    "change",
    [
        {"fingerprint": [""]},
        {"fingerprint": list(server_fp("alpha")) * 2},
        {"fingerprint": [*list(server_fp("alpha")), server_fp("beta")[0]]},  # two machine ids
        {"callback_port": 0},
        {"callback_port": 65536},
        {"challenge_hash": "A" * 64},
        {"hostname": "evil\x1b[2Jhost"},
        {"hostname": "h" * 254},
        {"product": "-leading-dash"},
        {"identity": "firmware"},
        {"ip": "203.0.113.9"},  # unknown member: an address in the body is never used, so never accepted
    ],
)
def test_a_body_the_schema_refuses_gets_bad_input(client: Any, document: dict[str, Any], change: dict[str, Any]) -> None:
    from jsonschema_rs import Draft202012Validator  # schemathesis's own validator

    schema = document["components"]["schemas"]["AutoRequest"]
    body = auto_body(**change)
    assert not Draft202012Validator(schema).is_valid(body), change  # the schema refuses it ...
    response = client.post("/v1/activations/auto", json=body)
    assert (response.status_code, response.json()["code"]) == (422, "bad-input")  # ... and so does the server


def test_a_body_the_schema_accepts_is_not_refused_for_its_shape(client: Any, document: dict[str, Any]) -> None:
    from jsonschema_rs import Draft202012Validator

    schema = document["components"]["schemas"]["AutoRequest"]
    body = auto_body(hostname="srv-1.example_net", identity="machine-id")
    assert Draft202012Validator(schema).is_valid(body)
    response = client.post("/v1/activations/auto", json=body)
    assert (response.status_code, response.json()["code"]) == (404, "no-license-for-address")


@pytest.mark.parametrize("method", ["PUT", "DELETE", "PATCH", "OPTIONS", "TRACE"])
def test_405_names_the_allowed_methods(client: Any, document: dict[str, Any], method: str) -> None:
    for path, item in document["paths"].items():
        url = path.replace("{code}", "bad-input")
        response = client.request(method, url)
        assert response.status_code == 405, (method, path)
        assert response.headers["content-type"] == apidoc.PROBLEM_MEDIA_TYPE
        assert response.json()["code"] == "method-not-allowed"
        allowed = {m.strip() for m in response.headers["allow"].split(",")}
        documented = {m.upper() for m in item}
        assert allowed == documented | ({"HEAD"} if "GET" in documented else set()), path


def test_head_is_get_without_a_body(client: Any) -> None:
    for path in ("/v1/health", "/v1/revocations", "/problems", "/problems/already-activated"):
        got, head = client.get(path), client.head(path)
        assert head.status_code == got.status_code == 200
        assert head.content == b"" and head.headers["content-length"] == got.headers["content-length"]


def test_each_problem_type_leads_to_a_page_saying_what_to_do(client: Any, document: dict[str, Any]) -> None:
    codes = {code for item in document["paths"].values() for op in item.values() for listed in problem_codes(op).values() for code in listed}
    index = client.get("/problems").text
    for code in sorted(codes):
        cls = errors.error_class(code)
        assert cls is not None
        page = client.get(apidoc.problem_type(code))
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
        assert apidoc.ADVICE[code].replace("'", "&#x27;") in page.text
        assert ("yes, later" if cls.retry else "no, not the same request") in page.text
        assert f'href="/problems/{code}"' in index
    missing = client.get("/problems/no-such-code")
    assert (missing.status_code, missing.json()["code"]) == (404, "not-found")
    refusal = client.post("/v1/activations", json={"request_code": "LICET1.garbage"}).json()
    assert client.get(refusal["type"]).status_code == 200  # the type of a real answer resolves


def test_a_rate_limited_client_is_told_how_long_to_wait(tmp_path: Path) -> None:
    from starlette.testclient import TestClient
    from support import code_for

    from issuer.web.license_server import ServerConfig, create_app
    from verifier.activation_key import key_from_bytes

    make_issuer(tmp_path, FakeClock())
    app = create_app(ServerConfig(ledger=str(tmp_path / "ledger"), keys=str(tmp_path / "keys"), failure_limit=1))
    client = TestClient(app)
    body = {"request_code": code_for(key_from_bytes(b"\x01" * 15), "guesser")}
    assert client.post("/v1/activations", json=body).json()["code"] == "invalid-activation-key"
    limited = client.post("/v1/activations", json=body)
    reply = limited.json()
    assert (limited.status_code, reply["code"]) == (429, "rate-limited")
    assert 0 < reply["retry_after"] <= 900 and limited.headers["retry-after"] == str(reply["retry_after"])
    back = errors.error_for_code(reply["code"], reply["detail"], reply)
    assert isinstance(back, errors.RateLimitedError) and back.retry_after == reply["retry_after"]


def test_readme_http_api_section_is_the_openapi_document(document: dict[str, Any]) -> None:
    current = readme_section("http-api", document)
    for path in document["paths"]:
        assert re.search(rf"`(GET|POST) {re.escape(path)}`", current), path
