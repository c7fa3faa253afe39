from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path

import pytest
from support import FakeClock, claims_for, server_fp

from keytool import Keyring, KeyringError, NoActiveKeyError, PassphraseError, PrivateKeyError
from verifier import UntrustedKeyError, Verifier


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
    steps: tuple[str, ...]  # "sign:<label>" signs with the active key; "rotate"; "revoke:<label>"
    verifies: dict[str, bool]  # label -> verifies with the exported trust set afterwards


CASES = [
    RotationCase("single key", ("sign:a",), {"a": True}),
    RotationCase("retired key still verifies its old tokens", ("sign:a", "rotate", "sign:b"), {"a": True, "b": True}),
    RotationCase("revoked retired key verifies nothing", ("sign:a", "rotate", "revoke:a", "sign:b"), {"a": False, "b": True}),
    RotationCase("revoked active key verifies nothing", ("sign:a", "revoke:a"), {"a": False}),
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
        else:
            ring.revoke(kids[label])
    verifier = Verifier("ispmanager", ring.trusted_keys(), clock=clock, server_fingerprint=server_fp("alpha"))
    for label, expected in case.verifies.items():
        if expected:
            assert verifier.verify(tokens[label]).license_id == "LIC-TEST"
        else:
            with pytest.raises(UntrustedKeyError):
                verifier.verify(tokens[label])
