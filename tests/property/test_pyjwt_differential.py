"""Differential test against PyJWT: whatever licet accepts, PyJWT's pinned decode accepts with equal claims.

Hypothesis builds valid activation tokens (unicode ids and features, any JSON
spacing) and mutates them the ways parsers disagree: duplicate members,
string and float times, ``aud`` lists, ``typ`` variants, ``crit``, padded,
truncated, spaced or re-spelled signatures, extra claims. Each is signed with
the trusted key, so only the parsing and the claim rules differ. licet may
refuse more than PyJWT (the cases are listed, and proven, below); it must
never accept what PyJWT — pinned to EdDSA, the audience, the issuer and every
required claim — refuses, nor read a claim differently.

Both use the real clock (PyJWT has no other), with the same leeway; times
are drawn well away from every boundary.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import event, given, settings
from hypothesis import strategies as st
from support import ISSUER, PRODUCT, server_fp

from verifier import LicenseError, TrustedKeys, Verifier, VerifierConfig
from verifier.claims import (
    CLAIM_IDENTITY,
    CLAIM_LICENSE_EXP,
    IDENTITY_HARDWARE,
    IDENTITY_KINDS,
    REQUIRED_CLAIMS,
)
from verifier.encoding import b64url_decode, b64url_encode
from verifier.keys import check_signature, key_id, load_public_key
from verifier.trust import TrustedKey

PRIVATE = Ed25519PrivateKey.generate()
RAW = PRIVATE.public_key().public_bytes_raw()
KID = key_id(RAW)
FPR = list(server_fp("alpha"))
LEEWAY = 60
EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def licet() -> Verifier:
    trusted = TrustedKeys([TrustedKey(kid=KID, public_bytes=RAW, status="active", not_before=EPOCH, not_after=None)])
    config = VerifierConfig(leeway=dt.timedelta(seconds=LEEWAY), cache_size=0)
    return Verifier(PRODUCT, trusted, issuer=ISSUER, config=config, server_fingerprint=tuple(FPR))


def pyjwt_decode(token: str) -> dict[str, Any]:
    """PyJWT's decode, pinned as a careful panel would pin it."""
    return jwt.decode(
        token,
        PRIVATE.public_key(),
        algorithms=["EdDSA"],
        audience=PRODUCT,
        issuer=ISSUER,
        leeway=LEEWAY,
        # license_exp is null for a license without expiry; PyJWT's "require" refuses nulls.
        options={"require": [c for c in REQUIRED_CLAIMS if c != CLAIM_LICENSE_EXP]},
    )


@dataclass
class Draft:
    """A token before signing: its header and claims, or the exact JSON text of either."""

    header: dict[str, Any]
    claims: dict[str, Any]
    spacing: tuple[str, str] = (",", ":")
    header_text: str | None = None
    payload_text: str | None = None
    after: list[Callable[[str], str]] = field(default_factory=list)  # applied to the signed token

    def sign(self) -> str:
        h = self.header_text or json.dumps(self.header, separators=self.spacing, ensure_ascii=False)
        p = self.payload_text or json.dumps(self.claims, separators=self.spacing, ensure_ascii=False)
        signing_input = f"{b64url_encode(h.encode())}.{b64url_encode(p.encode())}"
        token = f"{signing_input}.{b64url_encode(PRIVATE.sign(signing_input.encode()))}"
        for change in self.after:
            token = change(token)
        return token


TEXT = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), min_size=1, max_size=24)


@st.composite
def drafts(draw: st.DrawFn) -> Draft:
    now = int(time.time())
    iat = now - draw(st.integers(0, 10**7))
    claims: dict[str, Any] = {
        "iss": ISSUER,
        "sub": draw(TEXT),
        "aud": PRODUCT,
        "jti": draw(TEXT),
        "iat": iat,
        "nbf": iat - draw(st.integers(0, 1000)),
        "exp": now + draw(st.integers(600, 10**8)),
        "renew_at": now + draw(st.integers(0, 600)),
        "license_exp": draw(st.none() | st.integers(10**8, 2 * 10**8).map(lambda days: now + days)),
        "fpr": FPR,
        "features": draw(st.lists(TEXT, max_size=5, unique=True)),
        "limits": draw(st.dictionaries(TEXT, st.integers(0, 10**12), max_size=4)),
        CLAIM_IDENTITY: draw(st.sampled_from(IDENTITY_KINDS)),
    }
    if draw(st.booleans()):
        claims["ip"] = draw(st.sampled_from(["203.0.113.7", "2001:db8::1"]))
    spacing = draw(st.sampled_from([(",", ":"), (", ", ": "), (" ,", " : "), (",\n  ", ":\t")]))
    return Draft(header={"alg": "EdDSA", "typ": "licet+jwt", "kid": KID}, claims=claims, spacing=spacing)


def _duplicate(d: Draft, draw: st.DrawFn) -> None:
    name = draw(st.sampled_from(["sub", "aud", "exp", "iss", "features"]))
    text = json.dumps(d.claims)
    d.payload_text = text[:-1] + f', "{name}": {json.dumps(draw(TEXT))}' + "}"


def _duplicate_header(d: Draft, draw: st.DrawFn) -> None:
    d.header_text = json.dumps(d.header)[:-1] + f', "{draw(st.sampled_from(["alg", "kid", "typ"]))}": "none"' + "}"


def _time_type(d: Draft, draw: st.DrawFn) -> None:
    present = [n for n in ("exp", "iat", "nbf") if n in d.claims]  # another mutation may have removed one
    if not present:
        return
    name = draw(st.sampled_from(present))
    d.claims[name] = draw(st.sampled_from([str, float, lambda v: v + 0.5, lambda v: [v], lambda v: None, bool]))(d.claims[name])


def _aud_list(d: Draft, draw: st.DrawFn) -> None:
    d.claims["aud"] = draw(st.sampled_from([[PRODUCT], [PRODUCT, "otherpanel"], ["otherpanel", PRODUCT], []]))


def _typ(d: Draft, draw: st.DrawFn) -> None:
    typ = draw(st.sampled_from(["JWT", "jwt", "licet+JWT", "application/licet+jwt", None, 1, ""]))
    if typ is None:
        del d.header["typ"]
    else:
        d.header["typ"] = typ


def _crit(d: Draft, draw: st.DrawFn) -> None:
    d.header["crit"] = draw(st.sampled_from([["exp"], [], ["b64"], "exp"]))


def _kid(d: Draft, draw: st.DrawFn) -> None:
    d.header["kid"] = draw(st.sampled_from([None, KID.upper(), KID + " ", 7, "0" * 16]))


def _extra(d: Draft, draw: st.DrawFn) -> None:
    d.claims[draw(TEXT.filter(lambda k: k not in d.claims))] = draw(TEXT | st.integers())


def _unicode(d: Draft, draw: st.DrawFn) -> None:
    d.claims[draw(st.sampled_from(["sub", "jti"]))] = draw(st.sampled_from(["LIC-\u00e9", "\u0130", "\ufeffLIC", "L\u0000IC", "\U0001f511"]))


def _missing(d: Draft, draw: st.DrawFn) -> None:
    del d.claims[draw(st.sampled_from(list(REQUIRED_CLAIMS)))]


def _wrong_value(d: Draft, draw: st.DrawFn) -> None:
    name, value = draw(
        st.sampled_from(
            [("aud", "otherpanel"), ("iss", "evil"), ("exp", int(time.time()) - 3600), ("nbf", int(time.time()) + 3600), ("iat", int(time.time()) + 3600), ("sub", 7), ("jti", ["x"]), ("iss", None)]
        )
    )
    d.claims[name] = value


def _signature_text(d: Draft, draw: st.DrawFn) -> None:
    change = draw(
        st.sampled_from(
            [
                lambda t: t + "=",
                lambda t: t + "==",
                lambda t: t[:-1],
                lambda t: t[:-4],
                lambda t: t[:-2] + " " + t[-2:],
                lambda t: t[:-1] + "\n" + t[-1],
                lambda t: t + "\n",
                lambda t: " " + t,
                lambda t: t[:-1] + ALPHABET[ALPHABET.index(t[-1]) | 1],  # the same 64 bytes, unused bits set
                lambda t: t.replace("-", "+").replace("_", "/"),
                lambda t: t.split(".", 1)[0] + "=." + t.split(".", 1)[1],
            ]
        )
    )
    d.after.append(change)


MUTATIONS: dict[str, Callable[[Draft, st.DrawFn], None]] = {
    "duplicate claim": _duplicate,
    "duplicate header member": _duplicate_header,
    "time of another type": _time_type,
    "aud list": _aud_list,
    "typ variant": _typ,
    "crit": _crit,
    "kid variant": _kid,
    "extra claim": _extra,
    "unicode id": _unicode,
    "missing claim": _missing,
    "wrong value": _wrong_value,
    "re-spelled token": _signature_text,
}


@st.composite
def mutated(draw: st.DrawFn) -> tuple[list[str], str]:
    d = draw(drafts())
    names = draw(st.lists(st.sampled_from(sorted(MUTATIONS)), min_size=1, max_size=3, unique=True))
    for name in names:
        MUTATIONS[name](d, draw)
    return names, d.sign()


def same_claims(lic: Any, claims: dict[str, Any]) -> None:
    assert (lic.license_id, lic.product, lic.issuer, lic.activation_id) == (claims["sub"], claims["aud"], claims["iss"], claims["jti"])
    assert (lic.iat, lic.nbf, lic.exp) == (claims["iat"], claims["nbf"], claims["exp"])
    assert (lic.renew_at_epoch, lic.license_exp) == (claims["renew_at"], claims["license_exp"])
    assert lic.features == frozenset(claims["features"]) and len(claims["features"]) == len(lic.features)
    assert dict(lic.limits) == claims["limits"]
    assert list(lic.fingerprint) == claims["fpr"]
    assert lic.ip == claims.get("ip")
    assert lic.identity == claims[CLAIM_IDENTITY]


@settings(max_examples=300, deadline=None)
@given(drafts())
def test_valid_tokens_are_accepted_by_both_with_equal_claims(draft: Draft) -> None:
    token = draft.sign()
    same_claims(licet().verify(token), pyjwt_decode(token))


@pytest.mark.slow
@settings(max_examples=1500, deadline=None)
@given(mutated())
def test_whatever_licet_accepts_pyjwt_accepts_with_equal_claims(case: tuple[list[str], str]) -> None:
    names, token = case
    try:
        lic = licet().verify(token)
    except LicenseError:
        event("licet refused")
        return
    event("licet accepted: " + (", ".join(names) or "unmutated"))
    same_claims(lic, pyjwt_decode(token))  # PyJWT raising here is a licet bug


# --- where licet is stricter than PyJWT, one case each (the table in SECURITY.md) ------------


def _signed(draft: Draft, change: Callable[[Draft], None]) -> str:
    change(draft)
    return draft.sign()


def _base() -> Draft:
    now = int(time.time())
    claims = {"iss": ISSUER, "sub": "LIC-1", "aud": PRODUCT, "jti": "ACT-1", "iat": now, "nbf": now, "exp": now + 86400, "renew_at": now + 3600, "license_exp": None, "fpr": FPR, "features": ["dns"], "limits": {}, CLAIM_IDENTITY: IDENTITY_HARDWARE}
    return Draft(header={"alg": "EdDSA", "typ": "licet+jwt", "kid": KID}, claims=claims)


def _set(where: str, name: str, value: Any) -> Callable[[Draft], None]:
    def change(d: Draft) -> None:
        target = d.header if where == "header" else d.claims
        if value is _DROP:
            del target[name]
        else:
            target[name] = value

    return change


def _after(fn: Callable[[str], str]) -> Callable[[Draft], None]:
    return lambda d: d.after.append(fn)


_DROP = object()
ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
STRICTER = {
    "duplicate claim (PyJWT keeps the last)": lambda d: setattr(d, "payload_text", json.dumps(d.claims)[:-1] + ', "sub": "LIC-2"}'),
    "float exp": _set("claims", "exp", int(time.time()) + 86400.5),
    "float iat": _set("claims", "iat", float(int(time.time()))),
    "aud as a list holding the product": _set("claims", "aud", [PRODUCT]),
    "other typ": _set("header", "typ", "JWT"),
    "no typ": _set("header", "typ", _DROP),
    "kid not trusted (PyJWT is handed the key)": _set("header", "kid", "0" * 16),
    "padded signature": _after(lambda t: t + "=="),
    "token bound to another server": _set("claims", "fpr", list(server_fp("beta"))),
    "time claims as big as 10**13": _set("claims", "exp", 10**13),
    "oversized token": _set("claims", "pad", "x" * 9000),
}


@pytest.mark.parametrize("change", STRICTER.values(), ids=STRICTER.keys())
def test_where_licet_is_stricter_than_pyjwt(change: Callable[[Draft], None]) -> None:
    token = _signed(_base(), change)
    assert isinstance(pyjwt_decode(token), dict)  # PyJWT's pinned decode takes it
    with pytest.raises(LicenseError):
        licet().verify(token)


# --- the signature primitive against the published example ------------------------------------

RFC8037_X = "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"
RFC8037_D = "nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A"
RFC8037_JWS = (
    "eyJhbGciOiJFZERTQSJ9.RXhhbXBsZSBvZiBFZDI1NTE5IHNpZ25pbmc."
    "hgyY0il_MGCjP0JzlnLWG1PPOt7-09PGcvMg3AIbQR6dWbhijcNR4ki4iylGjg5BhVsPt9g7sVvpAr_MuM0KAg"
)


def test_rfc8037_appendix_a4_example_verifies_with_licets_signature_primitive() -> None:
    # RFC 8037 Appendix A.4: the Ed25519 JWS of "Example of Ed25519 signing" under the A.1 key.
    head, payload, signature = RFC8037_JWS.split(".")
    assert b64url_decode(head) == b'{"alg":"EdDSA"}' and b64url_decode(payload) == b"Example of Ed25519 signing"
    check_signature(load_public_key(b64url_decode(RFC8037_X)), f"{head}.{payload}".encode(), signature)
    # Ed25519 is deterministic: the published private key gives the published signature.
    private = Ed25519PrivateKey.from_private_bytes(b64url_decode(RFC8037_D))
    assert b64url_encode(private.sign(f"{head}.{payload}".encode())) == signature
    with pytest.raises(LicenseError, match="signature is invalid"):
        check_signature(load_public_key(b64url_decode(RFC8037_X)), f"{head}.{payload}x".encode(), signature)
