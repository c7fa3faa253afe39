"""licet's provider-side key management.

Example:
    >>> from keytool import Keyring
    >>> ring = Keyring("keys")  # doctest: +SKIP
    >>> ring.new(); ring.export("keys/trusted_keys.json")  # doctest: +SKIP
"""

from __future__ import annotations

from keytool.errors import KeyringError, NoActiveKeyError, PassphraseError, PrivateKeyError
from keytool.keyring import KeyRecord, Keyring
from keytool.passphrase import read_passphrase
from keytool.signing import TokenSigner

__all__ = [
    "KeyRecord",
    "Keyring",
    "KeyringError",
    "NoActiveKeyError",
    "PassphraseError",
    "PrivateKeyError",
    "TokenSigner",
    "read_passphrase",
]
