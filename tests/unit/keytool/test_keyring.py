from __future__ import annotations

import json
import os
import stat
from dataclasses import dataclass
from pathlib import Path

import jwt
import pytest
from support import FakeClock, claims_for, server_fp

from keytool import Keyring, KeyringError, NoActiveKeyError, PassphraseError, PrivateKeyError
from verifier import TrustedKeys, UntrustedKeyError, Verifier


def test_new_key_is_active_and_private_file_is_0600(tmp_path: Path, clock: FakeClock) -> None:
    ring = Keyring(tmp_path / "keys", clock=clock)
    record = ring.new()
    assert ring.active() == record
    pem = tmp_path / "keys" / f"{record.kid}.pem"
    assert stat.S_IMODE(pem.stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "keys").stat().st_mode) == 0o700
    assert stat.S_IMODE((tmp_path / "keys" / "keyring.json").stat().st_mode) == 0o600
    assert b"PRIVATE KEY" in pem.read_bytes()


def test_second_new_is_refused(tmp_path: Path, clock: FakeClock) -> None:
    ring = Keyring(tmp_path, clock=clock)
    ring.new()
    with pytest.raises(KeyringError, match="rotate"):
        ring.new()


def test_no_keyring_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(KeyringError, match="keytool new"):
        Keyring(tmp_path).records()


def test_passphrase_protects_the_key(tmp_path: Path, clock: FakeClock) -> None:
    ring = Keyring(tmp_path, clock=clock)
    record = ring.new(passphrase=b"correct horse")
    assert b"ENCRYPTED" in (tmp_path / f"{record.kid}.pem").read_bytes()
    assert ring.signer(b"correct horse").kid == record.kid
    with pytest.raises(PassphraseError, match="wrong passphrase"):
        ring.signer(b"wrong horse!")
    with pytest.raises(PassphraseError, match="give its passphrase"):
        ring.signer(None)


def test_short_passphrase_is_refused(tmp_path: Path) -> None:
    with pytest.raises(PassphraseError, match="at least"):
        Keyring(tmp_path).new(passphrase=b"short")


def test_passphrase_for_unencrypted_key_is_refused(tmp_path: Path) -> None:
    ring = Keyring(tmp_path)
    ring.new()
    with pytest.raises(PassphraseError, match="not encrypted"):
        ring.signer(b"some passphrase")


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o644])
def test_group_or_world_readable_key_is_refused(tmp_path: Path, mode: int) -> None:
    ring = Keyring(tmp_path)
    record = ring.new()
    os.chmod(tmp_path / f"{record.kid}.pem", mode)
    with pytest.raises(PrivateKeyError, match="chmod 600"):
        ring.signer()


def test_missing_or_swapped_private_key_is_refused(tmp_path: Path) -> None:
    ring = Keyring(tmp_path)
    first = ring.new()
    second = ring.rotate()
    (tmp_path / f"{second.kid}.pem").unlink()
    with pytest.raises(PrivateKeyError, match="missing"):
        ring.signer()
    os.rename(tmp_path / f"{first.kid}.pem", tmp_path / f"{second.kid}.pem")
    with pytest.raises(PrivateKeyError, match="does not match"):
        ring.signer()


def test_non_ed25519_private_key_is_refused(tmp_path: Path) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    ring = Keyring(tmp_path)
    record = ring.new()
    other = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    (tmp_path / f"{record.kid}.pem").write_bytes(other)
    with pytest.raises(PrivateKeyError, match="not an Ed25519"):
        ring.signer()


@pytest.mark.parametrize(
    "text",
    [b"", b"{}", b'{"version": 2, "keys": []}', b"garbage", b'{"version": 1, "keys": [{"kid": "x"}]}'],
)
def test_damaged_keyring_is_refused(tmp_path: Path, text: bytes) -> None:
    (tmp_path / "keyring.json").write_bytes(text)
    with pytest.raises(KeyringError):
        Keyring(tmp_path).records()


def test_revoke_unknown_and_twice(tmp_path: Path) -> None:
    ring = Keyring(tmp_path)
    record = ring.new()
    with pytest.raises(KeyringError, match="no key"):
        ring.revoke("0123456789abcdef")
    ring.revoke(record.kid)
    with pytest.raises(KeyringError, match="already revoked"):
        ring.revoke(record.kid)
    with pytest.raises(NoActiveKeyError):
        ring.signer()


# --- rotation as data: which tokens verify after which keyring changes -------------------


@dataclass(frozen=True)
class RotationCase:
    name: str
    steps: tuple[str, ...]  # "sign:<label>" signs with the active key; "rotate"; "new"; "revoke:<label>"
    verifies: dict[str, bool]  # label -> verifies with the exported trust set afterwards


CASES = [
    RotationCase("single key", ("sign:a",), {"a": True}),
    RotationCase("retired key still verifies its old tokens", ("sign:a", "rotate", "sign:b"), {"a": True, "b": True}),
    RotationCase("revoked retired key verifies nothing", ("sign:a", "rotate", "revoke:a", "sign:b"), {"a": False, "b": True}),
    RotationCase("revoked active key verifies nothing", ("sign:a", "revoke:a", "new", "sign:b"), {"a": False, "b": True}),
    RotationCase("two rotations keep the chain", ("sign:a", "rotate", "sign:b", "rotate", "sign:c"), {"a": True, "b": True, "c": True}),
    RotationCase("revoking the middle key", ("sign:a", "rotate", "sign:b", "rotate", "revoke:b", "sign:c"), {"a": True, "b": False, "c": True}),
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_key_rotation(tmp_path: Path, case: RotationCase) -> None:
    clock = FakeClock()
    ring = Keyring(tmp_path, clock=clock)
    ring.new()
    tokens: dict[str, str] = {}
    kids: dict[str, str] = {}
    for step in case.steps:
        clock.advance(hours=1)
        action, _, label = step.partition(":")
        if action == "sign":
            signer = ring.signer()
            tokens[label], kids[label] = signer.sign(claims_for(server_fp("alpha"), clock, days=365)), signer.kid
        elif action == "rotate":
            ring.rotate()
        elif action == "new":
            ring.new()
        else:
            ring.revoke(kids[label])
    exported = ring.export(tmp_path / "trusted_keys.json")
    verifier = Verifier("ispmanager", TrustedKeys.from_file(exported), clock=clock, server_fingerprint=server_fp("alpha"))
    for label, expected in case.verifies.items():
        if expected:
            assert verifier.verify(tokens[label]).license_id == "LIC-TEST"
        else:
            with pytest.raises(UntrustedKeyError):
                verifier.verify(tokens[label])


# --- the exported trust set, as any JOSE library reads it ---------------------------------


def test_export_holds_only_keys_that_may_verify_with_their_windows(tmp_path: Path, clock: FakeClock) -> None:
    ring = Keyring(tmp_path, clock=clock)
    first = ring.new()
    clock.advance(days=10)
    second = ring.rotate()
    clock.advance(days=10)
    third = ring.rotate()
    ring.revoke(second.kid)
    jwks = json.loads(ring.export(tmp_path / "trusted_keys.json").read_text())
    by_kid = {jwk["kid"]: jwk for jwk in jwks["keys"]}
    assert set(by_kid) == {first.kid, third.kid}  # the revoked key is simply absent
    retired = by_kid[first.kid]
    assert retired["licet_status"] == "retired"
    assert retired["licet_not_before"] == int(first.created_at.timestamp())
    assert retired["licet_not_after"] == int(second.created_at.timestamp())  # retired when the second came
    assert by_kid[third.kid]["licet_status"] == "active" and by_kid[third.kid]["licet_not_after"] is None
    assert "revoked" not in json.dumps(jwks)


def test_pyjwt_keyset_trusts_exactly_the_exported_keys(tmp_path: Path, clock: FakeClock) -> None:
    # A panel written with a standard JOSE library knows nothing of licet_status:
    # a revoked key protects it only by being absent from the file.
    ring = Keyring(tmp_path, clock=clock)
    ring.new()
    old_signer = ring.signer()
    old_token = old_signer.sign(claims_for(server_fp("alpha"), clock, days=365))
    clock.advance(days=1)
    ring.rotate()
    doomed_signer = ring.signer()
    doomed_token = doomed_signer.sign(claims_for(server_fp("alpha"), clock, days=365))
    clock.advance(days=1)
    ring.rotate()
    ring.revoke(doomed_signer.kid)
    keyset = jwt.PyJWKSet.from_json(ring.export(tmp_path / "trusted_keys.json").read_text())
    assert {key.key_id for key in keyset} == {r.kid for r in ring.records() if r.status != "revoked"}
    with pytest.raises(KeyError):
        keyset[doomed_signer.kid]
    pinned = {"algorithms": ["EdDSA"], "audience": "ispmanager", "options": {"verify_exp": False, "verify_iat": False, "verify_nbf": False}}
    kid = jwt.get_unverified_header(old_token)["kid"]
    assert jwt.decode(old_token, keyset[kid], **pinned)["sub"] == "LIC-TEST"  # a retired key still verifies
    assert jwt.get_unverified_header(doomed_token)["kid"] not in {key.key_id for key in keyset}


def test_export_refuses_a_keyring_whose_every_key_is_revoked(tmp_path: Path) -> None:
    ring = Keyring(tmp_path)
    record = ring.new()
    ring.revoke(record.kid)
    with pytest.raises(KeyringError, match="every key is revoked"):
        ring.export(tmp_path / "trusted_keys.json")
    assert not (tmp_path / "trusted_keys.json").exists()
