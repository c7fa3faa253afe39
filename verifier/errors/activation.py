"""Outcomes of activation and renewal: the license server decides them, panels receive them.

The classes carry the data a panel needs (``regenerate_after``,
``allowed_from``, the reason an activation is required) and rebuild it from a
problem document.
"""

from __future__ import annotations

import datetime as _dt
from typing import Any, ClassVar, Self

from verifier.errors._data import parse_date, parse_moment
from verifier.errors._registry import LicenseError, error_for_code
from verifier.timefmt import format_utc

__all__ = [
    "ActivationNotFoundError",
    "ActivationRequiredError",
    "ActivationSupersededError",
    "AlreadyActivatedError",
    "CallbackError",
    "InvalidActivationKeyError",
    "LicenseExpiredError",
    "LicenseNotFoundError",
    "LicenseRevokedError",
    "MachineIdRefusedError",
    "NoLicenseForAddressError",
    "ProductMismatchError",
    "RegenerationTooSoonError",
]


class InvalidActivationKeyError(LicenseError):
    """A well-formed key that opens no license (counted for rate limiting)."""

    code = "invalid-activation-key"
    default_message = "invalid activation key"
    http_status = 403


class LicenseNotFoundError(LicenseError):
    """No license with that id."""

    code = "license-not-found"
    default_message = "no such license"
    http_status = 404


class LicenseRevokedError(LicenseError):
    """The license was revoked by the provider."""

    code = "license-revoked"
    default_message = "license has been revoked by the provider"
    http_status = 403


class LicenseExpiredError(LicenseError):
    """The license is past its expiry date."""

    code = "license-expired"
    default_message = "license has expired"
    http_status = 403


class ActivationSupersededError(LicenseError):
    """The activation was replaced: the key was regenerated and the license freed or reused."""

    code = "activation-superseded"
    default_message = (
        "this server's activation was superseded — the activation key was regenerated; "
        "activate again with the current key"
    )
    http_status = 409


class ActivationNotFoundError(LicenseError):
    """A renewal names an activation the license never had."""

    code = "activation-not-found"
    default_message = "no such activation for this license"
    http_status = 404


class ProductMismatchError(LicenseError):
    """The key or token belongs to another product."""

    code = "wrong-product"
    default_message = "license is for another product"
    http_status = 403


class MachineIdRefusedError(LicenseError):
    """The license accepts only the server's own hardware identity, not a custom machine id."""

    code = "machine-id-refused"
    default_message = (
        "this license does not accept a custom machine id (--machine-id) — "
        "activate with the server's own hardware identity"
    )
    http_status = 403


class AlreadyActivatedError(LicenseError):
    """The key was already used on another server.

    Attributes:
        regenerate_after: first date on which the provider may regenerate the
            key (``None`` when the server did not say).
    """

    code = "already-activated"
    members: ClassVar[dict[str, dict[str, Any]]] = {
        "regenerate_after": {
            "type": "string",
            "format": "date",
            "description": "first date on which the provider may regenerate the key",
        },
    }
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

    @classmethod
    def from_problem(cls, message: str, details: dict[str, Any]) -> Self:
        """Rebuild with the regeneration date the server sent."""
        return cls(parse_date(details.get("regenerate_after")), message=message)


class RegenerationTooSoonError(LicenseError):
    """The key was regenerated less than a month ago.

    Attributes:
        allowed_from: the first instant at which regeneration is allowed.
    """

    code = "regeneration-too-soon"
    members: ClassVar[dict[str, dict[str, Any]]] = {
        "allowed_from": {
            "type": "string",
            "description": "first moment (ISO 8601 date or UTC time) regeneration is allowed",
        },
    }
    retry = True
    http_status = 409

    def __init__(self, allowed_from: _dt.datetime | _dt.date, message: str | None = None) -> None:
        self.allowed_from = allowed_from
        shown = _shown(allowed_from)
        super().__init__(
            message
            or "activation key was regenerated less than a month ago; "
            f"next regeneration possible from {shown}"
        )

    def details(self) -> dict[str, Any]:
        """Carry the date from which regeneration is possible."""
        return {"allowed_from": _shown(self.allowed_from)}

    @classmethod
    def from_problem(cls, message: str, details: dict[str, Any]) -> Self:
        """Rebuild with the date the server sent.

        Raises:
            ValueError: the server sent no usable date.
        """
        allowed = parse_moment(details.get("allowed_from"))
        if allowed is None:
            raise ValueError("regeneration-too-soon without a date")
        return cls(allowed, message=message)


def _shown(allowed_from: _dt.datetime | _dt.date) -> str:
    """A date as ``YYYY-MM-DD``; a time as ``YYYY-MM-DDTHH:MM:SSZ``, rounded up.

    Rounded up: at the second shown, regeneration is allowed.
    """
    if not isinstance(allowed_from, _dt.datetime):
        return allowed_from.isoformat()
    ceiling = allowed_from + _dt.timedelta(microseconds=999_999)
    return format_utc(ceiling.replace(microsecond=0)) or allowed_from.isoformat()


class NoLicenseForAddressError(LicenseError):
    """Automatic activation found no license assigned to the caller's address."""

    code = "no-license-for-address"
    default_message = "no license is assigned to this server's address — activate manually"
    http_status = 404


class CallbackError(LicenseError):
    """The license server could not confirm the panel at the caller's address."""

    code = "callback-failed"
    retry = True
    default_message = "the license server could not confirm this panel through its callback"
    http_status = 403


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

    @classmethod
    def from_problem(cls, message: str, details: dict[str, Any]) -> Self:
        """Rebuild with the reason (itself rebuilt from its code) and the buy link."""
        code, text, buy_url = (details.get(k) for k in ("reason_code", "reason", "buy_url"))
        reason = None
        if isinstance(code, str) and isinstance(text, str):
            reason = error_for_code(code, text)
        return cls(reason=reason, buy_url=buy_url if isinstance(buy_url, str) else None)
