"""Hypothesis against every parser: each input parses or is refused as a LicenseError / 4xx; nothing is written."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support import PRODUCT, FakeClock, ledger_bytes, make_issuer

from verifier import LicenseError, TrustedKeys, normalize_key

FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=10), children, max_size=5),
    max_leaves=25,
)


def parses_or_refuses(fn: Any, *args: Any) -> None:
    """Anything but a LicenseError escaping fails the test."""
    with contextlib.suppress(LicenseError):
        fn(*args)


@FUZZ
@given(text=st.text(max_size=80) | st.text(alphabet="0123456789ABCDEFGHJKMNPQRSTVWXYZ-ilo ", max_size=40))
def test_activation_keys(text: str) -> None:
    try:
        canonical = normalize_key(text)
    except LicenseError:
        return
    assert normalize_key(canonical) == canonical and len(canonical) == 29


@FUZZ
@given(doc=json_values)
def test_jwks_documents(doc: Any) -> None:
    parses_or_refuses(TrustedKeys.from_json, json.dumps(doc))


@pytest.fixture(scope="module")
def real_jwks(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    from support import Provider

    return Provider(Path(tmp_path_factory.mktemp("k")), FakeClock()).trusted().to_jwks()


@FUZZ
@given(data=st.data())
def test_mutated_real_jwks(real_jwks: dict[str, Any], data: st.DataObject) -> None:
    jwk = dict(real_jwks["keys"][0])
    field = data.draw(st.sampled_from([*sorted(jwk), "extra"]))
    jwk[field] = data.draw(json_values)
    parses_or_refuses(TrustedKeys.from_jwks, {"keys": [jwk]})


@FUZZ
@given(content=st.binary(max_size=300) | json_values.map(lambda v: json.dumps(v).encode()))
def test_keyring_documents(tmp_path_factory: pytest.TempPathFactory, content: bytes) -> None:
    from keytool import Keyring

    folder = tmp_path_factory.mktemp("ring")
    (folder / "keyring.json").write_bytes(content)
    parses_or_refuses(Keyring(folder).records)


@FUZZ
@given(doc=json_values)
def test_license_documents(doc: Any) -> None:
    from issuer import LicenseRecord

    parses_or_refuses(LicenseRecord.from_doc, doc)


@pytest.fixture(scope="module")
def ledger_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = Path(tmp_path_factory.mktemp("ledger"))
    make_issuer(home, FakeClock()).create_license(PRODUCT)
    return home


@FUZZ
@given(content=st.binary(max_size=300) | json_values.map(lambda v: json.dumps(v).encode()))
def test_ledger_shards(ledger_home: Path, content: bytes) -> None:
    from issuer import Issuer

    (shard,) = (ledger_home / "ledger" / "licenses").glob("*.json")
    original = shard.read_bytes()
    try:
        shard.write_bytes(content)
        parses_or_refuses(lambda: Issuer(ledger_home / "ledger", ledger_home / "keys").licenses())
    finally:
        shard.write_bytes(original)


@pytest.fixture(scope="module")
def app_and_ledger(tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, Path]:
    from starlette.testclient import TestClient

    from issuer.web.license_server import ServerConfig, create_app
    from issuer.web.plumbing import limit_body

    home = Path(tmp_path_factory.mktemp("server"))
    make_issuer(home, FakeClock()).create_license(PRODUCT, ip="127.0.0.1")
    config = ServerConfig(ledger=str(home / "ledger"), keys=str(home / "keys"))
    app = limit_body(create_app(config), config.max_body_bytes, config.max_header_bytes)
    return TestClient(app, raise_server_exceptions=False), home / "ledger"


auto_bodies = st.fixed_dictionaries(
    {},
    optional={
        "product": json_values | st.just(PRODUCT),
        "fingerprint": json_values | st.lists(st.sampled_from(["mid:" + "0" * 32, "mac:" + "1" * 32, "x"]), max_size=3),
        "callback_port": json_values | st.integers(-5, 70000),
        "challenge_hash": json_values | st.just("a" * 64),
        "hostname": json_values,
    },
)


@FUZZ
@given(
    path=st.sampled_from(["/v1/activations", "/v1/activations/auto"]),
    body=st.binary(max_size=200) | json_values.map(lambda v: json.dumps(v).encode()) | auto_bodies.map(lambda v: json.dumps(v).encode()),
)
def test_server_bodies_through_the_real_app(app_and_ledger: tuple[Any, Path], path: str, body: bytes) -> None:
    client, ledger = app_and_ledger
    before = ledger_bytes(ledger)
    response = client.post(path, content=body, headers={"Content-Type": "application/json"})
    assert 400 <= response.status_code < 500, (response.status_code, response.text)
    assert response.headers["content-type"] == "application/problem+json"
    assert isinstance(response.json()["code"], str)
    assert ledger_bytes(ledger) == before
