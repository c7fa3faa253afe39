"""The one exception tree of licet.

Every refusal anywhere in licet is a :class:`LicenseError` with a stable
machine-readable ``code`` and a one-line human message. The CLIs print
``str(err)`` and exit 1; the license server answers problem+json with
``err.code``; the panel's client turns that code back into the same class
(:func:`error_for_code`), so a panel sees the same exception whether it
activated online or offline.

Example:
    >>> try:
    ...     raise AlreadyActivatedError(regenerate_after=None)
    ... except LicenseError as err:
    ...     err.code
    'already-activated'
"""

from __future__ import annotations

import datetime as _dt
from typing import Any, ClassVar

__all__ = [
    "ActivationKeyFormatError",
    "ActivationRequiredError",
    "AlreadyActivatedError",
    "BadInputError",
    "CallbackError",
    "InvalidActivationKeyError",
    "InvalidTokenError",
    "LicenseError",
    "LicenseExpiredError",
    "LicenseNotFoundError",
    "LicenseRevokedError",
    "NoLicenseForAddressError",
    "ProductMismatchError",
    "RateLimitedError",
    "RegenerationTooSoonError",
    "RequestCodeError",
    "ServerUnavailableError",
    "TokenExpiredError",
    "TokenNotYetValidError",
    "TokenStoreError",
    "TokenTooLargeError",
    "TrustedKeysError",
    "TrustedKeysMissingError",
    "UntrustedKeyError",
    "WrongServerError",
    "error_for_code",
]


class LicenseError(Exception):
    """Root of every licet refusal.

    Attributes:
        code: stable machine-readable identifier (kebab-case), part of the API.
        message: one line for humans.
    """

    code: ClassVar[str] = "license-error"
    default_message: ClassVar[str] = "license error"
    #: HTTP status the license server answers with for this refusal.
    http_status: ClassVar[int] = 400

    def __init__(self, message: str | None = None) -> None:
        self.message = " ".join((message or self.default_message).split())
        super().__init__(self.message)

    def details(self) -> dict[str, Any]:
        """Extra machine-readable fields (JSON types only) carried with the error."""
        return {}


_REGISTRY: dict[str, type[LicenseError]] = {}


def _register(cls: type[LicenseError]) -> type[LicenseError]:
    _REGISTRY[cls.code] = cls
    return cls


def error_for_code(code: str, message: str, details: dict[str, Any] | None = None) -> LicenseError:
    """Rebuild the licet error for a code received from a license server.

    Unknown codes (a newer server) come back as a plain :class:`LicenseError`
    carrying the server's message, never as an exception of another kind.
    """
    cls = _REGISTRY.get(code)
    extra = details or {}
    if cls is AlreadyActivatedError:
        return AlreadyActivatedError(_parse_date(extra.get("regenerate_after")), message=message)
    allowed = _parse_date(extra.get("allowed_from"))
    if cls is RegenerationTooSoonError and allowed is not None:
        return RegenerationTooSoonError(allowed)
    if cls is None or cls is RegenerationTooSoonError:
        err = LicenseError(message)
        err.code = code  # type: ignore[misc]  # keeps a newer server's code visible
        return err
    return cls(message)


def _parse_date(value: object) -> _dt.date | None:
    if not isinstance(value, str):
        return None
    try:
        return _dt.date.fromisoformat(value[:10])
    except ValueError:
        return None


# --- bad input -------------------------------------------------------------


@_register
class BadInputError(LicenseError):
    """Input of the wrong shape: an option, a JSON field, an IP address."""

    code = "bad-input"
    default_message = "bad input"


@_register
class RequestCodeError(LicenseError):
    """An activation request code that is truncated, altered or of another version."""

    code = "invalid-request-code"
    default_message = "invalid activation request code"


@_register
class ActivationKeyFormatError(LicenseError):
    """A typed activation key that fails its check character or has the wrong length.

    Raised before any request is sent or any ledger is read.
    """

    code = "malformed-activation-key"
    default_message = "malformed activation key — check for a typo"


# --- token verification ----------------------------------------------------


@_register
class InvalidTokenError(LicenseError):
    """A token that fails any check: shape, signature, header or claims."""

    code = "invalid-token"
    default_message = "invalid activation token"


@_register
class TokenTooLargeError(InvalidTokenError):
    """A token over the size limit, refused before parsing."""

    code = "token-too-large"
    default_message = "activation token is too large"


@_register
class UntrustedKeyError(InvalidTokenError):
    """Signed by a key that is unknown, revoked, or outside its validity window."""

    code = "untrusted-key"
    default_message = "activation token is signed by a key this panel does not trust"


@_register
class TokenExpiredError(InvalidTokenError):
    """A token past its ``exp`` (beyond the leeway)."""

    code = "token-expired"
    default_message = "activation token has expired"


@_register
class TokenNotYetValidError(InvalidTokenError):
    """A token whose ``nbf`` or ``iat`` lies in the future (beyond the leeway)."""

    code = "token-not-yet-valid"
    default_message = "activation token is not valid yet"


@_register
class WrongServerError(InvalidTokenError):
    """A valid token bound to another server's fingerprint."""

    code = "wrong-server"
    default_message = "activation token belongs to another server"


@_register
class TrustedKeysError(LicenseError):
    """A trusted-keys (JWKS) document that cannot be used."""

    code = "invalid-trusted-keys"
    default_message = "invalid trusted keys"


@_register
class TrustedKeysMissingError(TrustedKeysError):
    """The trusted-keys file is not where it was looked for."""

    code = "trusted-keys-missing"
    default_message = "trusted keys file not found"


@_register
class TokenStoreError(LicenseError):
    """The stored token cannot be read or written."""

    code = "token-store-error"
    default_message = "cannot access the token store"


# --- activation outcomes (issuer side, relayed to panels) -------------------


@_register
class InvalidActivationKeyError(LicenseError):
    """A well-formed key that opens no license (counted for rate limiting)."""

    code = "invalid-activation-key"
    default_message = "invalid activation key"
    http_status = 403


@_register
class LicenseNotFoundError(LicenseError):
    """No license with that id."""

    code = "license-not-found"
    default_message = "no such license"
    http_status = 404


@_register
class LicenseRevokedError(LicenseError):
    """The license was revoked by the provider."""

    code = "license-revoked"
    default_message = "license has been revoked by the provider"
    http_status = 403


@_register
class LicenseExpiredError(LicenseError):
    """The license is past its expiry date."""

    code = "license-expired"
    default_message = "license has expired"
    http_status = 403


@_register
class ProductMismatchError(LicenseError):
    """The key or token belongs to another product."""

    code = "wrong-product"
    default_message = "license is for another product"
    http_status = 403


@_register
class AlreadyActivatedError(LicenseError):
    """The key was already used on another server.

    Attributes:
        regenerate_after: first date on which the provider may regenerate the
            key (``None`` when the server did not say).
    """

    code = "already-activated"
    http_status = 409

    def __init__(self, regenerate_after: _dt.date | None, message: str | None = None) -> None:
        self.regenerate_after = regenerate_after
        if message is None:
            message = "already activated — ask your provider to regenerate the activation key"
            if regenerate_after is not None:
                message += f"; possible from {regenerate_after.isoformat()}"
        super().__init__(message)

    def details(self) -> dict[str, Any]:
        """Carry the regeneration date to the panel."""
        if self.regenerate_after is None:
            return {}
        return {"regenerate_after": self.regenerate_after.isoformat()}


@_register
class RegenerationTooSoonError(LicenseError):
    """The key was regenerated less than a month ago.

    Attributes:
        allowed_from: the first instant at which regeneration is allowed.
    """

    code = "regeneration-too-soon"
    http_status = 409

    def __init__(self, allowed_from: _dt.datetime | _dt.date) -> None:
        self.allowed_from = allowed_from
        super().__init__(
            "activation key was regenerated less than a month ago; "
            f"next regeneration possible from {allowed_from.isoformat()}"
        )

    def details(self) -> dict[str, Any]:
        """Carry the date from which regeneration is possible."""
        return {"allowed_from": self.allowed_from.isoformat()}


@_register
class NoLicenseForAddressError(LicenseError):
    """Automatic activation found no license assigned to the caller's address."""

    code = "no-license-for-address"
    default_message = "no license is assigned to this server's address — activate manually"
    http_status = 404


@_register
class CallbackError(LicenseError):
    """The license server could not confirm the panel at the caller's address."""

    code = "callback-failed"
    default_message = "the license server could not confirm this panel through its callback"
    http_status = 403


@_register
class RateLimitedError(LicenseError):
    """Too many failed attempts from one client address."""

    code = "rate-limited"
    default_message = "too many failed activation attempts — try again later"
    http_status = 429


@_register
class ServerUnavailableError(LicenseError):
    """The license server could not be reached or answered nonsense."""

    code = "server-unavailable"
    default_message = "license server unavailable"
    http_status = 502


@_register
class ActivationRequiredError(LicenseError):
    """The panel holds no valid token and could not activate automatically.

    Attributes:
        reason: why (the refusal that got us here), or ``None``.
        buy_url: where the panel sends people to buy a license.
        manual_fields: what the manual activation form must ask for.
    """

    code = "activation-required"
    manual_fields = ("activation_key",)

    def __init__(self, reason: LicenseError | None = None, buy_url: str | None = None) -> None:
        self.reason = reason
        self.buy_url = buy_url
        message = "activation required"
        if reason is not None:
            message += f": {reason.message}"
        if buy_url:
            message += f" — buy a license at {buy_url}"
        super().__init__(message)

    def details(self) -> dict[str, Any]:
        """The reason, the buy link and the manual form's fields."""
        return {
            "reason_code": None if self.reason is None else self.reason.code,
            "reason": None if self.reason is None else self.reason.message,
            "buy_url": self.buy_url,
            "manual_fields": list(self.manual_fields),
        }
