"""The conformance vectors (vectors/, docs/PROTOCOL.md): checked in as generated, and verifier agrees.

Every case of every file runs through the public verifier API; the outcome and
the error code must be the vector's. The vector's ``check`` is compared too
wherever verifier's message tells checks apart (several checks share one code).
"""

from __future__ import annotations

import datetime as dt
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from verifier import (
    ActivationNotFoundError,
    ActivationSupersededError,
    LicenseError,
    LicenseRevokedError,
    TokenStore,
    TrustedKeys,
    Verifier,
    normalize_key,
    parse_renewal_code,
    parse_request_code,
)
from verifier.clock import BootClock
from verifier.clock_mark import ClockMark
from verifier.fingerprint import fingerprint_from_sources, matches, parse_fingerprint

ROOT = Path(__file__).resolve().parents[3]
VECTORS = ROOT / "vectors"
FILES = (
    "activation_key",
    "request_code",
    "renewal_code",
    "fingerprint",
    "token",
    "revocation_list",
)
REFUSALS = {
    cls.code: cls
    for cls in (ActivationSupersededError, LicenseRevokedError, ActivationNotFoundError)
}

# What verifier's message says, for the checks that share an error code with others.
MESSAGES = {
    "format": r"compact JWS|not a compact JWS|is incomplete — copy all of it",
    "header": r"header is (malformed|not a JSON object)|its header",
    "alg": r"signed with EdDSA",
    "typ": r"type must be",
    "crit": r"extensions",
    "kid": r"unknown key",
    "key-revoked": r"revoked key",
    "key-window": r"predates its signing key|after key .* was retired",
    "signature": r"signature",
    "payload": r"payload",
    "claims": r"claim|'serial'|'iat'|'revoked'|'licenses'|'activations'|'iss'",
    "product": r"is for product|product must not be empty",
    "issuer": r"issued by",
    "iat": r"issued in the future",
    "refusal": r"refused to renew",
    "revoked": r"revocation list serial",
    "superseded": r"revocation list serial",
    "exp": r"lease ended|license expired",
    "identity": r"custom machine id",
    "prefix": r"should start with",
    "version": r"is not supported here|this is an? [a-z ]+, not an? ",
    "length": r"too long|must have 24|must be 24",
    "json": r"valid JSON",
    "layout": r"unknown layout",
    "field": r"malformed",
    "type": r"must be text|must be 24|must be a non-empty list",
    "character": r"invalid character",
    "checksum": r"check character|truncated or altered",
    "encoding": r"truncated or altered",
    "components": r"no stable server identifier",
    "component": r"malformed component",
    "duplicate": r"repeats",
    "count": r"too many",
    "rollback": r"older than serial",
}


def load(name: str) -> dict[str, Any]:
    return json.loads((VECTORS / f"{name}.json").read_text(encoding="utf-8"))


def cases(name: str) -> list[Any]:
    return [pytest.param(name, c, id=f"{name}:{c['id']}") for c in load(name)["cases"]]


def at(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))


def test_regenerating_gives_the_checked_in_bytes(tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, str(VECTORS / "generate.py"), "--out", str(tmp_path)],
        check=True,
        capture_output=True,
    )
    for name in FILES:
        assert (tmp_path / f"{name}.json").read_bytes() == (
            VECTORS / f"{name}.json"
        ).read_bytes(), (
            f"vectors/{name}.json is not what 'make vectors' writes: run it and commit the result"
        )


@pytest.mark.parametrize("name", FILES)
def test_every_file_has_the_shape_of_the_spec(name: str) -> None:
    doc = load(name)
    assert set(doc) == {"format", "version", "trusted_keys", "cases"}
    assert doc["format"] == name and doc["version"] == 1
    assert any(c["expect"].get("ok") for c in doc["cases"]), "a valid case per format"
    for c in doc["cases"]:
        assert set(c) == {"id", "description", "now", "input", "expect"}
        assert c["expect"].get("ok") is True or set(c["expect"]) == {"error", "check"}


def outcome(run: Any) -> dict[str, Any]:
    try:
        return {"ok": True, **run()}
    except LicenseError as err:
        return {"error": err.code, "message": err.message}


def run_activation_key(case: dict[str, Any], keys: TrustedKeys) -> dict[str, Any]:
    return {"key": normalize_key(case["input"]["text"])}


def run_request_code(case: dict[str, Any], keys: TrustedKeys) -> dict[str, Any]:
    req = parse_request_code(case["input"]["code"])
    return {
        "product": req.product,
        "activation_key": req.activation_key,
        "fingerprint": list(req.fingerprint),
        "hostname": req.hostname,
        "nonce": req.nonce,
        "created_at": int(req.created_at.timestamp()),
        "identity": req.identity,
    }


def run_renewal_code(case: dict[str, Any], keys: TrustedKeys) -> dict[str, Any]:
    req = parse_renewal_code(case["input"]["code"])
    return {
        "product": req.product,
        "license_id": req.license_id,
        "activation_id": req.activation_id,
        "fingerprint": list(req.fingerprint),
        "hostname": req.hostname,
        "nonce": req.nonce,
        "created_at": int(req.created_at.timestamp()),
    }


def run_fingerprint(case: dict[str, Any], keys: TrustedKeys) -> dict[str, Any]:
    inp = case["input"]
    if inp["op"] == "compute":
        import hashlib

        got = fingerprint_from_sources(
            inp["product"], inp["machine_id"], inp["dmi_uuid"], inp["macs"]
        )
        key = hashlib.sha256(b"licet/fingerprint/v1\x00" + inp["product"].encode()).hexdigest()
        return {"product_key": key, "fingerprint": list(got)}
    if inp["op"] == "match":
        return {"matches": matches(inp["bound"], inp["current"])}
    return {"fingerprint": list(parse_fingerprint(inp["fingerprint"]))}


def _verifier(
    case: dict[str, Any], keys: TrustedKeys, tmp: Path, product: str = "ispmanager"
) -> Verifier:
    inp = case["input"]
    now = at(case["now"])
    store = None
    if inp.get("clock_mark") is not None:
        store = TokenStore(tmp / "licet.token")
        store.save_mark(ClockMark(inp["clock_mark"]))
    server = inp.get("server") or {"machine_id": "unused"}
    declared = inp.get("machine_id_declared", False)
    return Verifier(
        product=inp.get("product", product),
        trusted_keys=keys,
        issuer=inp.get("issuer"),
        clock=lambda: now,
        boot_clock=BootClock(None, lambda: 0.0),
        machine_id=server["machine_id"] if declared else None,
        server_fingerprint=fingerprint_from_sources(
            inp.get("product", product),
            server.get("machine_id"),
            server.get("dmi_uuid"),
            server.get("macs", ()),
        ),
        store=store,
    )


def run_token(case: dict[str, Any], keys: TrustedKeys, tmp: Path) -> dict[str, Any]:
    inp = case["input"]
    v = _verifier(case, keys, tmp)
    if inp.get("revocation_list") is not None:
        v.apply_revocations(inp["revocation_list"])
    refusal = inp.get("renewal_refusal")
    if refusal is not None:
        v.record_refusal(
            refusal["token"],
            REFUSALS[refusal["code"]](),
            server_url="https://licenses.vectors.example",
        )
    status = v.status(inp["token"])
    if status.error is not None:
        raise status.error
    lic = v.verify(inp["token"])
    return {
        "state": str(status.state),
        "license_id": lic.license_id,
        "product": lic.product,
        "issuer": lic.issuer,
        "activation_id": lic.activation_id,
        "features": sorted(lic.features),
        "limits": dict(lic.limits),
        "iat": lic.iat,
        "nbf": lic.nbf,
        "exp": lic.exp,
        "renew_at": lic.renew_at_epoch,
        "license_exp": lic.license_exp,
        "fingerprint": list(lic.fingerprint),
        "ip": lic.ip,
        "identity": lic.identity,
    }


def run_revocation_list(case: dict[str, Any], keys: TrustedKeys, tmp: Path) -> dict[str, Any]:
    inp = case["input"]
    v = Verifier(
        product="ispmanager",
        trusted_keys=keys,
        issuer=inp.get("issuer"),
        clock=lambda: at(case["now"]),
        server_fingerprint=("mid:" + "0" * 32,),
    )
    for text in inp.get("applied", []):
        v.apply_revocations(text)
    lst = v.apply_revocations(inp["list"])
    return {
        "issuer": lst.issuer,
        "serial": lst.serial,
        "iat": lst.iat,
        "exp": lst.exp,
        "licenses": sorted(lst.licenses),
        "activations": sorted(lst.activations),
        "stale": lst.stale(at(case["now"]).timestamp()),
    }


@pytest.mark.parametrize(("name", "case"), [p for name in FILES for p in cases(name)])
def test_verifier_agrees_with_every_vector(name: str, case: dict[str, Any], tmp_path: Path) -> None:
    keys = TrustedKeys.from_jwks(load(name)["trusted_keys"])
    runners: dict[str, Any] = {
        "activation_key": lambda: run_activation_key(case, keys),
        "request_code": lambda: run_request_code(case, keys),
        "renewal_code": lambda: run_renewal_code(case, keys),
        "fingerprint": lambda: run_fingerprint(case, keys),
        "token": lambda: run_token(case, keys, tmp_path),
        "revocation_list": lambda: run_revocation_list(case, keys, tmp_path),
    }
    got = outcome(runners[name])
    expect = case["expect"]
    if expect.get("ok"):
        assert got == expect
        return
    assert got.get("error") == expect["error"], got
    pattern = MESSAGES.get(expect["check"])
    if pattern is not None:
        assert re.search(pattern, got["message"]), (expect["check"], got["message"])


def test_every_refusal_code_the_panel_side_produces_has_a_vector() -> None:
    codes = {c["expect"].get("error") for name in FILES for c in load(name)["cases"]}
    assert {
        "malformed-activation-key",
        "invalid-request-code",
        "invalid-renewal-code",
        "bad-input",
        "clock-rollback",
        "token-too-large",
        "invalid-token",
        "untrusted-key",
        "signing-key-revoked",
        "license-revoked",
        "activation-superseded",
        "activation-not-found",
        "token-expired",
        "token-not-yet-valid",
        "wrong-server",
        "invalid-revocations",
        "revocations-rollback",
    } <= codes
