"""Attacks on licet, one test each. A failure here is a security bug.

Every forged token below is otherwise well-formed, so each test isolates the
one check it names.
"""

from __future__ import annotations

import base64
import datetime as dt
import errno
import gzip
import hashlib
import hmac
import http.server
import json
import multiprocessing
import os
import socket
import stat
import subprocess
import threading
import time
import urllib.error
import urllib.request
from importlib.metadata import version
from multiprocessing.pool import ThreadPool
from pathlib import Path

import jwt
import pytest
from clirun import assert_one_line_refusal, cli, provider_home, script
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, rsa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from servers import CallbackPanel, LicenseServer, free_port
from support import (
    PRODUCT,
    FakeClock,
    Provider,
    claims_for,
    code_for,
    forge,
    ledger_bytes,
    make_issuer,
    server_fp,
)

from issuer import Issuer
from issuer.addresses import (
    callback_allowed,
    canonical_ip,
    client_address,
    parse_proxies,
    rate_bucket,
)
from issuer.ratelimit import RateLimit
from issuer.service import IssuerConfig
from keytool import Keyring, NoActiveKeyError
from verifier import (
    ActivationRequiredError,
    BadInputError,
    CallbackError,
    InvalidActivationKeyError,
    InvalidTokenError,
    MachineIdRefusedError,
    RateLimitedError,
    RegenerationTooSoonError,
    RequestCodeError,
    ServerUnavailableError,
    TokenExpiredError,
    TokenNotYetValidError,
    TokenStore,
    TokenStoreError,
    TokenTooLargeError,
    TrustedKeys,
    TrustedKeysError,
    UntrustedKeyError,
    Verifier,
    VerifierConfig,
    WrongServerError,
    parse_request_code,
    request_code,
)
from verifier.activation_key import key_from_bytes
from verifier.claims import REQUIRED_CLAIMS
from verifier.client import CHALLENGE_PATH, Challenge, activate_automatic, activate_online, startup
from verifier.encoding import b64url_encode
from verifier.fileio import atomic_write


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


# --- attacks on the provider's side: the license server, the CLIs, the stores ---------------
#
# These run the real pieces: `issuer serve` (uvicorn) on 127.0.0.1, the installed console
# scripts, real panels answering callbacks, real threads and processes.



def create_license(home: Path, *extra: str) -> dict:  # type: ignore[type-arg]
    return json.loads(cli("issuer", "license", "create", "--product", PRODUCT, "--json", *extra, cwd=home).stdout)


def show_license(home: Path, license_id: str) -> dict:  # type: ignore[type-arg]
    return json.loads(cli("issuer", "license", "show", license_id, "--json", cwd=home).stdout)


def post_json(url: str, body: bytes, headers: dict[str, str] | None = None) -> tuple[int, str, dict]:  # type: ignore[type-arg]
    request = urllib.request.Request(url, data=body, method="POST", headers={"Content-Type": "application/json", **(headers or {})})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.headers["Content-Type"], json.loads(response.read())
    except urllib.error.HTTPError as err:
        return err.code, err.headers["Content-Type"], json.loads(err.read())


def manual_body(key: str, machine: str) -> bytes:
    return json.dumps({"request_code": code_for(key, machine)}).encode()


def kid_of(token: str) -> str:
    return str(jwt.get_unverified_header(token)["kid"])


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return provider_home(tmp_path)


# 1. A running server follows key rotation and revocation ----------------------------------------


def test_a_running_server_never_signs_with_a_rotated_or_revoked_key(home: Path) -> None:
    first, second, third = create_license(home), create_license(home), create_license(home)
    srv = LicenseServer(home)
    try:
        original = kid_of(activate_online(srv.url, PRODUCT, first["activation_key"], machine_id="box-1"))
        cli("keytool", "rotate", cwd=home)  # another process changes the keyring while the server runs
        rotated = kid_of(activate_online(srv.url, PRODUCT, second["activation_key"], machine_id="box-2"))
        assert rotated != original
        assert rotated == json.loads(cli("keytool", "list", "--json", cwd=home).stdout)[-1]["kid"]
        cli("keytool", "revoke", rotated, cwd=home)  # now no key may sign
        before = ledger_bytes(home / "ledger")
        status, content_type, reply = post_json(srv.url + "/v1/activations", manual_body(third["activation_key"], "box-3"))
        assert (status, content_type, reply["code"]) == (503, "application/problem+json", "no-active-key")
        assert rotated not in reply["detail"] and reply["incident"] in reply["detail"]
        assert ledger_bytes(home / "ledger") == before  # nothing recorded for a token never signed
        assert show_license(home, third["license_id"])["status"] == "issued"
    finally:
        srv.stop()


def test_a_long_lived_issuer_signs_with_the_current_key_only(tmp_path: Path, clock: FakeClock) -> None:
    from support import request_for

    iss = make_issuer(tmp_path, clock)
    created = [iss.create_license(PRODUCT) for _ in range(3)]
    keys = [c.activation_key for c in created]
    ring = Keyring(tmp_path / "keys", clock=clock)
    first = kid_of(iss.redeem(request_for(keys[0], "a"), method="air-gapped").token)
    clock.advance(minutes=1)
    newer = ring.rotate()
    assert kid_of(iss.redeem(request_for(keys[1], "b"), method="air-gapped").token) == newer.kid != first
    ring.revoke(newer.kid)
    with pytest.raises(NoActiveKeyError):
        iss.redeem(request_for(keys[2], "c"), method="air-gapped")
    assert iss.show(created[2].license_id).state == "issued"


# 2. A client cannot forge its address behind a trusted proxy -------------------------------------


@pytest.mark.parametrize(
    ("peer", "forwarded", "proxies", "client"),
    [
        ("127.0.0.1", "203.0.113.9", (), "127.0.0.1"),  # untrusted peer: the header is ignored
        ("10.0.0.1", "203.0.113.9, 198.51.100.7", ("10.0.0.1",), "198.51.100.7"),  # the client wrote the left hop
        ("10.0.0.1", "203.0.113.9, 198.51.100.7, 10.0.0.2", ("10.0.0.0/24",), "198.51.100.7"),  # proxies skipped
        ("10.0.0.1", "10.0.0.3, 10.0.0.2", ("10.0.0.0/24",), "10.0.0.3"),  # all proxies: the left-most
        ("10.0.0.1", "203.0.113.9, garbage", ("10.0.0.1",), "10.0.0.1"),  # a bad hop: the proxy that passed it
        ("10.0.0.1", "::ffff:198.51.100.7", ("10.0.0.1",), "198.51.100.7"),
        ("::ffff:10.0.0.1", "198.51.100.7", ("10.0.0.1",), "198.51.100.7"),
    ],
)
def test_a_forged_forwarded_for_hop_is_never_believed(peer: str, forwarded: str, proxies: tuple[str, ...], client: str) -> None:
    assert client_address(peer, forwarded, parse_proxies(proxies)) == client


def test_a_stranger_behind_a_trusted_proxy_cannot_claim_another_customers_address(home: Path) -> None:
    lic = create_license(home, "--ip", "127.0.0.2")
    challenge = Challenge()
    panel = CallbackPanel(challenge, host="127.0.0.2")
    srv = LicenseServer(home, "--allow-private-callbacks", "--trusted-proxy", "127.0.0.1", "--trusted-proxy", "127.0.0.5")
    body = json.dumps({"product": PRODUCT, "fingerprint": ["mid:" + "1" * 32], "callback_port": panel.port,
                       "challenge_hash": challenge.hash, "hostname": "h"}).encode()
    try:
        # The stranger at 127.0.0.7 writes the customer's address first; the proxy appends the real one.
        status, _, reply = post_json(srv.url + "/v1/activations/auto", body, {"X-Forwarded-For": "127.0.0.2, 127.0.0.7"})
        assert (status, reply["code"]) == (404, "no-license-for-address") and panel.hits == 0
        # The customer behind two trusted proxies is found by walking from the right.
        status, _, reply = post_json(srv.url + "/v1/activations/auto", body, {"X-Forwarded-For": "203.0.113.9, 127.0.0.2, 127.0.0.5"})
        assert status == 200 and panel.hits == 1
        assert show_license(home, lic["license_id"])["activated_hostname"] == "h"
    finally:
        srv.stop()
        panel.close()


def test_the_panel_answers_its_challenge_once_and_only_while_activating(home: Path) -> None:
    from test_panel import PanelProcess

    create_license(home, "--ip", "127.0.0.1")
    srv = LicenseServer(home, "--allow-private-callbacks")
    try:
        panel = PanelProcess(home, srv.url, "challenge-box")
        try:
            assert "Activated" in panel.boot_line  # the license server fetched the challenge during boot
            with pytest.raises(urllib.error.HTTPError) as refused:
                urllib.request.urlopen(panel.url + CHALLENGE_PATH, timeout=10)
            assert refused.value.code == 404  # nothing to give a stranger after activation
        finally:
            panel.stop()
    finally:
        srv.stop()
    challenge = Challenge()
    assert challenge.answer(CHALLENGE_PATH) == challenge.value.encode()
    assert challenge.answer(CHALLENGE_PATH) is None  # a stranger who asks second gets nothing


# 3. The callback has one deadline for the whole exchange -----------------------------------------


class TricklingPanel:
    """A panel that sends its answer's headers one byte at a time, and notes when it is cut off."""

    def __init__(self, challenge: Challenge, bytes_to_send: int = 200, pause: float = 0.05) -> None:
        self.cut_off = threading.Event()
        self.finished = threading.Event()
        panel = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                head = b"HTTP/1.1 200 OK\r\n" + b"".join(b"X-Pad-%d: y\r\n" % i for i in range(bytes_to_send))
                try:
                    for i in range(bytes_to_send):
                        self.wfile.write(head[i : i + 1])
                        self.wfile.flush()
                        time.sleep(pause)
                    panel.finished.set()
                except OSError:
                    panel.cut_off.set()

            def log_message(self, *args: object) -> None:
                return

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = int(self.server.server_address[1])
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_a_panel_trickling_its_callback_answer_is_cut_off_at_the_deadline(home: Path) -> None:
    create_license(home, "--ip", "127.0.0.1")
    challenge = Challenge()
    panel = TricklingPanel(challenge)  # 200 bytes at 50 ms each: 10 s if nobody hangs up
    srv = LicenseServer(home, "--allow-private-callbacks", "--callback-timeout", "1")
    try:
        with pytest.raises(CallbackError, match=r"within 1 s"):
            activate_automatic(srv.url, PRODUCT, callback_port=panel.port, machine_id="m", challenge=challenge, listen=None)
        assert panel.cut_off.wait(30)  # the server hung up on the panel ...
        assert not panel.finished.is_set()  # ... long before the trickle could end
        with urllib.request.urlopen(srv.url + "/v1/health", timeout=10) as response:
            assert response.status == 200
    finally:
        srv.stop()
        panel.close()


# 4. and 12. Server-side failures: fail closed, and tell anonymous clients nothing about files -------


def test_unwritable_rate_limit_state_fails_closed_with_problem_json(home: Path) -> None:
    good = create_license(home)
    attempts = home / "ledger" / "attempts"
    for shard in attempts.iterdir():
        shard.unlink()
    attempts.rmdir()
    attempts.write_bytes(b"")  # the rate-limit state can no longer be written
    srv = LicenseServer(home)
    try:
        wrong = key_from_bytes(b"\x07" * 15)
        for key in (wrong, good["activation_key"]):
            status, content_type, reply = post_json(srv.url + "/v1/activations", manual_body(key, "box"))
            assert (status, content_type) == (503, "application/problem+json")
            assert reply["code"].startswith("ledger-") and reply["incident"] in reply["detail"]
        assert show_license(home, good["license_id"])["status"] == "issued"  # no key was tried uncounted
    finally:
        srv.stop()


def test_a_full_disk_refuses_key_attempts_instead_of_trying_them_uncounted(tmp_path: Path, clock: FakeClock, monkeypatch: pytest.MonkeyPatch) -> None:
    from starlette.testclient import TestClient

    from issuer.server import ServerConfig, create_app

    iss = make_issuer(tmp_path, clock)
    good = iss.create_license(PRODUCT)
    client = TestClient(create_app(ServerConfig(ledger=str(tmp_path / "ledger"), keys=str(tmp_path / "keys"))))
    real_write = os.write

    def disk_full(fd: int, data: bytes) -> int:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "write", disk_full)
    for key in (key_from_bytes(b"\x05" * 15), good.activation_key):
        response = client.post("/v1/activations", json={"request_code": code_for(key, "alpha")})
        assert response.status_code == 503 and response.headers["content-type"] == "application/problem+json"
    monkeypatch.setattr(os, "write", real_write)
    assert iss.show(good.license_id).state == "issued"


def test_anonymous_clients_never_see_ledger_paths(home: Path) -> None:
    lic = create_license(home)
    key_shards = list((home / "ledger" / "keys").glob("*.json"))
    assert len(key_shards) == 1
    key_shards[0].write_bytes(key_shards[0].read_bytes()[:10])  # truncated shard
    srv = LicenseServer(home)
    try:
        status, _, reply = post_json(srv.url + "/v1/activations", manual_body(lic["activation_key"], "box"))
    finally:
        srv.stop()
    log = srv.output()
    assert (status, reply["code"]) == (503, "ledger-corrupt")
    assert "ledger" not in reply["detail"] and ".json" not in reply["detail"] and "shard" not in reply["detail"]
    assert reply["incident"] in reply["detail"]
    assert reply["incident"] in log and key_shards[0].name in log  # the operator gets the detail


# 5. and 14. Addresses: one canonical form; IPv6 spellings of private IPv4 refused ---------------


def test_ipv4_clients_of_a_dual_stack_server_match_their_licenses(home: Path) -> None:
    lic = create_license(home, "--ip", "::ffff:127.0.0.1")
    assert show_license(home, lic["license_id"])["ip"] == "127.0.0.1"  # stored as the IPv4 it is
    port = free_port()
    proc = subprocess.Popen([script("issuer"), "serve", "--host", "::", "--port", str(port), "--allow-private-callbacks"],
                            cwd=home, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        assert proc.stdout is not None and "licet license server on http://[::]:" in proc.stdout.readline()
        token, panel = None, CallbackPanel(challenge := Challenge())
        try:  # the client connects over IPv4: the server sees ::ffff:127.0.0.1
            token = activate_automatic(f"http://127.0.0.1:{port}", PRODUCT, callback_port=panel.port, machine_id="v4",
                                       challenge=challenge, listen=None)
        finally:
            panel.close()
        assert Verifier(PRODUCT, TrustedKeys.from_file(home / "keys" / "trusted_keys.json"), machine_id="v4").verify(token)
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_mapped_addresses_have_one_canonical_form() -> None:
    assert canonical_ip("::ffff:203.0.113.7") == "203.0.113.7"
    assert canonical_ip(" 2001:DB8::1 ") == "2001:db8::1"
    assert rate_bucket("::ffff:203.0.113.7") == "203.0.113.7"


@pytest.mark.parametrize(
    "address",
    [
        "64:ff9b::7f00:1",  # NAT64 of 127.0.0.1
        "64:ff9b::a00:1",  # NAT64 of 10.0.0.1
        "64:ff9b::a9fe:a9fe",  # NAT64 of 169.254.169.254
        "64:ff9b:1::c0a8:101",  # local-use NAT64 of 192.168.1.1
        "2002:7f00:1::1",  # 6to4 of 127.0.0.1
        "2002:a00:1::1",  # 6to4 of 10.0.0.1
        "::7f00:1",  # IPv4-compatible 127.0.0.1
        "::a00:1",  # IPv4-compatible 10.0.0.1
        "::ffff:7f00:1",  # IPv4-mapped, hex spelling
        "2001:0:4136:e378:8000:63bf:80ff:fffe",  # Teredo carrying 127.0.0.1
        "fe80::1%eth0",  # zone ids are not addresses here
    ],
)
def test_ipv6_forms_of_private_ipv4_are_refused_as_callback_targets(address: str) -> None:
    assert callback_allowed(address, allow_private=False) is False


def test_ipv6_forms_of_public_ipv4_stay_allowed() -> None:
    assert callback_allowed("64:ff9b::808:808", allow_private=False) is True  # NAT64 of 8.8.8.8


# 6. Output files never replace key material ------------------------------------------------------


def test_export_and_activate_out_never_overwrite_key_material(home: Path) -> None:
    keys = home / "keys"
    pem = next(keys.glob("*.pem"))
    secret = keys / "activation-keys.secret"
    precious = {p: p.read_bytes() for p in (pem, keys / "keyring.json", secret)}
    backup = home / "secret-backup"
    backup.write_bytes(secret.read_bytes())
    code = code_for(create_license(home)["activation_key"], "box")
    for target in (*precious, backup, home / "ledger" / "ledger.json"):
        for force in ((), ("--force",)):
            assert_one_line_refusal(cli("keytool", "export", "--out", str(target), *force, cwd=home, check=None), "refusing")
            assert_one_line_refusal(cli("issuer", "activate", code, "--out", str(target), *force, cwd=home, check=None), "refusing")
    assert {p: p.read_bytes() for p in precious} == precious
    assert backup.read_bytes() == secret.read_bytes()
    cli("issuer", "license", "list", cwd=home)  # the secret still matches the ledger
    # Re-exporting after a rotation replaces the earlier export; a token file is replaced by a token.
    cli("keytool", "export", "--out", "trust.json", cwd=home)
    cli("keytool", "rotate", cwd=home)
    cli("keytool", "export", "--out", "trust.json", cwd=home)
    assert len(json.loads((home / "trust.json").read_text())["keys"]) == 2
    cli("issuer", "activate", code, "--out", "token.txt", cwd=home)
    cli("issuer", "activate", code, "--out", "token.txt", cwd=home)
    # Any other file needs --force.
    (home / "notes.txt").write_text("mine")
    assert_one_line_refusal(cli("keytool", "export", "--out", "notes.txt", cwd=home, check=None), "--force")
    assert (home / "notes.txt").read_text() == "mine"
    cli("keytool", "export", "--out", "notes.txt", "--force", cwd=home)
    assert "keys" in json.loads((home / "notes.txt").read_text())


# 7. and 8. Atomic writes: no predictable temporary, no collisions ------------------------------


def test_atomic_write_never_writes_through_a_planted_symlink(tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    victim.write_bytes(b"precious")
    victim.chmod(0o600)
    store = tmp_path / "store"
    store.mkdir()
    target = store / "licet.token"
    # Plant symlinks at the names a predictable scheme would use (this and nearby process ids).
    for pid in range(os.getpid() - 50, os.getpid() + 50):
        (store / f".{target.name}.{pid}.tmp").symlink_to(victim)
    atomic_write(target, b"token\n", mode=0o644)
    assert victim.read_bytes() == b"precious" and stat.S_IMODE(victim.stat().st_mode) == 0o600
    assert target.read_bytes() == b"token\n" and not target.is_symlink()


def _save_many(path: str, tag: str, rounds: int) -> None:
    store = TokenStore(path)
    for i in range(rounds):
        store.save(f"{tag}.{i}." + "x" * 2000)


def test_threads_and_processes_saving_tokens_at_once_leave_one_whole_token(tmp_path: Path) -> None:
    path = tmp_path / "licet.token"
    errors: list[BaseException] = []

    def saver(tag: str) -> None:
        try:
            _save_many(str(path), tag, 100)
        except BaseException as err:
            errors.append(err)

    threads = [threading.Thread(target=saver, args=(f"t{n}",)) for n in range(8)]
    context = multiprocessing.get_context("spawn")
    procs = [context.Process(target=_save_many, args=(str(path), f"p{n}", 100)) for n in range(3)]
    for worker in (*threads, *procs):
        worker.start()
    for thread in threads:
        thread.join()
    for proc in procs:
        proc.join(timeout=120)
        assert proc.exitcode == 0
    assert errors == []
    tag, number, body = TokenStore(path).load().split(".")  # type: ignore[union-attr]
    assert tag[0] in "tp" and 0 <= int(number) < 100 and body == "x" * 2000
    assert [p.name for p in tmp_path.iterdir()] == ["licet.token"]  # no temporary left behind


# 9. A client never crashes on a server's answer ---------------------------------------------------


def test_a_deeply_nested_server_answer_is_a_license_error_not_a_crash(provider: Provider, tmp_path: Path) -> None:
    class Nested(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = b"[" * 60_000 + b"]" * 60_000
            self.send_response(200 if self.path.endswith("auto") else 409)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body[:60_000])

        def log_message(self, *args: object) -> None:
            return

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Nested)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        with pytest.raises(ServerUnavailableError):
            activate_online(url, PRODUCT, key_from_bytes(b"\x01" * 15), machine_id="m")
        with pytest.raises(ActivationRequiredError) as refused:
            startup(provider.verifier(), TokenStore(tmp_path / "t"), server_url=url, callback_port=free_port(), listen="127.0.0.1")
        assert isinstance(refused.value.reason, ServerUnavailableError)
    finally:
        server.shutdown()
        server.server_close()


# 10. and 11. Rate limiting: atomic check-and-count, IPv6 per /64 ---------------------------------


def test_concurrent_wrong_keys_never_test_more_keys_than_the_limit(home: Path) -> None:
    srv = LicenseServer(home, "--failure-limit", "3", "--workers", "2")
    try:
        bodies = [manual_body(key_from_bytes(bytes([i]) * 15), f"guess-{i}") for i in range(60)]
        barrier, codes = threading.Barrier(60), []

        def guess(body: bytes) -> None:
            barrier.wait()
            codes.append(post_json(srv.url + "/v1/activations", body)[2]["code"])

        threads = [threading.Thread(target=guess, args=(b,)) for b in bodies]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=120)
        assert codes.count("invalid-activation-key") == 3
        assert codes.count("rate-limited") == 57
    finally:
        srv.stop()


def test_one_ipv6_network_shares_one_failure_budget(tmp_path: Path, clock: FakeClock) -> None:
    from support import request_for

    iss = make_issuer(tmp_path, clock, config=IssuerConfig(rate_limit=RateLimit(limit=2)))
    good = iss.create_license(PRODUCT).activation_key
    wrong = request_for(key_from_bytes(b"\x03" * 15), "guesser")

    def guess(client: str) -> None:
        with pytest.raises(InvalidActivationKeyError):
            iss.redeem(wrong, method="online", client=client)

    guess("2001:db8:1:2::1")
    guess("2001:db8:1:2:ffff::9")  # another address in the same /64
    with pytest.raises(RateLimitedError):  # the whole /64 is at its limit, even with a right key
        iss.redeem(request_for(good, "box"), method="online", client="2001:db8:1:2:aaaa:bbbb:cccc:dddd")
    guess("2001:db8:1:3::1")  # the neighbouring /64 has its own budget
    per_address = Issuer(tmp_path / "ledger", tmp_path / "keys", clock=clock,
                         config=IssuerConfig(rate_limit=RateLimit(limit=2, ipv6_prefix=128)))
    assert per_address.redeem(request_for(good, "box"), method="online", client="2001:db8:1:2::2").new
    with pytest.raises(BadInputError):
        RateLimit(ipv6_prefix=8)


def test_successful_attempts_never_count_against_the_limit(tmp_path: Path, clock: FakeClock) -> None:
    from support import request_for

    iss = make_issuer(tmp_path, clock, config=IssuerConfig(rate_limit=RateLimit(limit=2)))
    keys = [iss.create_license(PRODUCT).activation_key for _ in range(5)]
    for n, key in enumerate(keys):  # five activations from one address behind one NAT
        assert iss.redeem(request_for(key, f"server-{n}"), method="online", client="203.0.113.7").new


# 13. Every malformed body: 422 bad-input -----------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "headers"),
    [
        (b'{"request_code": "\xff\xfe"}', {}),  # invalid UTF-8
        (b'{"request_code": ' + b"9" * 5000 + b"}", {}),  # an integer too long to convert
        (b"[" * 5000 + b"]" * 5000, {}),  # nesting too deep
        (gzip.compress(b'{"request_code": "LICET1.x"}'), {"Content-Encoding": "gzip"}),
        (b'{"product": "p", "fingerprint": ["mid:zz"], "callback_port": 80, "challenge_hash": "' + b"a" * 64 + b'"}', {"X-Path": "auto"}),
    ],
    ids=["bad-utf8", "huge-integer", "deep-nesting", "gzip", "bad-fingerprint"],
)
def test_odd_bodies_get_422_bad_input(home: Path, body: bytes, headers: dict[str, str]) -> None:
    srv = LicenseServer(home)
    try:
        path = "/v1/activations/auto" if headers.pop("X-Path", None) else "/v1/activations"
        status, content_type, reply = post_json(srv.url + path, body, headers)
        assert (status, content_type, reply["code"]) == (422, "application/problem+json", "bad-input"), reply
    finally:
        srv.stop()


# 15. Key and ledger folders are private, whatever they were ----------------------------------------


def test_init_and_new_make_an_existing_world_writable_folder_private(tmp_path: Path) -> None:
    for name in ("keys", "ledger"):
        (tmp_path / name).mkdir()
        (tmp_path / name).chmod(0o777)
    cli("keytool", "new", cwd=tmp_path)
    cli("issuer", "init", "--name", "acme", cwd=tmp_path)
    for name in ("keys", "ledger"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o700


# 16. Bad values: one line, exit 2; a busy port: exit 1, and no banner -------------------------------


def test_bad_cli_values_get_one_line_and_exit_2(home: Path) -> None:
    for args, needle in (
        (("license", "create", "--product", PRODUCT, "--expires", "9999-12-31"), "days away"),
        (("serve", "--port", "99999"), "--port"),
        (("serve", "--trusted-proxy", "notanip"), "notanip"),
        (("serve", "--ipv6-prefix", "8"), "--ipv6-prefix"),
    ):
        proc = cli("issuer", *args, cwd=home, check=None)
        assert_one_line_refusal(proc, needle, code=2)
        assert proc.stdout == ""
    for args, needle in (
        (("activate", "--server", "http://127.0.0.1:9", "--product", PRODUCT, "--trusted-keys", "x", "--callback-port", "99999"), "port"),
        (("status", "--product"), "--product"),
    ):
        assert_one_line_refusal(cli("verifier", *args, cwd=home, check=None), needle, code=2)


def test_a_busy_port_is_refused_before_any_banner(home: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        proc = cli("issuer", "serve", "--port", str(port), cwd=home, check=None)
    assert_one_line_refusal(proc, "cannot listen on 127.0.0.1", code=1)
    assert proc.stdout == ""


# 17. A FIFO at the token store does not hang anyone -------------------------------------------------


def test_a_fifo_at_the_token_store_is_refused_without_hanging(home: Path) -> None:
    fifo = home / "licet.token"
    os.mkfifo(fifo)
    with pytest.raises(TokenStoreError, match="not a regular file"):
        TokenStore(fifo).load()
    proc = subprocess.run([script("verifier"), "status", "--product", PRODUCT, "--trusted-keys", "keys/trusted_keys.json",
                           "--store", str(fifo)], cwd=home, capture_output=True, text=True, timeout=60)
    assert_one_line_refusal(proc, "not a regular file")
    os.mkfifo(home / "trust.fifo")
    with pytest.raises(TrustedKeysError, match="not a regular file"):
        TrustedKeys.from_file(home / "trust.fifo")


# 18. The regeneration date named is the date allowed ------------------------------------------------


def test_regeneration_is_allowed_from_the_start_of_the_day_it_names(tmp_path: Path, clock: FakeClock) -> None:
    clock.now = dt.datetime(2027, 1, 15, 18, 30, tzinfo=dt.UTC)
    iss = make_issuer(tmp_path, clock)
    lid = iss.create_license(PRODUCT).license_id
    iss.regenerate(lid)
    clock.now = dt.datetime(2027, 2, 14, 23, 59, 59, tzinfo=dt.UTC)
    with pytest.raises(RegenerationTooSoonError, match="2027-02-15"):
        iss.regenerate(lid)
    clock.now = dt.datetime(2027, 2, 15, 0, 0, tzinfo=dt.UTC)  # the named day, before 18:30
    assert iss.regenerate(lid).record.generation == 3


# Policy gap: one custom machine id on many servers -------------------------------------------------


def test_a_license_refusing_custom_machine_ids_cannot_be_spread_by_one_id(tmp_path: Path, clock: FakeClock) -> None:
    from support import request_for

    Keyring(tmp_path / "keys", clock=clock).new()
    iss = Issuer.init(tmp_path / "ledger", tmp_path / "keys", name="acme", clock=clock, accept_machine_id=False)
    strict = iss.create_license(PRODUCT)
    before = ledger_bytes(tmp_path / "ledger")
    with pytest.raises(MachineIdRefusedError, match="machine id"):
        iss.redeem(request_for(strict.activation_key, "clone"), method="air-gapped")  # request_for uses --machine-id
    assert ledger_bytes(tmp_path / "ledger") == before
    hardware = parse_request_code(request_code(PRODUCT, strict.activation_key))  # this machine's own identity
    token = iss.redeem(hardware, method="air-gapped").token
    assert jwt.decode(token, options={"verify_signature": False})["idk"] == "hardware"
    # A hardware-bound token does not follow a declared machine id to another server.
    trusted = Keyring(tmp_path / "keys").trusted_keys()
    with pytest.raises(WrongServerError):
        Verifier(PRODUCT, trusted, clock=clock, machine_id="anything").verify(token)
    # A per-license override accepts them (containers); the token says so.
    relaxed = iss.create_license(PRODUCT, accept_machine_id=True)
    container = iss.redeem(request_for(relaxed.activation_key, "pod"), method="air-gapped").token
    assert jwt.decode(container, options={"verify_signature": False})["idk"] == "machine-id"
    assert Verifier(PRODUCT, trusted, clock=clock, machine_id="machine-pod").verify(container).identity == "machine-id"


def test_automatic_activation_with_a_custom_machine_id_follows_the_policy(tmp_path: Path) -> None:
    provider_home(tmp_path)
    cli("issuer", "license", "create", "--product", PRODUCT, "--ip", "127.0.0.1", "--machine-ids", "refuse", cwd=tmp_path)
    srv = LicenseServer(tmp_path, "--allow-private-callbacks")
    try:
        challenge = Challenge()
        panel = CallbackPanel(challenge)
        try:
            with pytest.raises(MachineIdRefusedError):
                activate_automatic(srv.url, PRODUCT, callback_port=panel.port, machine_id="shared-id", challenge=challenge, listen=None)
        finally:
            panel.close()
    finally:
        srv.stop()


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


def test_a_hostname_with_control_characters_never_reaches_the_provider(tmp_path: Path) -> None:
    """The hostname is shown in the provider's terminal: escape sequences must not get there."""
    import dataclasses

    from starlette.testclient import TestClient

    from issuer.server import ServerConfig, create_app
    from verifier.activation_key import key_from_bytes


    hostile = "web1\x1b]0;pwned\x07\x1b[2J"
    # A panel's own request code carries the name in its displayable form ...
    made = parse_request_code(request_code(PRODUCT, key_from_bytes(bytes(15)), machine_id="m", hostname=hostile))
    assert made.hostname == "web1--0-pwned---2J"
    # ... and a crafted one with the raw name is refused, like a crafted HTTP body.
    crafted = dataclasses.replace(made, hostname=hostile).encode()
    with pytest.raises(RequestCodeError, match="host"):
        parse_request_code(crafted)
    make_issuer(tmp_path, FakeClock())
    client = TestClient(create_app(ServerConfig(ledger=str(tmp_path / "ledger"), keys=str(tmp_path / "keys"))))
    assert client.post("/v1/activations", json={"request_code": crafted}).json()["code"] == "invalid-request-code"
    body = {"product": PRODUCT, "fingerprint": list(made.fingerprint), "callback_port": 80, "challenge_hash": "a" * 64, "hostname": hostile}
    assert client.post("/v1/activations/auto", json=body).json()["code"] == "bad-input"



# --- dead database connections: an outage ends cleanly, and no request after it fails -----------


def _pg_provider(tmp_path: Path, url: str, licenses: int) -> list[str]:
    """A provider folder (keys) whose ledger is ``url``; returns the activation keys of new licenses."""
    cli("keytool", "new", cwd=tmp_path)
    iss = Issuer.init(url, tmp_path / "keys", name="acme-hosting")
    keys = [iss.create_license(PRODUCT).activation_key for _ in range(licenses)]
    iss.ledger.close()
    return keys


def _timed_activation(srv: LicenseServer, key: str, machine: str) -> tuple[int, float, dict, str | None]:  # type: ignore[type-arg]
    """Status, seconds taken, body and Retry-After of one online activation."""
    request = urllib.request.Request(srv.url + "/v1/activations", data=manual_body(key, machine), method="POST",
                                     headers={"Content-Type": "application/json"})
    started = time.monotonic()
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, time.monotonic() - started, json.loads(response.read()), None
    except urllib.error.HTTPError as err:
        return err.code, time.monotonic() - started, json.loads(err.read()), err.headers["Retry-After"]


def test_sessions_the_database_ended_never_fail_the_requests_that_follow(tmp_path: Path, pg_url: str) -> None:
    """An administrator (or a restart, or a failover) ends every session: each worker's pool holds dead connections."""
    from pgsupport import sessions, terminate_sessions

    keys = _pg_provider(tmp_path, pg_url, 40)
    srv = LicenseServer(tmp_path, "--ledger", pg_url, "--workers", "2")
    try:
        barrier = threading.Barrier(16)

        def warm(n: int) -> int:
            barrier.wait(timeout=60)
            with urllib.request.urlopen(srv.url + "/v1/revocations", timeout=30) as response:
                return int(response.status)

        with ThreadPool(16) as pool:  # enough at once that both workers open several connections
            assert pool.map(warm, range(16), chunksize=1) == [200] * 16
        opened = sessions(pg_url)
        assert opened >= 4
        assert terminate_sessions(pg_url) == opened
        # The very next requests, one after another, then many at once (both workers):
        # every one is served, and promptly. They used to wait 3 s and fail (503) while
        # the pool checked its dead connections one by one.
        answers = [_timed_activation(srv, key, f"box-{n}") for n, key in enumerate(keys[:8])]
        with ThreadPool(16) as pool:
            answers += pool.starmap(_timed_activation, [(srv, key, f"box-{n}") for n, key in enumerate(keys[8:40], 8)])
        assert [status for status, *_ in answers] == [200] * 40, [(s, b.get("code")) for s, _, b, _ in answers if s != 200]
        assert max(seconds for _, seconds, *_ in answers[:8]) < 2.0
    finally:
        srv.stop()


def test_a_ledger_database_gone_from_the_network_is_a_prompt_503_with_retry_after_and_writes_nothing(tmp_path: Path, pg_url: str) -> None:
    from pgsupport import Relay

    from verifier.errors import LedgerUnavailableError, error_for_code

    keys = _pg_provider(tmp_path, pg_url, 8)
    relay = Relay()  # the database, reached through a port that can vanish
    srv = LicenseServer(tmp_path, "--ledger", relay.url(pg_url))
    try:
        assert _timed_activation(srv, keys[0], "box-0")[0] == 200
        relay.close()  # its host is gone: every connection cut, and the port refuses
        for n, key in enumerate(keys[1:6], 1):
            status, seconds, body, retry_after = _timed_activation(srv, key, f"box-{n}")
            assert (status, body["code"]) == (503, "ledger-unavailable")
            assert retry_after is not None and 1 <= int(retry_after) <= 10 and body["retry_after"] == int(retry_after)
            assert seconds < 1.5  # answered at once, not after waiting for a connection
            rebuilt = error_for_code(body["code"], body["detail"], body)  # what a panel's verifier makes of it
            assert isinstance(rebuilt, LedgerUnavailableError) and rebuilt.retry_after == int(retry_after)
        relay = Relay(relay.port)  # the database is back: the server reconnects by itself
        served: list[int] = []

        def activated() -> bool:
            served.append(_timed_activation(srv, keys[6], "box-6")[0])
            return served[-1] == 200

        deadline = time.monotonic() + 20
        while not activated():
            assert time.monotonic() < deadline, f"no activation within 20 s of the database's return: {served}"
            time.sleep(0.05)
        assert set(served) <= {200, 503}
    finally:
        srv.stop()
        relay.close()
    ledger = Issuer(pg_url, tmp_path / "keys")
    states = {lic.activation_key: lic.state for lic in ledger.licenses()}
    assert [states[k] for k in keys] == ["activated", "issued", "issued", "issued", "issued", "issued", "activated", "issued"]
