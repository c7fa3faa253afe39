"""Refusals of the provider's ledger and licenses (part of the one LicenseError tree)."""

from __future__ import annotations

from keytool.errors import PrivateKeyError
from verifier.errors import LicenseError

__all__ = [
    "LedgerBusyError",
    "LedgerCorruptError",
    "LedgerError",
    "LedgerExistsError",
    "LedgerMissingError",
    "LedgerWriteError",
    "SecretMissingError",
    "UnknownProductError",
]


class LedgerError(LicenseError):
    """The ledger cannot be used."""

    code = "ledger-error"
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


class UnknownProductError(LicenseError):
    """A license for a product this ledger does not know, or a case variant of one it does.

    Tokens name their product exactly; a license for ``ISPmanager`` sold to an
    ``ispmanager`` customer could never be activated.
    """

    code = "unknown-product"
    default_message = "unknown product — check the spelling, or add it as a new product"
    http_status = 422


class SecretMissingError(PrivateKeyError):
    """The activation-key secret is not in the keys folder (the wrong folder, or lost)."""

    code = "secret-missing"
    default_message = "the activation-key secret is missing from the keys folder"
