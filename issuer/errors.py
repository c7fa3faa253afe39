"""Refusals of the provider's ledger (part of the one LicenseError tree)."""

from __future__ import annotations

from verifier.errors import LicenseError

__all__ = [
    "AccountExistsError",
    "AccountNotFoundError",
    "AuthenticationError",
    "CsrfError",
    "LedgerBusyError",
    "LedgerCorruptError",
    "LedgerError",
    "LedgerExistsError",
    "LedgerMissingError",
    "LedgerWriteError",
    "PermissionDeniedError",
]


class LedgerError(LicenseError):
    """The ledger cannot be used."""

    code = "ledger-error"
    default_message = "ledger error"
    http_status = 503


class LedgerMissingError(LedgerError):
    """No ledger at the given place (only ``issuer init`` creates one)."""

    code = "ledger-missing"
    default_message = "no ledger here — run 'issuer init' first"


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


class AccountExistsError(LicenseError):
    """A console user or API token of that name exists already."""

    code = "account-exists"
    default_message = "an account of that name exists already"
    http_status = 409


class AccountNotFoundError(LicenseError):
    """No console user or API token of that name."""

    code = "account-not-found"
    default_message = "no such account"
    http_status = 404


class AuthenticationError(LicenseError):
    """Missing or wrong credentials: password, API token or session.

    The message never says which part was wrong.
    """

    code = "unauthorized"
    default_message = "wrong user name or password"
    http_status = 401


class PermissionDeniedError(LicenseError):
    """The credentials are valid but do not allow this (a read-scope token writing)."""

    code = "forbidden"
    default_message = "this token may only read; changes need a write-scope token"
    http_status = 403


class CsrfError(LicenseError):
    """A console form came without the session's anti-forgery token."""

    code = "csrf-failed"
    default_message = "the form expired or did not come from this console — reload and try again"
    http_status = 403
