"""Refusals of input of the wrong shape: options, JSON fields, typed keys and codes."""

from __future__ import annotations

from verifier.errors._registry import LicenseError

__all__ = [
    "ActivationKeyFormatError",
    "BadInputError",
    "RenewalCodeError",
    "RequestCodeError",
]


class BadInputError(LicenseError):
    """Input of the wrong shape: an option, a JSON field, an IP address."""

    code = "bad-input"
    default_message = "bad input"
    http_status = 422  # a malformed request body, whichever field is wrong


class RequestCodeError(LicenseError):
    """An activation request code that is truncated, altered or of another version."""

    code = "invalid-request-code"
    default_message = "invalid activation request code"
    http_status = 422  # a malformed request body, whichever field is wrong


class ActivationKeyFormatError(LicenseError):
    """A typed activation key that fails its check character or has the wrong length.

    Raised before any request is sent or any ledger is read.
    """

    code = "malformed-activation-key"
    default_message = "malformed activation key — check for a typo"
    http_status = 422  # a malformed request body, whichever field is wrong


class RenewalCodeError(LicenseError):
    """A renewal code that is truncated, altered or of another version."""

    code = "invalid-renewal-code"
    default_message = "invalid renewal code"
    http_status = 422  # a malformed request body, whichever field is wrong
