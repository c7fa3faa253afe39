"""The activation-key secret: how keys are derived, so none is stored usable.

``activation-keys.secret`` lives beside the signing keys (mode 0600). A
license's key for generation *g* is ``HMAC-SHA256(secret, license id ‖ g)``
shown in the typable format of :mod:`verifier.activation_key`. The ledger
keeps only SHA-256 of the key for look-ups, so a stolen ledger opens
nothing, yet the provider can always display a license's current key.

Example:
    >>> secret = KeySecret(bytes(32))
    >>> len(secret.key_for("LIC-1", 1))
    29
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import secrets
from pathlib import Path

from issuer.errors import SecretMissingError
from keytool.errors import PrivateKeyError
from keytool.keyring import ActiveSigner, KeyRecord, Keyring, keep_out_of_git, read_private_file
from keytool.signing import TokenSigner
from verifier.activation_key import key_from_bytes
from verifier.clock import Clock
from verifier.fileio import create_exclusive, os_error_words, private_dir

__all__ = ["KeySecret", "Minter", "SECRET_FILE", "key_hash"]

SECRET_FILE = "activation-keys.secret"  # noqa: S105 - a file name
_SECRET_BYTES = 32


def key_hash(canonical_key: str) -> str:
    """The ledger's look-up value for a key (hex SHA-256 of its canonical form)."""
    return hashlib.sha256(canonical_key.encode()).hexdigest()


class KeySecret:
    """The HMAC secret activation keys are derived from."""

    def __init__(self, secret: bytes) -> None:
        if len(secret) != _SECRET_BYTES:
            raise PrivateKeyError("activation-key secret has the wrong length")
        self._secret = secret

    @classmethod
    def create_or_load(cls, keys: Path) -> KeySecret:
        """Load the secret in ``keys``, creating it (0600, O_EXCL) if there is none.

        Raises:
            PrivateKeyError: it cannot be written (the message says why in words) or read.
        """
        path = keys / SECRET_FILE
        if path.exists():  # no write at all where one exists (the keys may be read-only)
            return cls.load(keys)
        try:
            private_dir(keys)  # an existing folder others could write to is made private
            keep_out_of_git(keys)  # the secret never reaches git, whichever tool made the folder
            # Keep an existing secret: every key handed out derives from it.
            with contextlib.suppress(FileExistsError):
                create_exclusive(path, base64.b64encode(secrets.token_bytes(_SECRET_BYTES)) + b"\n")
        except OSError as err:
            raise PrivateKeyError(
                f"cannot write the activation-key secret {path}: "
                f"{os_error_words(err, writing=True)}"
            ) from err
        return cls.load(keys)

    @classmethod
    def load(cls, keys: Path) -> KeySecret:
        """Load the secret from the keys folder.

        Raises:
            PrivateKeyError: missing, readable by others, or damaged.
        """
        path = keys / SECRET_FILE
        if not path.exists() and not path.is_symlink():
            raise SecretMissingError(
                f"activation-key secret {path.resolve()} is missing — point --keys (or "
                "LICET_KEYS) at the keys folder this ledger was made with, or restore the file "
                "from a backup"
            )
        data = read_private_file(path, f"activation-key secret {path.resolve()} is missing", 1024)
        try:
            return cls(base64.b64decode(data.strip(), validate=True))
        except ValueError as err:
            raise PrivateKeyError(f"activation-key secret {path} is damaged") from err

    def key_for(self, license_id: str, generation: int) -> str:
        """The display key of ``license_id`` at ``generation``."""
        message = f"licet/activation-key/v1\x00{license_id}\x00{generation}".encode()
        return key_from_bytes(hmac.new(self._secret, message, hashlib.sha256).digest())

    def check(self) -> str:
        """A value that identifies this secret without revealing it (kept in the ledger)."""
        return hmac.new(self._secret, b"licet/secret-check", hashlib.sha256).hexdigest()[:16]


class Minter:
    """Keys and signatures: the activation-key secret and the keyring's active signing key.

    Args:
        keys: the keys folder.
        secret: its activation-key secret.
        signer: the keyring's active key, re-read when the keyring changes.
        clock: time source, for the keys' displayed states.
    """

    def __init__(
        self, keys: Path, *, secret: KeySecret, signer: ActiveSigner, clock: Clock
    ) -> None:
        self.keys = keys
        self._clock = clock
        self._secret = secret
        self._signer = signer

    def key_for(self, license_id: str, generation: int) -> str:
        """A license's activation key of one generation."""
        return self._secret.key_for(license_id, generation)

    def signer(self) -> TokenSigner:
        """The keyring's active key as it is now.

        A rotation or revocation made by another process while this one runs
        takes effect at the next signature.

        Raises:
            NoActiveKeyError | KeyringMissingError | PrivateKeyError: nothing can sign.
        """
        return self._signer.get()

    def check_signable(self) -> None:
        """Refuse when no key could sign (a license nobody can redeem is not sold).

        Raises:
            NoActiveKeyError | KeyringMissingError: no active signing key.
        """
        Keyring(self.keys).active()

    def key_records(self) -> list[KeyRecord]:
        """The signing keys (public facts only)."""
        return Keyring(self.keys, clock=self._clock).records()
