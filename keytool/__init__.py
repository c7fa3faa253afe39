"""licet's provider-side key management.

Example:
    >>> from keytool import Keyring
    >>> ring = Keyring("keys")  # doctest: +SKIP
    >>> ring.new(); ring.export("keys/trusted_keys.json")  # doctest: +SKIP
"""

from __future__ import annotations

from keytool.errors import (
    KeyringError,
    NoActiveKeyError,
    OutputRefusedError,
    PassphraseError,
    PrivateKeyError,
)
from keytool.keyring import ActiveSigner, KeyRecord, Keyring
from keytool.passphrase import read_passphrase
from keytool.signing import TokenSigner

__all__ = [
    "ActiveSigner",
    "KeyRecord",
    "Keyring",
    "KeyringError",
    "NoActiveKeyError",
    "OutputRefusedError",
    "PassphraseError",
    "PrivateKeyError",
    "TokenSigner",
    "read_passphrase",
]
