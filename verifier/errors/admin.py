"""Refusals of the provider's console, admin API and commands.

Raised by the issuer and keytool, defined here so that a panel or any other
client importing only this package rebuilds every code a licet server or
command can give as its own class.
"""

from __future__ import annotations

from verifier.errors._registry import LicenseError
from verifier.errors.input import BadInputError

__all__ = [
    "AccountExistsError",
    "AccountNotFoundError",
    "AuthenticationError",
    "CsrfError",
    "ExpiryOutOfRangeError",
    "ListenError",
    "OutputRefusedError",
    "PermissionDeniedError",
    "RevocationListTooLargeError",
    "UnknownProductError",
    "WebhookNotFoundError",
    "WebhookTargetError",
]


class UnknownProductError(LicenseError):
    """A license for a product this ledger does not know, or a case variant of one it does.

    Tokens name their product exactly; a license for ``ISPmanager`` sold to an
    ``ispmanager`` customer could never be activated.
    """

    code = "unknown-product"
    default_message = "unknown product — check the spelling, or add it as a new product"
    http_status = 422


class ExpiryOutOfRangeError(BadInputError):
    """A well-formed last day that is in the past, or more than 36,500 days away.

    Not a malformed request: the same date is fine on another day. Its own code
    lets an API client tell it from ``bad-input``, which is about the shape.
    """

    code = "expiry-out-of-range"
    default_message = "the expiry date is in the past or too far away"
    http_status = 422


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
    """The credentials are valid but do not allow this (a read- or keys-scope token writing)."""

    code = "forbidden"
    default_message = "this token may only read; changes need a write-scope token"
    http_status = 403


class CsrfError(LicenseError):
    """A console form came without the session's anti-forgery token."""

    code = "csrf-failed"
    default_message = "the form expired or did not come from this console — reload and try again"
    http_status = 403


class ListenError(LicenseError):
    """``issuer serve`` cannot listen on the given address and port (e.g. it is busy)."""

    code = "cannot-listen"
    default_message = "cannot listen on that address and port"
    http_status = 503


class OutputRefusedError(LicenseError):
    """An output file (``--out``) would replace something it must not.

    Key material (private keys, the keyring, the activation-key secret) and
    the ledger are never overwritten, whatever the flags; any other existing
    file only when it is an earlier output of the same command, or with ``--force``.
    """

    code = "output-refused"
    default_message = "refusing to overwrite that file"


class RevocationListTooLargeError(LicenseError):
    """The revocation list would be larger than every verifier accepts, so it is not issued.

    A panel refuses a list over :data:`verifier.revocations.MAX_REVOCATIONS_BYTES`
    and keeps its old one; the issuer refuses to give such a list out instead.
    """

    code = "revocations-too-large"
    default_message = "the revocation list is larger than panels accept"
    http_status = 503  # the provider's list, not the client's request


class WebhookNotFoundError(LicenseError):
    """No webhook endpoint or delivery with that id."""

    code = "webhook-not-found"
    default_message = "no such webhook endpoint or delivery"
    http_status = 404


class WebhookTargetError(BadInputError):
    """A webhook URL licet will not post to: not https, or a loopback, private or reserved target.

    Well-formed as a URL; its own code lets an API client tell it from ``bad-input``.
    """

    code = "webhook-target-refused"
    default_message = "webhook URLs are https:// URLs of public hosts"
    http_status = 422
