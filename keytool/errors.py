"""Refusals of the provider's key management (part of the one LicenseError tree)."""

from __future__ import annotations

from verifier.errors import LicenseError

__all__ = [
    "KeyringError",
    "KeyringMissingError",
    "NoActiveKeyError",
    "PassphraseError",
    "PrivateKeyError",
]


class KeyringError(LicenseError):
    """The keyring is missing, unreadable, or inconsistent."""

    code = "keyring-error"
    default_message = "keyring error"
    http_status = 503  # the provider's set-up, not the client's request


class KeyringMissingError(KeyringError):
    """No keyring in the keys folder: the wrong folder, far more often than no keys at all."""

    code = "keyring-missing"
    default_message = "no keyring in the keys folder"


class NoActiveKeyError(KeyringError):
    """No key may sign: none was made, or the active one was revoked."""

    code = "no-active-key"
    default_message = "no active signing key — run 'keytool new' or 'keytool rotate'"


class PrivateKeyError(LicenseError):
    """A private key file that is missing, unsafe, or not an Ed25519 key."""

    code = "private-key-error"
    default_message = "unusable private key"
    http_status = 503


class PassphraseError(PrivateKeyError):
    """A passphrase that is missing, empty or wrong."""

    code = "passphrase-error"
    default_message = "wrong or missing passphrase for the private key"
