"""Refusals of the provider's ledger, console and commands (part of the one LicenseError tree).

The classes live in :mod:`verifier.errors`: the license server and the
console answer with them, and a panel or any other client, which may import
only ``verifier``, rebuilds each from its code as the same class. They are
importable from here, their familiar home, as well.
"""

from __future__ import annotations

from verifier.errors import (
    AccountExistsError,
    AccountNotFoundError,
    AuthenticationError,
    CsrfError,
    ExpiryOutOfRangeError,
    LedgerBusyError,
    LedgerCorruptError,
    LedgerError,
    LedgerExistsError,
    LedgerMissingError,
    LedgerUnavailableError,
    LedgerVersionError,
    LedgerWriteError,
    ListenError,
    PermissionDeniedError,
    RevocationListTooLargeError,
    SecretMissingError,
    UnknownProductError,
    WebhookNotFoundError,
    WebhookTargetError,
)

__all__ = [
    "AccountExistsError",
    "AccountNotFoundError",
    "AuthenticationError",
    "CsrfError",
    "ExpiryOutOfRangeError",
    "LedgerBusyError",
    "LedgerCorruptError",
    "LedgerError",
    "LedgerExistsError",
    "LedgerMissingError",
    "LedgerUnavailableError",
    "LedgerVersionError",
    "LedgerWriteError",
    "ListenError",
    "PermissionDeniedError",
    "RevocationListTooLargeError",
    "SecretMissingError",
    "UnknownProductError",
    "WebhookNotFoundError",
    "WebhookTargetError",
]
