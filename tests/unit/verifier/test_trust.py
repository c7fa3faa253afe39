from __future__ import annotations

import json
from pathlib import Path

import pytest
from support import Provider

from verifier import TrustedKeys, TrustedKeysError
from verifier.encoding import b64url_encode


def jwks_of(provider: Provider) -> dict:  # type: ignore[type-arg]
    return provider.trusted().to_jwks()


def test_jwks_round_trip(provider: Provider, tmp_path: Path) -> None:
    path = tmp_path / "trusted.json"
    path.write_text(json.dumps(jwks_of(provider)))
    keys = TrustedKeys.from_file(path)
    assert keys.kids == (provider.record.kid,)
    jwk = keys.to_jwks()["keys"][0]
    assert jwk["kty"] == "OKP" and jwk["crv"] == "Ed25519"
    assert jwk["use"] == "sig" and jwk["alg"] == "EdDSA"
    assert jwk["licet_status"] == "active" and jwk["licet_not_after"] is None


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda k: k.update(kty="RSA"), "not an Ed25519"),
        (lambda k: k.update(crv="Ed448"), "not an Ed25519"),
        (lambda k: k.update(alg="HS256"), "not an EdDSA"),
        (lambda k: k.update(d="AAAA"), "private key material"),
        (lambda k: k.update(kid="0000000000000000"), "kid does not match"),
        (lambda k: k.update(x=b64url_encode(bytes(32))), "small-order"),
        (lambda k: k.update(x=b64url_encode(bytes(31))), "32 bytes"),
        (lambda k: k.update(x="not base64!"), "base64url"),
        (lambda k: k.update(licet_status="trusted"), "licet_status"),
        (lambda k: k.update(licet_not_before="2026-01-01"), "not a timestamp"),
    ],
)
def test_bad_keys_are_refused(provider: Provider, mutate, message: str) -> None:  # type: ignore[no-untyped-def]
    jwks = jwks_of(provider)
    mutate(jwks["keys"][0])
    with pytest.raises(TrustedKeysError, match=message):
        TrustedKeys.from_jwks(jwks)


@pytest.mark.parametrize("text", ["", "[]", "{}", '{"keys": {}}', '{"keys": []}', "not json", '{"keys":[], "keys":[]}'])
def test_bad_documents_are_refused(text: str) -> None:
    with pytest.raises(TrustedKeysError):
        TrustedKeys.from_json(text)


def test_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(TrustedKeysError, match=r"nope\.json not found — .*'keytool export'") as refused:
        TrustedKeys.from_file(tmp_path / "nope.json")
    assert str((tmp_path / "nope.json").resolve()) in str(refused.value)


def test_oversized_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "big.json"
    path.write_bytes(b" " * (2 << 20))
    with pytest.raises(TrustedKeysError, match="too large"):
        TrustedKeys.from_file(path)


def test_duplicate_kid_is_refused(provider: Provider) -> None:
    jwks = jwks_of(provider)
    jwks["keys"].append(dict(jwks["keys"][0]))
    with pytest.raises(TrustedKeysError, match="twice"):
        TrustedKeys.from_jwks(jwks)
