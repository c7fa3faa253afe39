"""Refusals of the provider's ledger, licenses and console (part of the one LicenseError tree).

The classes live in :mod:`verifier.errors`: a license server answers with them
(``ledger-busy`` when another process holds the lock, for instance), and a
panel, which imports only ``verifier``, rebuilds them from their codes. They
are importable from here as well. :class:`ListenError`, which only the
``issuer serve`` command meets, lives here.
"""

from __future__ import annotations

from verifier.errors import (
    BadInputError,
    LedgerBusyError,
    LedgerCorruptError,
    LedgerError,
    LedgerExistsError,
    LedgerMissingError,
    LedgerUnavailableError,
    LedgerWriteError,
    LicenseError,
    SecretMissingError,
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
    "LedgerWriteError",
    "LedgerVersionError",
    "ListenError",
    "PermissionDeniedError",
    "SecretMissingError",
    "UnknownProductError",
]


class UnknownProductError(LicenseError):
    """A license for a product this ledger does not know, or a case variant of one it does.

    Tokens name their product exactly; a license for ``ISPmanager`` sold to an
    ``ispmanager`` customer could never be activated.
    """

    code = "unknown-product"
    default_message = "unknown product — check the spelling, or add it as a new product"
    advice = (
        "Check the product's spelling against the provider's products; to add a new "
        'product, send the license again with "new_product": true.'
    )
    http_status = 422


class ExpiryOutOfRangeError(BadInputError):
    """A well-formed last day that is in the past, or more than 36,500 days away.

    Not a malformed request: the same date is fine on another day. Its own code
    lets an API client tell it from ``bad-input``, which is about the shape.
    """

    code = "expiry-out-of-range"
    default_message = "the expiry date is in the past or too far away"
    advice = "Give a last day from today up to 36,500 days ahead, or a number of days instead."
    http_status = 422


class ListenError(LicenseError):
    """``issuer serve`` cannot listen on the given address and port (e.g. it is busy)."""

    code = "cannot-listen"
    default_message = "cannot listen on that address and port"
    http_status = 503


class LedgerVersionError(LedgerError):
    """The ledger's schema is of another version than this issuer's.

    An older schema is brought up to date only on request (``issuer ledger
    upgrade``), never silently; a newer one needs a newer licet.
    """

    code = "ledger-version"
    default_message = "the ledger's schema is of another version — run 'issuer ledger upgrade'"


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
    advice = (
        "Send a valid API token as Authorization: Bearer <token>; a revoked token "
        "stops working at once, so ask the provider for a new one."
    )
    http_status = 401


class PermissionDeniedError(LicenseError):
    """The credentials are valid but do not allow this (a read-scope token writing)."""

    code = "forbidden"
    default_message = "this token may only read; changes need a write-scope token"
    advice = "Use a write-scope token for changes; a read-scope token may only GET."
    http_status = 403


class CsrfError(LicenseError):
    """A console form came without the session's anti-forgery token."""

    code = "csrf-failed"
    default_message = "the form expired or did not come from this console — reload and try again"
    http_status = 403
