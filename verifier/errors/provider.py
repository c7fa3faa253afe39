"""The provider's own faults: ledger, keyring and private key (a license server answers 503).

Raised by the issuer and keytool, defined here because a panel may receive any
of them from a license server and must rebuild the same class.
"""

from __future__ import annotations

from typing import Any, ClassVar, Self

from verifier.errors._data import RETRY_AFTER_MEMBER, retry_after
from verifier.errors._registry import LicenseError

__all__ = [
    "KeyringError",
    "KeyringMissingError",
    "LedgerBusyError",
    "LedgerCorruptError",
    "LedgerError",
    "LedgerExistsError",
    "LedgerMissingError",
    "LedgerUnavailableError",
    "LedgerVersionError",
    "LedgerWriteError",
    "NoActiveKeyError",
    "PassphraseError",
    "PrivateKeyError",
    "SecretMissingError",
]


class LedgerError(LicenseError):
    """The ledger cannot be used."""

    code = "ledger-error"
    retry = True
    default_message = "ledger error"
    http_status = 503


class LedgerMissingError(LedgerError):
    """No ledger at the given place (only ``issuer init`` creates one)."""

    code = "ledger-missing"
    default_message = "no ledger here — point --ledger (or LICET_LEDGER) at the provider's ledger"


class LedgerExistsError(LedgerError):
    """``issuer init`` refuses to overwrite a ledger."""

    code = "ledger-exists"
    default_message = "a ledger exists here already; it is never overwritten"


class LedgerCorruptError(LedgerError):
    """A ledger file is empty, truncated, not JSON, or not licet's layout.

    Never treated as empty: that would make every used key usable again.
    """

    code = "ledger-corrupt"
    default_message = "ledger is damaged — restore it from a backup"


class LedgerBusyError(LedgerError):
    """Another process held the ledger lock for the whole timeout."""

    code = "ledger-busy"
    default_message = "ledger is busy — another issuer process holds the lock; try again"


class LedgerWriteError(LedgerError):
    """A write failed (disk full, I/O error); the ledger still holds its previous state."""

    code = "ledger-write-failed"
    default_message = "could not write the ledger; nothing was changed"


class LedgerUnavailableError(LedgerError):
    """The ledger's database cannot be reached: down, failing over, or refusing connections.

    Nothing was answered from a guess: the request either changed nothing or,
    when the connection was lost during its commit, its client was never told
    it succeeded. ``retry_after`` is the seconds after which the license
    server will have tried the database again.
    """

    code = "ledger-unavailable"
    members: ClassVar[dict[str, dict[str, Any]]] = {"retry_after": RETRY_AFTER_MEMBER}
    default_message = "the ledger's database cannot be reached — try again in a few seconds"

    def __init__(self, message: str | None = None, retry_after: int | None = None) -> None:
        self.retry_after = retry_after
        super().__init__(message)

    def details(self) -> dict[str, Any]:
        """Carry the seconds to wait before the next attempt."""
        return {} if self.retry_after is None else {"retry_after": self.retry_after}

    @classmethod
    def from_problem(cls, message: str, details: dict[str, Any]) -> Self:
        """Rebuild with the wait the server sent (ignored unless a whole number ≥ 0)."""
        return cls(message, retry_after=retry_after(details))


class LedgerVersionError(LedgerError):
    """The ledger's schema is of another version than this issuer's.

    An older schema is brought up to date only on request (``issuer ledger
    upgrade``), never silently; a newer one needs a newer licet.
    """

    code = "ledger-version"
    default_message = "the ledger's schema is of another version — run 'issuer ledger upgrade'"


class KeyringError(LicenseError):
    """The keyring is missing, unreadable, or inconsistent."""

    code = "keyring-error"
    retry = True
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
    retry = True
    default_message = "unusable private key"
    http_status = 503


class PassphraseError(PrivateKeyError):
    """A passphrase that is missing, empty or wrong."""

    code = "passphrase-error"
    default_message = "wrong or missing passphrase for the private key"


class SecretMissingError(PrivateKeyError):
    """The activation-key secret is not in the keys folder (the wrong folder, or lost)."""

    code = "secret-missing"
    default_message = "the activation-key secret is missing from the keys folder"
