"""Attacks on licet, one test each. A failure here is a security bug.

Every forged token below is otherwise well-formed, so each test isolates the
one check it names.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json
import socket
from importlib.metadata import version
from pathlib import Path

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, rsa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from support import PRODUCT, FakeClock, Provider, claims_for, forge, server_fp

from keytool import Keyring
from verifier import (
    InvalidTokenError,
    TokenExpiredError,
    TokenNotYetValidError,
    TokenTooLargeError,
    TrustedKeys,
    TrustedKeysError,
    UntrustedKeyError,
    Verifier,
    VerifierConfig,
    WrongServerError,
    parse_request_code,
)
from verifier.claims import REQUIRED_CLAIMS
from verifier.encoding import b64url_encode


def b64(data: bytes) -> str:
    return b64url_encode(data)


def segment(obj: object) -> str:
    return b64(json.dumps(obj).encode())


def payload(provider: Provider, **overrides: object) -> dict:  # type: ignore[type-arg]
    return claims_for(server_fp("alpha"), provider.clock, **overrides)


def public_pem(provider: Provider) -> bytes:
    return provider.private_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def hs256(header: dict, body: dict, secret: bytes) -> str:  # type: ignore[type-arg]
    signing_input = f"{segment(header)}.{segment(body)}"
    mac = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64(mac)}"


# --- algorithm confusion --------------------------------------------------------------


def test_alg_none_is_refused(provider: Provider) -> None:
    token = f"{segment(provider.header(alg='none'))}.{segment(payload(provider))}."
    with pytest.raises(InvalidTokenError):
        provider.verifier().verify(token)


@pytest.mark.parametrize("alg", ["none", "None", "NONE"])
def test_alg_none_spellings_with_a_real_signature_are_refused(provider: Provider, alg: str) -> None:
    token = forge(provider.header(alg=alg), payload(provider), provider.private_key)
    with pytest.raises(InvalidTokenError, match="EdDSA"):
        provider.verifier().verify(token)


def test_hs256_with_public_key_pem_as_secret_is_refused(provider: Provider) -> None:
    token = hs256(provider.header(alg="HS256"), payload(provider), public_pem(provider))
    with pytest.raises(InvalidTokenError, match="EdDSA"):
        provider.verifier().verify(token)


def test_hs256_with_public_key_jwk_as_secret_is_refused(provider: Provider) -> None:
    jwk = json.dumps(provider.trusted().to_jwks()["keys"][0]).encode()
    for secret in (jwk, provider.record.public_bytes, b64(provider.record.public_bytes).encode()):
        token = hs256(provider.header(alg="HS256"), payload(provider), secret)
        with pytest.raises(InvalidTokenError):
            provider.verifier().verify(token)


def test_hs256_claiming_eddsa_is_refused(provider: Provider) -> None:
    token = hs256(provider.header(), payload(provider), public_pem(provider))
    with pytest.raises(InvalidTokenError, match=r"wrong length|invalid"):
        provider.verifier().verify(token)


def test_rs256_token_is_refused(provider: Provider) -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    token = jwt.encode(payload(provider), key, algorithm="RS256", headers={"typ": "licet+jwt", "kid": provider.record.kid})
    with pytest.raises(InvalidTokenError, match="EdDSA"):
        provider.verifier().verify(token)


def test_es256_token_is_refused(provider: Provider) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    token = jwt.encode(payload(provider), key, algorithm="ES256", headers={"typ": "licet+jwt", "kid": provider.record.kid})
    with pytest.raises(InvalidTokenError, match="EdDSA"):
        provider.verifier().verify(token)


def test_ed448_token_is_refused(provider: Provider) -> None:
    key = ed448.Ed448PrivateKey.generate()
    signing_input = f"{segment(provider.header())}.{segment(payload(provider))}"
    token = f"{signing_input}.{b64(key.sign(signing_input.encode()))}"
    with pytest.raises(InvalidTokenError, match="wrong length"):
        provider.verifier().verify(token)


# --- tampering -------------------------------------------------------------------------


@pytest.mark.parametrize("part", [0, 1, 2])
def test_flipped_bit_in_each_part_is_refused(provider: Provider, part: int) -> None:
    token = provider.token()
    pieces = token.split(".")
    raw = bytearray(base64.urlsafe_b64decode(pieces[part] + "=" * (-len(pieces[part]) % 4)))
    raw[len(raw) // 2] ^= 0x01
    pieces[part] = b64(bytes(raw))
    with pytest.raises(InvalidTokenError):
        provider.verifier().verify(".".join(pieces))


@pytest.mark.parametrize("cut", [1, 4, 43, 86])
def test_truncated_signature_is_refused(provider: Provider, cut: int) -> None:
    with pytest.raises(InvalidTokenError):
        provider.verifier().verify(provider.token()[:-cut])


def test_padded_or_spaced_base64_is_not_another_token(provider: Provider) -> None:
    token = provider.token()
    h, p, s = token.split(".")
    for variant in (f"{h}=.{p}.{s}", f"{h}.{p}.{s}==", f" {token}", f"{h}.{p} .{s}", token + "\n"):
        with pytest.raises(InvalidTokenError):
            provider.verifier().verify(variant)


def test_non_canonical_signature_tail_is_refused(provider: Provider) -> None:
    token = provider.token()
    # 64 bytes encode to 86 chars; the last char carries 2 unused bits that must be zero.
    last = token[-1]
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    twin = alphabet[alphabet.index(last) | 1]
    assert twin != last
    with pytest.raises(InvalidTokenError, match="base64url"):
        provider.verifier().verify(token[:-1] + twin)


def test_signature_malleability_s_plus_l_is_refused(provider: Provider) -> None:
    l_order = 2**252 + 27742317777372353535851937790883648493
    token = provider.token()
    h, p, s = token.split(".")
    sig = bytearray(base64.urlsafe_b64decode(s + "=="))
    scalar = int.from_bytes(sig[32:], "little") + l_order
    sig[32:] = scalar.to_bytes(32, "little")
    with pytest.raises(InvalidTokenError, match="signature"):
        provider.verifier().verify(f"{h}.{p}.{b64(bytes(sig))}")


def test_duplicate_json_members_are_refused(provider: Provider) -> None:
    header = f'{{"alg":"EdDSA","typ":"licet+jwt","kid":"{provider.record.kid}","kid":"other"}}'
    body = json.dumps(payload(provider))[:-1] + ', "sub": "LIC-OTHER"}'
    for h, p in ((header, json.dumps(payload(provider))), (json.dumps(provider.header()), body)):
        signing_input = f"{b64(h.encode())}.{b64(p.encode())}"
        token = f"{signing_input}.{b64(provider.private_key.sign(signing_input.encode()))}"
        with pytest.raises(InvalidTokenError, match="duplicate"):
            provider.verifier().verify(token)


def test_deeply_nested_json_is_refused_without_crashing(provider: Provider) -> None:
    body = b"[" * 3000 + b"]" * 3000
    token = forge(provider.header(), body, provider.private_key)
    with pytest.raises(InvalidTokenError):
        provider.verifier(config=__import__("verifier").VerifierConfig(max_token_bytes=65536)).verify(token)


# --- claims ------------------------------------------------------------------------------


@pytest.mark.parametrize("claim", REQUIRED_CLAIMS)
def test_each_required_claim_missing_is_refused(provider: Provider, claim: str) -> None:
    body = payload(provider)
    del body[claim]
    token = forge(provider.header(), body, provider.private_key)
    with pytest.raises(InvalidTokenError, match=f"'{claim}'"):
        provider.verifier().verify(token)


@pytest.mark.parametrize("claim", ["iat", "nbf", "exp"])
@pytest.mark.parametrize("value", [None, [1], True, "1700000000", 1.5e9, -5, 10**13])
def test_time_claims_of_the_wrong_type_are_refused(provider: Provider, claim: str, value: object) -> None:
    token = forge(provider.header(), payload(provider, **{claim: value}), provider.private_key)
    with pytest.raises(InvalidTokenError, match=f"'{claim}'"):
        provider.verifier().verify(token)


def test_expired_token_is_refused(provider: Provider, clock: FakeClock) -> None:
    token = provider.token(days=1)
    clock.advance(days=2)
    with pytest.raises(TokenExpiredError):
        provider.verifier().verify(token)


def test_exact_leeway_boundary_on_exp(provider: Provider, clock: FakeClock) -> None:
    token = provider.token(days=1)
    start = clock.now
    clock.now = start + dt.timedelta(days=1, seconds=59)  # default leeway is 60 s
    assert provider.verifier().verify(token)
    clock.now = start + dt.timedelta(days=1, seconds=60)
    with pytest.raises(TokenExpiredError):
        provider.verifier().verify(token)


def test_exact_leeway_boundary_on_nbf(provider: Provider, clock: FakeClock) -> None:
    nbf = int(clock.now.timestamp()) + 60
    token = forge(provider.header(), payload(provider, nbf=nbf), provider.private_key)
    assert provider.verifier().verify(token)
    token = forge(provider.header(), payload(provider, nbf=nbf + 1), provider.private_key)
    with pytest.raises(TokenNotYetValidError):
        provider.verifier().verify(token)


def test_future_iat_is_refused(provider: Provider, clock: FakeClock) -> None:
    iat = int(clock.now.timestamp()) + 3600
    token = forge(provider.header(), payload(provider, iat=iat, nbf=iat - 3600), provider.private_key)
    with pytest.raises(TokenNotYetValidError, match="future"):
        provider.verifier().verify(token)


def test_wrong_audience_is_refused(provider: Provider) -> None:
    token = forge(provider.header(), payload(provider, aud="otherpanel"), provider.private_key)
    with pytest.raises(InvalidTokenError, match="for product 'otherpanel'"):
        provider.verifier().verify(token)


def test_audience_as_list_is_refused(provider: Provider) -> None:
    token = forge(provider.header(), payload(provider, aud=[PRODUCT]), provider.private_key)
    with pytest.raises(InvalidTokenError, match="'aud'"):
        provider.verifier().verify(token)


def test_token_for_another_product_fails_in_that_products_verifier(provider: Provider) -> None:
    verifier = Verifier("otherpanel", provider.trusted(), clock=provider.clock, server_fingerprint=server_fp("alpha"))
    with pytest.raises(InvalidTokenError, match="not 'otherpanel'"):
        verifier.verify(provider.token())


@pytest.mark.parametrize("typ", ["JWT", "jwt", "licet+JWT", None, 1])
def test_wrong_typ_is_refused(provider: Provider, typ: object) -> None:
    token = forge(provider.header(typ=typ), payload(provider), provider.private_key)
    with pytest.raises(InvalidTokenError, match="type"):
        provider.verifier().verify(token)


def test_wrong_issuer_is_refused(provider: Provider) -> None:
    token = forge(provider.header(), payload(provider, iss="evil-reseller"), provider.private_key)
    with pytest.raises(InvalidTokenError, match="not issued by"):
        provider.verifier(issuer="acme-hosting").verify(token)


def test_unknown_crit_header_is_refused(provider: Provider) -> None:
    token = forge(provider.header(crit=["exp"], exp=1), payload(provider), provider.private_key)
    with pytest.raises(InvalidTokenError, match="extensions"):
        provider.verifier().verify(token)


def test_token_copied_to_another_server_is_refused(provider: Provider) -> None:
    with pytest.raises(WrongServerError):
        provider.verifier("beta").verify(provider.token("alpha"))


# --- keys ----------------------------------------------------------------------------------


@pytest.mark.parametrize("kid", ["0000000000000000", 7, None, ["x"], "../../etc/passwd", "/dev/zero", ""])
def test_unknown_non_string_and_path_like_kid_is_refused(provider: Provider, kid: object) -> None:
    token = forge(provider.header(kid=kid), payload(provider), provider.private_key)
    with pytest.raises(UntrustedKeyError, match="unknown key"):
        provider.verifier().verify(token)


def test_key_naming_headers_are_never_fetched_or_used(provider: Provider, monkeypatch: pytest.MonkeyPatch) -> None:
    def no_network(*args: object, **kwargs: object) -> None:
        raise AssertionError("the verifier tried to reach the network")

    monkeypatch.setattr(socket, "create_connection", no_network)
    monkeypatch.setattr(socket.socket, "connect", no_network)
    attacker = Ed25519PrivateKey.generate()
    raw = attacker.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    jwk = {"kty": "OKP", "crv": "Ed25519", "x": b64(raw)}
    for extra in (
        {"jwk": jwk},
        {"jku": "http://203.0.113.7/jwks.json"},
        {"x5u": "http://203.0.113.7/cert.pem"},
        {"x5c": [b64(b"not a cert")]},
    ):
        # Signed by the attacker, naming the attacker's key: the trusted kid's key fails it.
        token = forge(provider.header(**extra), payload(provider), attacker)
        with pytest.raises(InvalidTokenError, match="signature is invalid"):
            provider.verifier().verify(token)
        # The headers change nothing for an honestly signed token either.
        assert provider.verifier().verify(forge(provider.header(**extra), payload(provider), provider.private_key))


def test_token_over_size_limit_is_refused_before_parsing(provider: Provider, monkeypatch: pytest.MonkeyPatch) -> None:
    import verifier.verify as verify_module

    def parse_called(*args: object) -> None:
        raise AssertionError("an oversized token was parsed")

    monkeypatch.setattr(verify_module, "_json_segment", parse_called)
    token = forge(provider.header(), payload(provider, pad="x" * 9000), provider.private_key)
    with pytest.raises(TokenTooLargeError):
        provider.verifier().verify(token)


def test_identity_public_key_is_refused_as_trusted_key(provider: Provider) -> None:
    from verifier.keys import key_id

    identity = (1).to_bytes(32, "little")
    jwk = {"kty": "OKP", "crv": "Ed25519", "x": b64(identity), "kid": key_id(identity)}
    with pytest.raises(TrustedKeysError, match="small-order"):
        TrustedKeys.from_jwks({"keys": [jwk]})


def test_token_signed_by_revoked_key_is_refused(tmp_path: Path, clock: FakeClock) -> None:
    ring = Keyring(tmp_path, clock=clock)
    record = ring.new()
    token = ring.signer().sign(claims_for(server_fp("alpha"), clock))
    clock.advance(hours=1)
    ring.rotate()
    ring.revoke(record.kid)
    exported = ring.export(tmp_path / "trusted_keys.json")
    assert record.kid not in exported.read_text()  # absent, so no JOSE library can trust it
    verifier = Verifier(PRODUCT, TrustedKeys.from_file(exported), clock=clock, server_fingerprint=server_fp("alpha"))
    with pytest.raises(UntrustedKeyError, match="unknown key"):
        verifier.verify(token)


def test_key_marked_revoked_in_an_older_trust_file_is_still_refused(provider: Provider) -> None:
    jwks = provider.trusted().to_jwks()
    jwks["keys"][0]["licet_status"] = "revoked"
    verifier = Verifier(PRODUCT, TrustedKeys.from_jwks(jwks), clock=provider.clock, server_fingerprint=server_fp("alpha"))
    with pytest.raises(UntrustedKeyError, match="revoked"):
        verifier.verify(provider.token())


def test_token_signed_by_retired_key_after_retirement_is_refused(tmp_path: Path, clock: FakeClock) -> None:
    ring = Keyring(tmp_path, clock=clock)
    ring.new()
    old_signer = ring.signer()  # a stolen copy of the old key keeps signing
    clock.advance(days=1)
    ring.rotate()
    clock.advance(seconds=1)
    token = old_signer.sign(claims_for(server_fp("alpha"), clock))
    verifier = Verifier(PRODUCT, ring.trusted_keys(), clock=clock, server_fingerprint=server_fp("alpha"))
    with pytest.raises(UntrustedKeyError, match="retired"):
        verifier.verify(token)


def test_token_backdated_before_its_key_existed_is_refused(tmp_path: Path, clock: FakeClock) -> None:
    ring = Keyring(tmp_path, clock=clock)
    ring.new()
    token = ring.signer().sign(claims_for(server_fp("alpha"), clock, iat=int(clock.now.timestamp()) - 86400))
    verifier = Verifier(PRODUCT, ring.trusted_keys(), clock=clock, server_fingerprint=server_fp("alpha"))
    with pytest.raises(UntrustedKeyError, match="predates"):
        verifier.verify(token)


# --- supply chain --------------------------------------------------------------------------


def test_installed_pyjwt_has_every_published_advisory_fixed() -> None:
    installed = tuple(int(part) for part in version("PyJWT").split(".")[:2])
    assert installed >= (2, 13)


# --- added in the hardening pass --------------------------------------------------------------


def test_hs256_with_public_key_ssh_form_as_secret_is_refused(provider: Provider) -> None:
    ssh = provider.private_key.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    token = hs256(provider.header(alg="HS256"), payload(provider), ssh)
    with pytest.raises(InvalidTokenError, match="EdDSA"):
        provider.verifier().verify(token)


def test_identity_key_with_a_trivial_signature_is_refused(provider: Provider) -> None:
    from verifier.keys import key_id

    identity = (1).to_bytes(32, "little")
    trivial_signature = identity + bytes(32)  # R = identity point, S = 0: "verifies" under the identity key
    signing_input = f"{segment(provider.header(kid=key_id(identity)))}.{segment(payload(provider))}"
    with pytest.raises(UntrustedKeyError, match="unknown key"):
        provider.verifier().verify(f"{signing_input}.{b64(trivial_signature)}")
    same_kid = f"{segment(provider.header())}.{segment(payload(provider))}.{b64(trivial_signature)}"
    with pytest.raises(InvalidTokenError, match="signature is invalid"):
        provider.verifier().verify(same_kid)


@pytest.mark.parametrize("length", [0, 31, 33, 57, 64])
def test_public_keys_of_the_wrong_length_are_refused(length: int) -> None:
    from verifier.keys import UnsafeKeyError, load_public_key

    with pytest.raises(UnsafeKeyError, match="32 bytes"):
        load_public_key(bytes(range(length)))


def test_a_new_private_key_never_overwrites_an_existing_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from keytool import KeyringError
    from verifier.keys import key_id

    ring = Keyring(tmp_path)
    ring.new()
    fixed = Ed25519PrivateKey.generate()
    monkeypatch.setattr(Ed25519PrivateKey, "generate", staticmethod(lambda: fixed))
    kid = key_id(fixed.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw))
    squatter = tmp_path / f"{kid}.pem"
    squatter.write_bytes(b"someone else's file")
    with pytest.raises(KeyringError, match="not overwritten"):
        ring.rotate()
    assert squatter.read_bytes() == b"someone else's file"
    assert [r.status for r in ring.records()] == ["active"]  # nothing changed


def test_a_replayed_request_code_gives_the_same_activation(tmp_path: Path, clock: FakeClock) -> None:
    from support import code_for, make_issuer

    iss = make_issuer(tmp_path, clock)
    created = iss.create_license(PRODUCT)
    code = code_for(created.activation_key, "alpha")
    first = iss.redeem(parse_request_code(code), method="air-gapped")
    clock.advance(days=40)
    variants = [code, "  " + code + "\n", "\n".join(code[i : i + 50] for i in range(0, len(code), 50))]
    for variant in variants:
        again = iss.redeem(parse_request_code(variant), method="air-gapped")
        assert (again.activation_id, again.new) == (first.activation_id, False)
    history = iss.show(created.license_id).record.history
    assert [e.action for e in history].count("activated") == 1


@pytest.mark.parametrize("fpr", [[[1]], [{"mid": "x"}], [None], "mid:" + "0" * 32, [], [["mid:" + "0" * 32]]])
def test_fingerprint_claim_of_the_wrong_shape_is_refused(provider: Provider, fpr: object) -> None:
    token = forge(provider.header(), payload(provider, fpr=fpr), provider.private_key)
    with pytest.raises(InvalidTokenError, match="'fpr'"):
        provider.verifier().verify(token)


# --- signature before payload ---------------------------------------------------------------

UNSIGNED_PAYLOADS = {
    "garbage": b"\x00\xff not json at all {{{",
    "duplicate members": b'{"sub": "LIC-TEST", "sub": "LIC-OTHER"}',
    "ill-typed claims": json.dumps({"exp": "tomorrow", "aud": ["ispmanager"], "fpr": 7}).encode(),
    "deep nesting": b"[" * 3000 + b"]" * 3000,
}


@pytest.mark.parametrize("body", UNSIGNED_PAYLOADS.values(), ids=UNSIGNED_PAYLOADS.keys())
def test_unsigned_payload_of_any_shape_is_refused_as_a_bad_signature(provider: Provider, body: bytes) -> None:
    # A trusted kid, but the signature is the attacker's: the payload must never be
    # read, so the refusal names the signature, not what is wrong with the payload.
    attacker = Ed25519PrivateKey.generate()
    token = forge(provider.header(), body, attacker)
    verifier = provider.verifier(config=VerifierConfig(max_token_bytes=65536))
    with pytest.raises(InvalidTokenError, match="signature is invalid"):
        verifier.verify(token)


def test_refused_signatures_fill_no_memo_or_cache(provider: Provider) -> None:
    import verifier.claims as claims_module

    verifier = provider.verifier()
    attacker = Ed25519PrivateKey.generate()
    fingerprints_before = dict(claims_module._FINGERPRINTS)
    for n in range(40):  # more than any memo holds
        header = provider.header(nonce=n)  # a new header segment each time
        body = payload(provider, fpr=list(server_fp(f"server-{n}")))
        with pytest.raises(InvalidTokenError, match="signature is invalid"):
            verifier.verify(forge(header, body, attacker))
    assert verifier._headers == {} and verifier._matched == {} and not verifier._cache
    assert fingerprints_before == claims_module._FINGERPRINTS
    # The memos still serve the honest token once it has verified.
    assert verifier.verify(provider.token()).license_id == "LIC-TEST"
    assert len(verifier._headers) == 1 and len(verifier._cache) == 1
