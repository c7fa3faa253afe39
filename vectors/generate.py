"""Write licet's conformance vectors (docs/PROTOCOL.md) into a folder, deterministically.

Run by ``make vectors`` (into ``vectors/``) and by the test that proves the
checked-in files are what this script writes. Fixed clock, fixed test-only keys
(their seeds are written in vectors/README.md), no randomness anywhere:
Ed25519 signatures are deterministic, so every byte comes out the same.

The keys here are test-only keys: nothing may ever trust them.

Usage:
    python vectors/generate.py [--out DIR]
"""

from __future__ import annotations

import argparse
import base64
import datetime as dt
import hashlib
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import hmac as crypto_hmac
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.hashes import SHA256
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from verifier.fingerprint import fingerprint_from_sources

VERSION = 1
NOW = dt.datetime(2027, 3, 1, 12, 0, 0, tzinfo=dt.UTC)
T = int(NOW.timestamp())
DAY = 86400
ISSUER = "vectors.licet.example"
PRODUCT = "ispmanager"
LICENSE_ID = "LIC-VECTOR-0001"
ACTIVATION_ID = "ACT-VECTOR-0001"
SERVER = {
    "machine_id": "4c1cf7e9a0b84d2f9e3c6a5b8d7f0e12",
    "dmi_uuid": "4C4C4544-0042-3510-8051-B4C04F563432",
    "macs": ["52:54:00:12:34:56", "52:54:00:AB:CD:EF"],
}
OTHER_SERVER = {
    "machine_id": "9e0f1a2b3c4d5e6f708192a3b4c5d6e7",
    "dmi_uuid": "0F5A2C44-7B1E-4E0D-9C1A-2B3C4D5E6F70",
    "macs": ["52:54:00:99:88:77"],
}
CONTAINER_ID = "container-vector-42"

# Test-only key seeds: SHA-256 of these labels. vectors/README.md repeats them.
SEED_LABELS = {
    "A": "licet conformance vectors: key A (active). TEST ONLY, NEVER TRUST",
    "B": "licet conformance vectors: key B (retired). TEST ONLY, NEVER TRUST",
    "C": "licet conformance vectors: key C (revoked). TEST ONLY, NEVER TRUST",
    "X": "licet conformance vectors: key X (not trusted). TEST ONLY, NEVER TRUST",
}
WINDOWS = {  # status, licet_not_before, licet_not_after
    "A": ("active", "2026-06-01T00:00:00Z", None),
    "B": ("retired", "2025-01-01T00:00:00Z", "2026-06-01T00:00:00Z"),
    "C": ("revoked", "2025-01-01T00:00:00Z", "2025-06-01T00:00:00Z"),
    "X": ("active", "2025-01-01T00:00:00Z", None),  # never in the trusted set
}


def epoch(text: str) -> int:
    """Epoch seconds of an ISO-UTC text."""
    return int(dt.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp())


def iso(seconds: int) -> str:
    """ISO-UTC text of epoch seconds."""
    return dt.datetime.fromtimestamp(seconds, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def b64url(data: bytes) -> str:
    """Unpadded base64url."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def compact(obj: Any) -> bytes:
    """Compact JSON, members sorted, UTF-8."""
    return json.dumps(obj, separators=(",", ":"), sort_keys=True, ensure_ascii=False).encode()


class Key:
    """A test-only Ed25519 key derived from its label."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.seed = hashlib.sha256(SEED_LABELS[name].encode()).digest()
        self.private = Ed25519PrivateKey.from_private_bytes(self.seed)
        self.public = self.private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        self.kid = hashlib.sha256(self.public).hexdigest()[:16]

    def jwk(self) -> dict[str, Any]:
        status, not_before, not_after = WINDOWS[self.name]
        return {
            "kty": "OKP",
            "crv": "Ed25519",
            "x": b64url(self.public),
            "kid": self.kid,
            "use": "sig",
            "alg": "EdDSA",
            "licet_status": status,
            "licet_not_before": epoch(not_before),
            "licet_not_after": None if not_after is None else epoch(not_after),
        }


KEYS = {name: Key(name) for name in SEED_LABELS}
TRUSTED = {"keys": [KEYS[n].jwk() for n in ("A", "B", "C")]}


def jws(
    header: dict[str, Any] | bytes, payload: dict[str, Any] | bytes, key: Key | None = None
) -> str:
    """A compact JWS; ``header``/``payload`` given as bytes are used verbatim."""
    head = b64url(header if isinstance(header, bytes) else compact(header))
    body = b64url(payload if isinstance(payload, bytes) else compact(payload))
    signer = key or KEYS["A"]
    signature = signer.private.sign(f"{head}.{body}".encode())
    return f"{head}.{body}.{b64url(signature)}"


def header(typ: str = "licet+jwt", key: Key | None = None, **extra: Any) -> dict[str, Any]:
    return {"alg": "EdDSA", "kid": (key or KEYS["A"]).kid, "typ": typ, **extra}


def fp(sources: dict[str, Any], product: str = PRODUCT) -> list[str]:
    return list(
        fingerprint_from_sources(
            product, sources.get("machine_id"), sources.get("dmi_uuid"), sources.get("macs", ())
        )
    )


def claims(iat: int = T - 10 * DAY, lease: int = 30 * DAY, **changes: Any) -> dict[str, Any]:
    """The claims of a well-formed token signed at ``iat``; ``changes`` override members."""
    exp = iat + lease
    base: dict[str, Any] = {
        "iss": ISSUER,
        "sub": LICENSE_ID,
        "aud": PRODUCT,
        "jti": ACTIVATION_ID,
        "iat": iat,
        "nbf": iat,
        "exp": exp,
        "renew_at": exp - lease // 3,
        "license_exp": T + 300 * DAY,
        "fpr": fp(SERVER),
        "features": ["dns", "mail"],
        "limits": {"domains": 100},
        "idk": "hardware",
    }
    base.update(changes)
    return {k: v for k, v in base.items() if v is not _DROP}


_DROP = object()


def token(key: Key | None = None, typ: str = "licet+jwt", **changes: Any) -> str:
    return jws(header(typ, key), claims(**changes), key)


def case(
    case_id: str, description: str, input_: dict[str, Any], expect: dict[str, Any], now: int = T
) -> dict[str, Any]:
    return {
        "id": case_id,
        "description": description,
        "now": iso(now),
        "input": input_,
        "expect": expect,
    }


def error(code: str, check: str) -> dict[str, str]:
    return {"error": code, "check": check}


def document(name: str, cases: list[dict[str, Any]]) -> dict[str, Any]:
    ids = [c["id"] for c in cases]
    if len(set(ids)) != len(ids):
        raise SystemExit(f"{name}: duplicate case id")
    return {"format": name, "version": VERSION, "trusted_keys": TRUSTED, "cases": cases}


# ---------------------------------------------------------------- activation keys

_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def _check_char(values: list[int]) -> str:
    total = 0
    for position, value in enumerate(reversed(values)):
        if position % 2 == 0:
            value *= 2
            value = value // 32 + value % 32
        total += value
    return _CROCKFORD[(-total) % 32]


def make_key(secret: bytes) -> str:
    number = int.from_bytes(secret[:15], "big") >> 5
    values = [(number >> (5 * i)) & 31 for i in reversed(range(23))]
    chars = "".join(_CROCKFORD[v] for v in values) + _check_char(values)
    return "-".join(chars[i : i + 4] for i in range(0, 24, 4))


KEY1 = make_key(hashlib.sha256(b"licet vectors activation key 1").digest())
KEY2 = make_key(hashlib.sha256(b"licet vectors activation key 2").digest())
KEY_LOOKALIKE = make_key(bytes(15))  # all zeros: 0000-...: typed with O's


def _substitute(key: str, index: int) -> str:
    chars = list(key.replace("-", ""))
    value = _CROCKFORD.index(chars[index])
    chars[index] = _CROCKFORD[(value + 7) % 32]
    return "".join(chars)


def activation_key_cases() -> list[dict[str, Any]]:
    plain = KEY1.replace("-", "")
    swapped = list(plain)
    i = next(i for i in range(22) if plain[i] != plain[i + 1])
    swapped[i], swapped[i + 1] = swapped[i + 1], swapped[i]
    ok = lambda k: {"ok": True, "key": k}  # noqa: E731
    return [
        case("canonical", "the display form is accepted as it is", {"text": KEY1}, ok(KEY1)),
        case("canonical-2", "another key", {"text": KEY2}, ok(KEY2)),
        case(
            "lowercase-no-dashes",
            "case and dashes do not matter",
            {"text": plain.lower()},
            ok(KEY1),
        ),
        case(
            "spaces-and-tabs",
            "whitespace anywhere is ignored",
            {"text": "  " + KEY1.replace("-", " \t") + "\n"},
            ok(KEY1),
        ),
        case(
            "regrouped",
            "dashes in other places are ignored",
            {"text": plain[:3] + "-" + plain[3:11] + "--" + plain[11:]},
            ok(KEY1),
        ),
        case(
            "lookalikes",
            "O reads as 0, I and L as 1",
            {"text": KEY_LOOKALIKE.replace("0", "O")},
            ok(KEY_LOOKALIKE),
        ),
        case(
            "lookalikes-lower",
            "o, i and l in lower case fold too",
            {"text": make_key(b"\x08\x42" + bytes(13)).replace("0", "o").replace("1", "l").lower()},
            ok(make_key(b"\x08\x42" + bytes(13))),
        ),
        case(
            "not-text",
            "a JSON number is not a key",
            {"text": 123456},
            error("malformed-activation-key", "type"),
        ),
        case(
            "too-short",
            "23 characters",
            {"text": KEY1[:-1]},
            error("malformed-activation-key", "length"),
        ),
        case(
            "too-long",
            "25 characters",
            {"text": KEY1 + "0"},
            error("malformed-activation-key", "length"),
        ),
        case(
            "overlong-input",
            "more than 64 characters of input, even if mostly dashes",
            {"text": KEY1 + "-" * 40},
            error("malformed-activation-key", "length"),
        ),
        case("empty", "nothing typed", {"text": ""}, error("malformed-activation-key", "length")),
        case(
            "bad-character-u",
            "U is not in the alphabet",
            {"text": "U" + KEY1[1:]},
            error("malformed-activation-key", "character"),
        ),
        case(
            "bad-character-symbol",
            "punctuation other than dashes",
            {"text": KEY1[:-1] + "*"},
            error("malformed-activation-key", "character"),
        ),
        case(
            "typo-first",
            "one character mistyped (first)",
            {"text": _substitute(KEY1, 0)},
            error("malformed-activation-key", "checksum"),
        ),
        case(
            "typo-middle",
            "one character mistyped (middle)",
            {"text": _substitute(KEY1, 11)},
            error("malformed-activation-key", "checksum"),
        ),
        case(
            "typo-check-character",
            "the check character itself mistyped",
            {"text": _substitute(KEY1, 23)},
            error("malformed-activation-key", "checksum"),
        ),
        case(
            "swapped-neighbours",
            "two neighbouring characters swapped",
            {"text": "".join(swapped)},
            error("malformed-activation-key", "checksum"),
        ),
    ]


# ---------------------------------------------------------------- request and renewal codes


def encode_code(prefix: str, payload: Any, *, body: bytes | None = None) -> str:
    raw = compact(payload) if body is None else body
    return prefix + b64url(raw + hashlib.sha256(raw).digest()[:4])


def request_payload(**changes: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "v": 1,
        "product": PRODUCT,
        "key": KEY1,
        "fp": fp(SERVER),
        "host": "panel-01.customer.example",
        "nonce": "nVq3kM0pX2aZ8wLd",
        "ts": T - 3600,
        "idk": "hardware",
    }
    base.update(changes)
    return {k: v for k, v in base.items() if v is not _DROP}


def _code_errors(
    prefix: str, code: str, error_code: str, what: Callable[..., dict[str, Any]]
) -> list[dict[str, Any]]:
    """Cases every one-line code shares: its envelope (prefix, encoding, checksum, JSON, layout)."""
    data = code[len(prefix) :]
    altered = data[:10] + ("B" if data[10] != "B" else "C") + data[11:]
    # Truncations: one that leaves a decodable length (checksum fails), one that does not (encoding).
    cut = next(n for n in range(4, 12) if (len(data) - n) % 4 == 0)
    cut_bad = next(n for n in range(4, 12) if (len(data) - n) % 4 == 1)
    tail = len(data) % 4
    noncanonical = None
    if tail in (2, 3):
        last = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_".index(data[-1])
        noncanonical = (
            data[:-1] + "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"[last + 1]
        )
    version = prefix.replace("1", "2", 1)
    cases = [
        case("not-text", "a JSON number is not a code", {"code": 42}, error(error_code, "type")),
        case("empty", "nothing pasted", {"code": ""}, error(error_code, "prefix")),
        case("no-prefix", "the base64url part alone", {"code": data}, error(error_code, "prefix")),
        case(
            "lowercase-prefix",
            "the prefix is case-sensitive",
            {"code": prefix.lower() + data},
            error(error_code, "prefix"),
        ),
        case(
            "other-version",
            "a later version of the format",
            {"code": version + data},
            error(error_code, "version"),
        ),
        case(
            "too-long",
            "over 4096 characters",
            {"code": prefix + "A" * 4096},
            error(error_code, "length"),
        ),
        case(
            "padding",
            "base64url padding is not allowed",
            {"code": code + "=="},
            error(error_code, "encoding"),
        ),
        case(
            "standard-base64",
            "'+' or '/' (standard base64) is not allowed",
            {"code": prefix + data[:5] + "+" + data[6:]},
            error(error_code, "encoding"),
        ),
        case(
            "truncated-bad-length",
            "cut to a length base64url cannot have",
            {"code": code[: len(code) - cut_bad]},
            error(error_code, "encoding"),
        ),
        case(
            "truncated",
            "the last characters lost",
            {"code": code[: len(code) - cut]},
            error(error_code, "checksum"),
        ),
        case(
            "altered",
            "one character changed",
            {"code": prefix + altered},
            error(error_code, "checksum"),
        ),
        case(
            "checksum-only",
            "shorter than its checksum",
            {"code": prefix + "AAAAAA"},
            error(error_code, "checksum"),
        ),
        case(
            "not-json",
            "a correct checksum over bytes that are not JSON",
            {"code": encode_code(prefix, None, body=b"not json")},
            error(error_code, "json"),
        ),
        case(
            "duplicate-member",
            "JSON with a member twice",
            {"code": encode_code(prefix, None, body=b'{"v":1,"v":1}')},
            error(error_code, "json"),
        ),
        case(
            "not-object",
            "JSON that is not an object",
            {"code": encode_code(prefix, [1])},
            error(error_code, "layout"),
        ),
        case(
            "version-2-layout",
            "an object with v = 2",
            {"code": encode_code(prefix, what(v=2))},
            error(error_code, "layout"),
        ),
        case(
            "no-v",
            "an object without v",
            {"code": encode_code(prefix, what(v=_DROP))},
            error(error_code, "layout"),
        ),
    ]
    if noncanonical is not None:
        cases.append(
            case(
                "non-canonical-tail",
                "a last character whose unused bits are not zero",
                {"code": prefix + noncanonical},
                error(error_code, "encoding"),
            )
        )
    return cases


def request_code_cases() -> list[dict[str, Any]]:
    p = "LICET1."
    good = encode_code(p, request_payload())

    def ok(payload: dict[str, Any]) -> dict[str, Any]:
        return {
            "ok": True,
            "product": payload["product"],
            "activation_key": make_canonical(payload["key"]),
            "fingerprint": payload["fp"],
            "hostname": payload.get("host", ""),
            "nonce": payload["nonce"],
            "created_at": payload["ts"],
            "identity": payload.get("idk", "hardware"),
        }

    container = request_payload(fp=fp({"machine_id": CONTAINER_ID}), idk="machine-id", host="ct42")
    typed_key = request_payload(key=KEY1.replace("-", "").lower())
    legacy = request_payload(idk=_DROP, host=_DROP)
    bad = "invalid-request-code"
    cases = [
        case("valid", "a request code as a panel prints it", {"code": good}, ok(request_payload())),
        case(
            "valid-wrapped",
            "line breaks and indentation from a terminal are ignored",
            {"code": "  " + good[:40] + "\n    " + good[40:90] + "\r\n" + good[90:] + "\n"},
            ok(request_payload()),
        ),
        case(
            "valid-machine-id",
            "a container that declared its own machine id",
            {"code": encode_code(p, container)},
            ok(container),
        ),
        case(
            "valid-key-as-typed",
            "the key inside is normalised like a typed key",
            {"code": encode_code(p, typed_key)},
            ok(typed_key),
        ),
        case(
            "valid-defaults",
            "host and idk may be absent (empty host, hardware)",
            {"code": encode_code(p, legacy)},
            ok(legacy),
        ),
        case(
            "renewal-code",
            "a renewal code is not a request code",
            {"code": encode_code("LICET1R.", renewal_payload())},
            error(bad, "version"),
        ),
        *_code_errors(p, good, bad, request_payload),
        case(
            "empty-product",
            "product is empty",
            {"code": encode_code(p, request_payload(product=""))},
            error(bad, "field"),
        ),
        case(
            "product-not-text",
            "product is a number",
            {"code": encode_code(p, request_payload(product=7))},
            error(bad, "field"),
        ),
        case(
            "host-markup",
            "host holds characters outside [A-Za-z0-9._-]",
            {"code": encode_code(p, request_payload(host="<b>x</b>"))},
            error(bad, "field"),
        ),
        case(
            "no-nonce",
            "nonce missing",
            {"code": encode_code(p, request_payload(nonce=_DROP))},
            error(bad, "field"),
        ),
        case(
            "ts-text",
            "ts is not epoch seconds",
            {"code": encode_code(p, request_payload(ts="2027-03-01"))},
            error(bad, "field"),
        ),
        case(
            "ts-float",
            "ts is not a whole number",
            {"code": encode_code(p, request_payload(ts=1803898800.5))},
            error(bad, "field"),
        ),
        case(
            "ts-negative",
            "ts before 1970",
            {"code": encode_code(p, request_payload(ts=-1))},
            error(bad, "field"),
        ),
        case(
            "fp-empty",
            "fingerprint is an empty list",
            {"code": encode_code(p, request_payload(fp=[]))},
            error(bad, "field"),
        ),
        case(
            "fp-malformed",
            "a fingerprint component of the wrong shape",
            {"code": encode_code(p, request_payload(fp=["mid:XYZ"]))},
            error(bad, "field"),
        ),
        case(
            "idk-unknown",
            "idk is not hardware or machine-id",
            {"code": encode_code(p, request_payload(idk="vm"))},
            error(bad, "field"),
        ),
        case(
            "key-typo",
            "the key inside fails its check character",
            {"code": encode_code(p, request_payload(key=_substitute(KEY1, 5)))},
            error("malformed-activation-key", "checksum"),
        ),
        case(
            "key-short",
            "the key inside has 23 characters",
            {"code": encode_code(p, request_payload(key=KEY1[:-1]))},
            error("malformed-activation-key", "length"),
        ),
        case(
            "key-missing",
            "no key inside",
            {"code": encode_code(p, request_payload(key=_DROP))},
            error("malformed-activation-key", "type"),
        ),
        case(
            "field-before-key",
            "a bad field is reported before a bad key",
            {"code": encode_code(p, request_payload(product="", key="x"))},
            error(bad, "field"),
        ),
    ]
    return cases


def make_canonical(text: str) -> str:
    chars = text.replace("-", "").upper()
    return "-".join(chars[i : i + 4] for i in range(0, 24, 4))


def renewal_payload(**changes: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "v": 1,
        "product": PRODUCT,
        "lic": LICENSE_ID,
        "act": ACTIVATION_ID,
        "fp": fp(SERVER),
        "host": "panel-01.customer.example",
        "nonce": "Rk2mQ9vX0bTz4yHc",
        "ts": T - 60,
    }
    base.update(changes)
    return {k: v for k, v in base.items() if v is not _DROP}


def renewal_code_cases() -> list[dict[str, Any]]:
    p = "LICET1R."
    good = encode_code(p, renewal_payload())

    def ok(payload: dict[str, Any]) -> dict[str, Any]:
        return {
            "ok": True,
            "product": payload["product"],
            "license_id": payload["lic"],
            "activation_id": payload["act"],
            "fingerprint": payload["fp"],
            "hostname": payload.get("host", ""),
            "nonce": payload["nonce"],
            "created_at": payload["ts"],
        }

    no_host = renewal_payload(host=_DROP)
    bad = "invalid-renewal-code"
    return [
        case("valid", "a renewal code as a panel prints it", {"code": good}, ok(renewal_payload())),
        case(
            "valid-wrapped",
            "line breaks and indentation are ignored",
            {"code": good[:30] + "\n  " + good[30:]},
            ok(renewal_payload()),
        ),
        case("valid-no-host", "host may be absent", {"code": encode_code(p, no_host)}, ok(no_host)),
        case(
            "valid-extra-member",
            "members a later minor revision adds are ignored",
            {"code": encode_code(p, renewal_payload(idk="hardware"))},
            ok(renewal_payload()),
        ),
        case(
            "request-code",
            "a request code is not a renewal code",
            {"code": encode_code("LICET1.", request_payload())},
            error(bad, "version"),
        ),
        *_code_errors(p, good, bad, renewal_payload),
        case(
            "no-license-id",
            "lic missing",
            {"code": encode_code(p, renewal_payload(lic=_DROP))},
            error(bad, "field"),
        ),
        case(
            "empty-activation-id",
            "act empty",
            {"code": encode_code(p, renewal_payload(act=""))},
            error(bad, "field"),
        ),
        case(
            "long-license-id",
            "lic over 253 characters",
            {"code": encode_code(p, renewal_payload(lic="L" * 254))},
            error(bad, "field"),
        ),
        case(
            "fp-duplicate",
            "a fingerprint component twice",
            {"code": encode_code(p, renewal_payload(fp=[fp(SERVER)[0]] * 2))},
            error(bad, "field"),
        ),
        case(
            "ts-bool",
            "ts is true",
            {"code": encode_code(p, renewal_payload(ts=True))},
            error(bad, "field"),
        ),
        case(
            "host-space",
            "host with a space",
            {"code": encode_code(p, renewal_payload(host="panel 01"))},
            error(bad, "field"),
        ),
    ]


# ---------------------------------------------------------------- fingerprints


def product_key(product: str) -> str:
    return hashlib.sha256(b"licet/fingerprint/v1\x00" + product.encode()).hexdigest()


def component(product: str, kind: str, value: str) -> str:
    mac = crypto_hmac.HMAC(bytes.fromhex(product_key(product)), SHA256())
    mac.update(f"{kind}\x00{value}".encode())
    return f"{kind}:{mac.finalize().hex()[:32]}"


def fingerprint_cases() -> list[dict[str, Any]]:
    def compute(
        cid: str,
        description: str,
        product: str,
        sources: dict[str, Any],
        expect: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        inp = {
            "op": "compute",
            "product": product,
            "machine_id": sources.get("machine_id"),
            "dmi_uuid": sources.get("dmi_uuid"),
            "macs": sources.get("macs", []),
        }
        if expect is None:
            expect = {
                "ok": True,
                "product_key": product_key(product),
                "fingerprint": fp(sources, product),
            }
        return case(cid, description, inp, expect)

    full = fp(SERVER)
    one_nic = component(PRODUCT, "mac", "52:54:00:00:00:01")
    macs9 = [f"52:54:00:00:00:{i:02X}" for i in range(9, 0, -1)]
    return [
        compute("hardware", "machine id, DMI UUID and two NICs", PRODUCT, SERVER),
        compute(
            "hardware-other-product",
            "the same server for another product: unlinkable hashes",
            "billmanager",
            SERVER,
        ),
        compute(
            "machine-id-override",
            "a declared machine id alone (containers, cloned VMs)",
            PRODUCT,
            {"machine_id": CONTAINER_ID},
        ),
        compute(
            "whitespace-trimmed",
            "values are trimmed (a machine-id file ends with a newline)",
            PRODUCT,
            {
                "machine_id": "  " + SERVER["machine_id"] + "\n",
                "dmi_uuid": " " + SERVER["dmi_uuid"] + "\n",
                "macs": [" 52:54:00:12:34:56 "],
            },
        ),
        compute(
            "uuid-lowercased",
            "the DMI UUID is compared in lower case",
            PRODUCT,
            {"machine_id": None, "dmi_uuid": SERVER["dmi_uuid"].upper()},
        ),
        compute(
            "bogus-uuids",
            "all-zero and all-f UUIDs are ignored",
            PRODUCT,
            {"machine_id": "m1", "dmi_uuid": "FFFFFFFF-FFFF-FFFF-FFFF-FFFFFFFFFFFF"},
        ),
        compute(
            "zero-uuid",
            "the all-zero UUID is ignored",
            PRODUCT,
            {"machine_id": "m1", "dmi_uuid": "00000000-0000-0000-0000-000000000000"},
        ),
        compute(
            "macs-normalised",
            "MACs: lower case, duplicates and 00:00:00:00:00:00 dropped, sorted",
            PRODUCT,
            {
                "machine_id": None,
                "macs": [
                    "52:54:00:AB:CD:EF",
                    "52:54:00:ab:cd:ef",
                    "00:00:00:00:00:00",
                    "",
                    "52:54:00:12:34:56",
                ],
            },
        ),
        compute(
            "macs-at-most-8",
            "only the first 8 MACs in sorted order count",
            PRODUCT,
            {"machine_id": "m1", "macs": macs9},
        ),
        compute(
            "unicode-machine-id", "values are hashed as UTF-8", PRODUCT, {"machine_id": "машина-7"}
        ),
        compute(
            "nothing",
            "no usable component at all",
            PRODUCT,
            {
                "machine_id": "  ",
                "dmi_uuid": "00000000-0000-0000-0000-000000000000",
                "macs": ["00:00:00:00:00:00"],
            },
            error("bad-input", "components"),
        ),
        compute(
            "empty-product",
            "the product keys every hash: it must not be empty",
            "",
            SERVER,
            error("bad-input", "product"),
        ),
        case(
            "match-same",
            "the same server matches",
            {"op": "match", "bound": full, "current": full},
            {"ok": True, "matches": True},
        ),
        case(
            "match-nic-added",
            "a NIC added",
            {"op": "match", "bound": full, "current": [*full, one_nic]},
            {"ok": True, "matches": True},
        ),
        case(
            "match-nic-replaced",
            "one of two NICs replaced (weight 5 of 6 kept)",
            {"op": "match", "bound": full, "current": [*full[:3], one_nic]},
            {"ok": True, "matches": True},
        ),
        case(
            "match-reinstalled",
            "the OS reinstalled: new machine id, same board and NICs (4 of 6)",
            {
                "op": "match",
                "bound": full,
                "current": [component(PRODUCT, "mid", "new"), *full[1:]],
            },
            {"ok": True, "matches": True},
        ),
        case(
            "match-half",
            "only the machine id kept (2 of 6 is not more than half)",
            {"op": "match", "bound": full, "current": [full[0]]},
            {"ok": True, "matches": False},
        ),
        case(
            "match-exactly-half",
            "machine id and one NIC of a board without UUID (3 of 6)",
            {"op": "match", "bound": full, "current": [full[0], full[2]]},
            {"ok": True, "matches": False},
        ),
        case(
            "match-other-server",
            "a different server",
            {"op": "match", "bound": full, "current": fp(OTHER_SERVER)},
            {"ok": True, "matches": False},
        ),
        case(
            "match-single-component",
            "a machine-id fingerprint matches itself only",
            {"op": "match", "bound": fp({"machine_id": CONTAINER_ID}), "current": full},
            {"ok": True, "matches": False},
        ),
        case(
            "parse-valid",
            "a received fingerprint of legal shape",
            {"op": "parse", "fingerprint": full},
            {"ok": True, "fingerprint": full},
        ),
        case(
            "parse-not-list",
            "not a list",
            {"op": "parse", "fingerprint": "mid:" + "0" * 32},
            error("bad-input", "type"),
        ),
        case(
            "parse-empty",
            "an empty list",
            {"op": "parse", "fingerprint": []},
            error("bad-input", "type"),
        ),
        case(
            "parse-uppercase-hex",
            "hex digits must be lower case",
            {"op": "parse", "fingerprint": ["mid:" + "A" * 32]},
            error("bad-input", "component"),
        ),
        case(
            "parse-unknown-kind",
            "an unknown kind",
            {"op": "parse", "fingerprint": ["cpu:" + "0" * 32]},
            error("bad-input", "component"),
        ),
        case(
            "parse-short",
            "31 hex digits",
            {"op": "parse", "fingerprint": ["mid:" + "0" * 31]},
            error("bad-input", "component"),
        ),
        case(
            "parse-duplicate",
            "a component twice",
            {"op": "parse", "fingerprint": [full[2], full[2]]},
            error("bad-input", "duplicate"),
        ),
        case(
            "parse-two-machine-ids",
            "two components of kind mid",
            {"op": "parse", "fingerprint": [full[0], component(PRODUCT, "mid", "x")]},
            error("bad-input", "count"),
        ),
        case(
            "parse-nine-macs",
            "nine NICs",
            {"op": "parse", "fingerprint": [component(PRODUCT, "mac", m) for m in macs9]},
            error("bad-input", "count"),
        ),
    ]


# ---------------------------------------------------------------- revocation lists

REV_TYP = "licet-revocations+jwt"


def rev_claims(serial: Any = 7, iat: Any = T - DAY, **changes: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "iss": ISSUER,
        "serial": serial,
        "iat": iat,
        "exp": iat + 30 * DAY if isinstance(iat, int) else T,
        "revoked": {
            "licenses": ["LIC-REVOKED-0009"],
            "activations": ["ACT-OLD-0003", "ACT-OLD-0004"],
        },
    }
    base.update(changes)
    return {k: v for k, v in base.items() if v is not _DROP}


def rev_list(
    key: Key | None = None, typ: str = REV_TYP, head: dict[str, Any] | None = None, **changes: Any
) -> str:
    return jws(head or header(typ, key), rev_claims(**changes), key)


def tamper(text: str, payload: dict[str, Any]) -> str:
    head, _, signature = text.split(".")
    return f"{head}.{b64url(compact(payload))}.{signature}"


def revocation_cases() -> list[dict[str, Any]]:
    def ok(c: dict[str, Any], now: int = T) -> dict[str, Any]:
        return {
            "ok": True,
            "issuer": c["iss"],
            "serial": c["serial"],
            "iat": c["iat"],
            "exp": c["exp"],
            "licenses": sorted(c["revoked"]["licenses"]),
            "activations": sorted(c["revoked"]["activations"]),
            "stale": now >= c["exp"],
        }

    bad = "invalid-revocations"
    good = rev_list()
    older = rev_list(
        serial=6, iat=T - 5 * DAY, revoked={"licenses": [], "activations": ["ACT-OLD-0003"]}
    )
    refreshed = rev_list(iat=T - 3600)
    empty = rev_claims(serial=0, revoked={"licenses": [], "activations": []})
    return [
        case("valid", "a fresh list", {"list": good}, ok(rev_claims())),
        case(
            "valid-newline",
            "surrounding whitespace (a file's newline) is ignored",
            {"list": good + "\n"},
            ok(rev_claims()),
        ),
        case(
            "valid-empty",
            "serial 0, nothing revoked",
            {"list": jws(header(REV_TYP), empty)},
            ok(empty),
        ),
        case(
            "valid-stale",
            "past its exp: still applies, reported stale",
            {"list": rev_list(iat=T - 40 * DAY)},
            ok(rev_claims(iat=T - 40 * DAY)),
        ),
        case(
            "valid-newer-serial",
            "a higher serial replaces the one held",
            {"applied": [older], "list": good},
            ok(rev_claims()),
        ),
        case(
            "valid-same-serial-refreshed",
            "the same serial signed later replaces it (fresh again)",
            {"applied": [good], "list": refreshed},
            ok(rev_claims(iat=T - 3600)),
        ),
        case(
            "valid-same-serial-older",
            "the same serial signed earlier leaves the held one in force",
            {"applied": [refreshed], "list": good},
            ok(rev_claims(iat=T - 3600)),
        ),
        case(
            "valid-issuer-pinned",
            "the configured issuer matches",
            {"list": good, "issuer": ISSUER},
            ok(rev_claims()),
        ),
        case(
            "valid-retired-key",
            "signed by a retired key inside its window",
            {"list": rev_list(KEYS["B"], iat=epoch("2026-05-01T00:00:00Z"))},
            ok(rev_claims(iat=epoch("2026-05-01T00:00:00Z"))),
        ),
        case(
            "rollback",
            "a lower serial than the one applied",
            {"applied": [good], "list": older},
            error("revocations-rollback", "rollback"),
        ),
        case(
            "tampered",
            "an entry removed after signing",
            {"list": tamper(good, rev_claims(revoked={"licenses": [], "activations": []}))},
            error(bad, "signature"),
        ),
        case(
            "tampered-serial",
            "the serial raised after signing",
            {"list": tamper(good, rev_claims(serial=99))},
            error(bad, "signature"),
        ),
        case(
            "foreign-signature",
            "signed by an untrusted key under a trusted kid",
            {"list": jws(header(REV_TYP), rev_claims(), KEYS["X"])},
            error(bad, "signature"),
        ),
        case(
            "unknown-kid",
            "signed by a key not in the trusted set",
            {"list": rev_list(KEYS["X"])},
            error(bad, "kid"),
        ),
        case(
            "no-kid",
            "no kid in the header",
            {"list": jws({"alg": "EdDSA", "typ": REV_TYP}, rev_claims())},
            error(bad, "kid"),
        ),
        case(
            "revoked-key",
            "signed by a revoked key",
            {"list": rev_list(KEYS["C"], iat=epoch("2025-03-01T00:00:00Z"))},
            error(bad, "key-revoked"),
        ),
        case(
            "key-window",
            "signed by a retired key after its retirement",
            {"list": rev_list(KEYS["B"])},
            error(bad, "key-window"),
        ),
        case(
            "wrong-alg",
            "alg HS256",
            {"list": jws({"alg": "HS256", "kid": KEYS["A"].kid, "typ": REV_TYP}, rev_claims())},
            error(bad, "alg"),
        ),
        case(
            "wrong-typ",
            "an activation token's typ",
            {"list": rev_list(typ="licet+jwt")},
            error(bad, "typ"),
        ),
        case(
            "token-as-list",
            "an activation token given as a list",
            {"list": token()},
            error(bad, "typ"),
        ),
        case(
            "crit",
            "a crit header",
            {"list": jws({**header(REV_TYP), "crit": ["exp"]}, rev_claims())},
            error(bad, "crit"),
        ),
        case(
            "two-parts",
            "not three parts",
            {"list": ".".join(good.split(".")[:2])},
            error(bad, "format"),
        ),
        case(
            "non-ascii",
            "a non-ASCII character in the signature",
            {"list": good[:-2] + "é"},
            error(bad, "format"),
        ),
        case(
            "header-garbage",
            "a header that is not base64url JSON",
            {"list": "%%%." + good.split(".", 1)[1]},
            error(bad, "header"),
        ),
        case(
            "payload-not-json",
            "a signed payload that is not JSON",
            {"list": jws(header(REV_TYP), b"not json")},
            error(bad, "payload"),
        ),
        case(
            "payload-duplicate-member",
            "a signed payload with serial twice (a parser keeping the last would read 99)",
            {"list": jws(header(REV_TYP), compact(rev_claims())[:-1] + b',"serial":99}')},
            error(bad, "payload"),
        ),
        case(
            "issuer-mismatch",
            "another issuer than the one configured",
            {"list": good, "issuer": "other.example"},
            error(bad, "issuer"),
        ),
        case(
            "issuer-changed",
            "a list of another issuer than the list held",
            {"applied": [good], "list": rev_list(iss="other.example", serial=8)},
            error(bad, "issuer"),
        ),
        case("no-serial", "serial missing", {"list": rev_list(serial=_DROP)}, error(bad, "claims")),
        case(
            "negative-serial", "serial below 0", {"list": rev_list(serial=-1)}, error(bad, "claims")
        ),
        case("serial-float", "serial 7.0", {"list": rev_list(serial=7.0)}, error(bad, "claims")),
        case(
            "iat-text",
            "iat is text",
            {"list": rev_list(exp=T, iat="2027-02-28")},
            error(bad, "claims"),
        ),
        case(
            "no-revoked", "revoked missing", {"list": rev_list(revoked=_DROP)}, error(bad, "claims")
        ),
        case(
            "licenses-not-list",
            "revoked.licenses is an object",
            {"list": rev_list(revoked={"licenses": {}, "activations": []})},
            error(bad, "claims"),
        ),
        case(
            "activation-empty-id",
            "an empty id",
            {"list": rev_list(revoked={"licenses": [], "activations": [""]})},
            error(bad, "claims"),
        ),
    ]


# ---------------------------------------------------------------- tokens

URL = "https://licenses.vectors.example"


def token_cases() -> list[dict[str, Any]]:
    def t_in(tok: str, **extra: Any) -> dict[str, Any]:
        inp: dict[str, Any] = {
            "token": tok,
            "product": PRODUCT,
            "issuer": None,
            "server": SERVER,
            "machine_id_declared": False,
        }
        inp.update(extra)
        return inp

    def ok(c: dict[str, Any], now: int = T) -> dict[str, Any]:
        return {
            "ok": True,
            "state": "grace" if now >= c["renew_at"] else "valid",
            "license_id": c["sub"],
            "product": c["aud"],
            "issuer": c["iss"],
            "activation_id": c["jti"],
            "features": sorted(set(c["features"])),
            "limits": c["limits"],
            "iat": c["iat"],
            "nbf": c["nbf"],
            "exp": c["exp"],
            "renew_at": c["renew_at"],
            "license_exp": c["license_exp"],
            "fingerprint": c["fpr"],
            "ip": c.get("ip"),
            "identity": c["idk"],
        }

    bad = "invalid-token"
    base = claims()
    good = token()
    head_a = b64url(compact(header()))
    body = good.split(".")[1]
    sig = good.split(".")[2]
    container_fp = fp({"machine_id": CONTAINER_ID})
    container = {"machine_id": CONTAINER_ID}
    retired_iat = epoch("2026-05-20T00:00:00Z")
    retired = claims(iat=retired_iat, lease=0, exp=T + 300 * DAY, renew_at=T + 290 * DAY)
    revoking = rev_list(revoked={"licenses": [LICENSE_ID], "activations": []})
    superseding = rev_list(revoked={"licenses": [], "activations": [ACTIVATION_ID]})
    both = rev_list(revoked={"licenses": [LICENSE_ID], "activations": [ACTIVATION_ID]})
    unrelated = rev_list()
    foreign_list = rev_list(
        iss="other.example", revoked={"licenses": [LICENSE_ID], "activations": []}
    )
    older_token = token(iat=T - 40 * DAY)
    big = token(features=[f"feature-{i:02d}-" + "x" * 190 for i in range(40)])
    other_server_fp = {"machine_id": SERVER["machine_id"], "dmi_uuid": None, "macs": []}
    sig_bytes = base64.urlsafe_b64decode(sig + "==")
    hs_input = (
        f"{b64url(compact({'alg': 'HS256', 'kid': KEYS['A'].kid, 'typ': 'licet+jwt'}))}.{body}"
    )
    hs_mac = crypto_hmac.HMAC(KEYS["A"].public, SHA256())
    hs_mac.update(hs_input.encode())
    hs_token = f"{hs_input}.{b64url(hs_mac.finalize())}"
    last = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    sig_noncanonical = sig[:-1] + last[last.index(sig[-1]) + 1]  # 64 bytes: 86 chars, tail 2

    return [
        # -- accepted
        case("valid", "a token inside its lease, on its server", t_in(good), ok(base)),
        case(
            "valid-grace",
            "past renew_at, before exp: runs, in grace",
            t_in(token(iat=T - 25 * DAY)),
            ok(claims(iat=T - 25 * DAY)),
        ),
        case(
            "valid-issuer-pinned",
            "the configured issuer matches",
            t_in(good, issuer=ISSUER),
            ok(base),
        ),
        case(
            "valid-nic-replaced",
            "one NIC replaced: still this server",
            t_in(good, server={**SERVER, "macs": ["52:54:00:12:34:56", "52:54:00:00:00:01"]}),
            ok(base),
        ),
        case(
            "valid-ip-bound",
            "an IP-bound license carries ip",
            t_in(token(ip="203.0.113.7")),
            ok(claims(ip="203.0.113.7")),
        ),
        case(
            "valid-no-license-expiry",
            "license_exp null: the license never expires",
            t_in(token(license_exp=None)),
            ok(claims(license_exp=None)),
        ),
        case(
            "valid-machine-id",
            "a container that declared its machine id, token bound to it",
            t_in(
                token(fpr=container_fp, idk="machine-id"),
                server=container,
                machine_id_declared=True,
            ),
            ok(claims(fpr=container_fp, idk="machine-id")),
        ),
        case(
            "valid-retired-key",
            "signed by a retired key before its retirement",
            t_in(jws(header(key=KEYS["B"]), retired, KEYS["B"])),
            ok(retired),
        ),
        case(
            "valid-exp-within-leeway",
            "exp 59 s ago: inside the 60 s leeway",
            t_in(token(iat=T - 30 * DAY + 1 - 60)),
            ok(claims(iat=T - 30 * DAY + 1 - 60)),
        ),
        case(
            "valid-nbf-within-leeway",
            "nbf 60 s ahead: inside the leeway",
            t_in(token(nbf=T + 60)),
            ok(claims(nbf=T + 60)),
        ),
        case(
            "valid-iat-within-leeway",
            "iat (and nbf) 60 s ahead: inside the leeway",
            t_in(token(iat=T + 60)),
            ok(claims(iat=T + 60)),
        ),
        case(
            "valid-unrelated-revocations",
            "a revocation list naming other licenses and activations",
            t_in(good, revocation_list=unrelated),
            ok(base),
        ),
        case(
            "valid-revocations-other-issuer",
            "a list of another issuer does not apply to this token",
            t_in(good, revocation_list=foreign_list),
            ok(base),
        ),
        case(
            "valid-clock-mark-within-tolerance",
            "the clock 59 min behind the clock mark",
            t_in(good, clock_mark=T + 59 * 60),
            ok(base),
        ),
        case(
            "valid-newer-than-refusal",
            "a renewal refusal of an older token of this activation",
            t_in(good, renewal_refusal={"token": older_token, "code": "activation-superseded"}),
            ok(base),
        ),
        case(
            "valid-extra-claims-and-headers",
            "unknown claims and header members (jwk, x5u) are ignored",
            t_in(
                jws(
                    {
                        **header(),
                        "jwk": KEYS["X"].jwk() | {"kid": "x"},
                        "x5u": "https://evil.example/k",
                    },
                    {**base, "extra": 1},
                )
            ),
            ok(base),
        ),
        # -- refused, in the order of the checks
        case(
            "clock-rollback",
            "the clock 2 h behind the clock mark",
            t_in(good, clock_mark=T + 2 * 3600),
            error("clock-rollback", "clock"),
        ),
        case(
            "clock-rollback-first",
            "the clock is checked before the token is even read",
            t_in("garbage", clock_mark=T + 2 * 3600),
            error("clock-rollback", "clock"),
        ),
        case(
            "too-large",
            "over 8192 characters (checked before parsing)",
            t_in(big),
            error("token-too-large", "size"),
        ),
        case("not-ascii", "a non-ASCII character", t_in(good[:-1] + "é"), error(bad, "format")),
        case("two-parts", "not a compact JWS", t_in(f"{head_a}.{body}"), error(bad, "format")),
        case("four-parts", "a fourth part", t_in(good + ".x"), error(bad, "format")),
        case("empty", "an empty string", t_in(""), error(bad, "format")),
        case(
            "header-not-json",
            "a header that is base64url of garbage",
            t_in(f"{b64url(b'{oops')}.{body}.{sig}"),
            error(bad, "header"),
        ),
        case(
            "header-duplicate-member",
            "a header with kid twice",
            t_in(
                jws(
                    (
                        '{{"alg":"EdDSA","kid":"{}","kid":"{}","typ":"licet+jwt"}}'.format(
                            KEYS["X"].kid, KEYS["A"].kid
                        )
                    ).encode(),
                    base,
                )
            ),
            error(bad, "header"),
        ),
        case(
            "header-padded",
            "base64url with padding",
            t_in(f"{head_a}=.{body}.{sig}"),
            error(bad, "header"),
        ),
        case(
            "header-array",
            "a header that is a JSON array",
            t_in(f"{b64url(b'[1]')}.{body}.{sig}"),
            error(bad, "header"),
        ),
        case(
            "alg-none",
            "alg none, no signature",
            t_in(
                f"{b64url(compact({'alg': 'none', 'kid': KEYS['A'].kid, 'typ': 'licet+jwt'}))}.{body}."
            ),
            error(bad, "alg"),
        ),
        case(
            "alg-hs256-confusion",
            "HS256 keyed with the public key",
            t_in(hs_token),
            error(bad, "alg"),
        ),
        case(
            "alg-missing",
            "no alg",
            t_in(jws({"kid": KEYS["A"].kid, "typ": "licet+jwt"}, base)),
            error(bad, "alg"),
        ),
        case(
            "alg-case",
            "alg eddsa (case matters)",
            t_in(jws({**header(), "alg": "eddsa"}, base)),
            error(bad, "alg"),
        ),
        case("typ-jwt", "typ JWT", t_in(token(typ="JWT")), error(bad, "typ")),
        case(
            "typ-missing",
            "no typ",
            t_in(jws({"alg": "EdDSA", "kid": KEYS["A"].kid}, base)),
            error(bad, "typ"),
        ),
        case(
            "typ-revocations",
            "a revocation list given as a token",
            t_in(unrelated),
            error(bad, "typ"),
        ),
        case(
            "crit",
            "a crit header",
            t_in(jws({**header(), "crit": ["b64"], "b64": True}, base)),
            error(bad, "crit"),
        ),
        case(
            "unknown-kid",
            "signed by a key the panel does not trust",
            t_in(token(KEYS["X"])),
            error("untrusted-key", "kid"),
        ),
        case(
            "no-kid",
            "no kid",
            t_in(jws({"alg": "EdDSA", "typ": "licet+jwt"}, base)),
            error("untrusted-key", "kid"),
        ),
        case(
            "kid-number",
            "kid is a number",
            t_in(jws({"alg": "EdDSA", "kid": 1, "typ": "licet+jwt"}, base)),
            error("untrusted-key", "kid"),
        ),
        case(
            "embedded-jwk",
            "an unknown kid with the signing key embedded (jwk) is not trusted",
            t_in(jws({**header(key=KEYS["X"]), "jwk": KEYS["X"].jwk()}, base, KEYS["X"])),
            error("untrusted-key", "kid"),
        ),
        case(
            "revoked-key",
            "signed by a revoked key (even inside its old window)",
            t_in(
                token(
                    KEYS["C"], iat=epoch("2025-03-01T00:00:00Z"), lease=0, exp=T + DAY, renew_at=T
                )
            ),
            error("signing-key-revoked", "key-revoked"),
        ),
        case(
            "bad-signature",
            "the payload changed after signing",
            t_in(f"{head_a}.{b64url(compact({**base, 'features': ['dns', 'mail', 'web']}))}.{sig}"),
            error(bad, "signature"),
        ),
        case(
            "foreign-signature",
            "signed by an untrusted key under a trusted kid",
            t_in(jws(header(), base, KEYS["X"])),
            error(bad, "signature"),
        ),
        case(
            "signature-truncated",
            "a signature of 63 bytes",
            t_in(f"{head_a}.{body}.{b64url(sig_bytes[:63])}"),
            error(bad, "signature"),
        ),
        case(
            "signature-noncanonical",
            "a signature whose last character has stray bits",
            t_in(f"{head_a}.{body}.{sig_noncanonical}"),
            error(bad, "signature"),
        ),
        case("signature-empty", "no signature", t_in(f"{head_a}.{body}."), error(bad, "signature")),
        case(
            "payload-not-json",
            "a signed payload that is not JSON",
            t_in(jws(header(), b"not json")),
            error(bad, "payload"),
        ),
        case(
            "payload-duplicate-member",
            "a signed payload with aud twice",
            t_in(jws(header(), compact(base)[:-1] + b',"aud":"billmanager"}')),
            error(bad, "payload"),
        ),
        case(
            "payload-array",
            "a signed payload that is an array",
            t_in(jws(header(), b"[]")),
            error(bad, "payload"),
        ),
        case("claim-missing-fpr", "no fpr", t_in(token(fpr=_DROP)), error(bad, "claims")),
        case(
            "claim-missing-license-exp",
            "license_exp absent (null is required when none)",
            t_in(token(license_exp=_DROP)),
            error(bad, "claims"),
        ),
        case("claim-missing-idk", "no idk", t_in(token(idk=_DROP)), error(bad, "claims")),
        case(
            "claim-iat-text",
            "iat is text",
            t_in(jws(header(), {**base, "iat": str(base["iat"])})),
            error(bad, "claims"),
        ),
        case(
            "claim-exp-float",
            "exp with a fraction",
            t_in(jws(header(), {**base, "exp": base["exp"] + 0.5})),
            error(bad, "claims"),
        ),
        case(
            "claim-exp-bool",
            "exp true",
            t_in(jws(header(), {**base, "exp": True})),
            error(bad, "claims"),
        ),
        case("claim-sub-empty", "sub empty", t_in(token(sub="")), error(bad, "claims")),
        case("claim-aud-list", "aud as a list", t_in(token(aud=[PRODUCT])), error(bad, "claims")),
        case(
            "claim-features-not-list",
            "features as text",
            t_in(token(features="dns")),
            error(bad, "claims"),
        ),
        case(
            "claim-limits-not-int",
            "a limit that is not a whole number",
            t_in(token(limits={"domains": "100"})),
            error(bad, "claims"),
        ),
        case(
            "claim-fpr-malformed",
            "a fingerprint component of the wrong shape",
            t_in(token(fpr=["mid:abc"])),
            error(bad, "claims"),
        ),
        case(
            "claim-idk-unknown",
            "idk not one of the two kinds",
            t_in(token(idk="vm")),
            error(bad, "claims"),
        ),
        case("claim-ip-number", "ip as a number", t_in(token(ip=7)), error(bad, "claims")),
        case(
            "key-window-retired",
            "signed by a retired key after its retirement",
            t_in(token(KEYS["B"])),
            error("untrusted-key", "key-window"),
        ),
        case(
            "key-window-early",
            "iat before the key's licet_not_before",
            t_in(token(iat=epoch("2026-05-01T00:00:00Z"), lease=0, exp=T + DAY, renew_at=T)),
            error("untrusted-key", "key-window"),
        ),
        case(
            "wrong-product",
            "a token for another product",
            t_in(token(aud="billmanager")),
            error(bad, "product"),
        ),
        case(
            "wrong-product-before-issuer",
            "product is checked before issuer",
            t_in(token(aud="billmanager", iss="other.example"), issuer=ISSUER),
            error(bad, "product"),
        ),
        case(
            "wrong-issuer",
            "another issuer than the one configured",
            t_in(good, issuer="other.example"),
            error(bad, "issuer"),
        ),
        case(
            "issued-in-future",
            "iat 61 s ahead",
            t_in(token(iat=T + 61)),
            error("token-not-yet-valid", "iat"),
        ),
        case(
            "revoked-license",
            "the revocation list names the license",
            t_in(good, revocation_list=revoking),
            error("license-revoked", "revoked"),
        ),
        case(
            "superseded",
            "the revocation list names the activation",
            t_in(good, revocation_list=superseding),
            error("activation-superseded", "superseded"),
        ),
        case(
            "revoked-before-superseded",
            "both named: the license's revocation is reported",
            t_in(good, revocation_list=both),
            error("license-revoked", "revoked"),
        ),
        case(
            "revoked-before-expired",
            "an expired token of a revoked license is reported revoked",
            t_in(token(iat=T - 60 * DAY), revocation_list=revoking),
            error("license-revoked", "revoked"),
        ),
        case(
            "refusal-superseded",
            "the license server refused to renew this token: superseded",
            t_in(good, renewal_refusal={"token": good, "code": "activation-superseded"}),
            error("activation-superseded", "refusal"),
        ),
        case(
            "refusal-revoked",
            "the license server refused to renew this token: license revoked",
            t_in(good, renewal_refusal={"token": good, "code": "license-revoked"}),
            error("license-revoked", "refusal"),
        ),
        case(
            "refusal-not-found",
            "the license server refused to renew this token: no such activation",
            t_in(good, renewal_refusal={"token": good, "code": "activation-not-found"}),
            error("activation-not-found", "refusal"),
        ),
        case(
            "refusal-covers-older",
            "a refusal of a newer token covers an older one of the same activation",
            t_in(
                token(iat=T - 20 * DAY),
                renewal_refusal={"token": good, "code": "activation-superseded"},
            ),
            error("activation-superseded", "refusal"),
        ),
        case(
            "expired",
            "exp 61 s ago",
            t_in(token(iat=T - 30 * DAY - 61)),
            error("token-expired", "exp"),
        ),
        case(
            "expired-at-leeway",
            "exp exactly 60 s ago",
            t_in(token(iat=T - 30 * DAY - 60)),
            error("token-expired", "exp"),
        ),
        case(
            "expired-license",
            "the license itself expired (exp = license_exp)",
            t_in(token(iat=T - 20 * DAY, exp=T - DAY, renew_at=T - 5 * DAY, license_exp=T - DAY)),
            error("token-expired", "exp"),
        ),
        case(
            "expired-before-wrong-server",
            "an expired token on another server is reported expired",
            t_in(token(iat=T - 40 * DAY), server=OTHER_SERVER),
            error("token-expired", "exp"),
        ),
        case(
            "not-yet-valid",
            "nbf 61 s ahead",
            t_in(token(nbf=T + 61)),
            error("token-not-yet-valid", "nbf"),
        ),
        case(
            "wrong-server",
            "another server",
            t_in(good, server=OTHER_SERVER),
            error("wrong-server", "fingerprint"),
        ),
        case(
            "wrong-server-half",
            "only the machine id left (2 of 6)",
            t_in(good, server=other_server_fp),
            error("wrong-server", "fingerprint"),
        ),
        case(
            "wrong-server-declared-id",
            "a declared machine id that is not the one bound",
            t_in(
                token(fpr=container_fp, idk="machine-id"),
                server={"machine_id": "container-vector-43"},
                machine_id_declared=True,
            ),
            error("wrong-server", "fingerprint"),
        ),
        case(
            "hardware-token-declared-id",
            "a hardware-bound token on a server that declares its machine id",
            t_in(
                token(fpr=fp({"machine_id": CONTAINER_ID}), idk="hardware"),
                server=container,
                machine_id_declared=True,
            ),
            error("wrong-server", "identity"),
        ),
    ]


# ---------------------------------------------------------------- writing

FILES: dict[str, Callable[[], list[dict[str, Any]]]] = {
    "activation_key": activation_key_cases,
    "request_code": request_code_cases,
    "renewal_code": renewal_code_cases,
    "fingerprint": fingerprint_cases,
    "token": token_cases,
    "revocation_list": revocation_cases,
}


def render(name: str) -> bytes:
    """The bytes of ``<name>.json``."""
    text = json.dumps(document(name, FILES[name]()), indent=2, ensure_ascii=False)
    return (text + "\n").encode()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--out", default=str(Path(__file__).resolve().parent), help="folder to write into"
    )
    args = parser.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for name in FILES:
        (out / f"{name}.json").write_bytes(render(name))
    print(f"wrote {len(FILES)} vector files to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
