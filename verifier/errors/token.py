"""Refusals of verification on the panel: tokens, revocation lists, trusted keys, the store."""

from __future__ import annotations

import datetime as _dt
from typing import Any, Self

from verifier.errors._data import parse_moment
from verifier.errors._registry import LicenseError
from verifier.timefmt import format_utc

__all__ = [
    "ClockRollbackError",
    "InvalidTokenError",
    "RevocationsError",
    "RevocationsRollbackError",
    "SigningKeyRevokedError",
    "TokenExpiredError",
    "TokenNotYetValidError",
    "TokenStoreError",
    "TokenTooLargeError",
    "TrustedKeysError",
    "TrustedKeysMissingError",
    "UntrustedKeyError",
    "WrongServerError",
]


class InvalidTokenError(LicenseError):
    """A token that fails any check: shape, signature, header or claims."""

    code = "invalid-token"
    default_message = "invalid activation token"


class TokenTooLargeError(InvalidTokenError):
    """A token over the size limit, refused before parsing."""

    code = "token-too-large"
    default_message = "activation token is too large"


class UntrustedKeyError(InvalidTokenError):
    """Signed by a key that is unknown, revoked, or outside its validity window."""

    code = "untrusted-key"
    default_message = "activation token is signed by a key this panel does not trust"


class SigningKeyRevokedError(UntrustedKeyError):
    """Signed by a key the provider revoked: everything it signed stops."""

    code = "signing-key-revoked"
    default_message = "activation token is signed by a revoked key"


class TokenExpiredError(InvalidTokenError):
    """A token past its ``exp`` (beyond the leeway)."""

    code = "token-expired"
    default_message = "activation token has expired"


class TokenNotYetValidError(InvalidTokenError):
    """A token whose ``nbf`` or ``iat`` lies in the future (beyond the leeway)."""

    code = "token-not-yet-valid"
    default_message = "activation token is not valid yet"


class WrongServerError(InvalidTokenError):
    """A valid token bound to another server's fingerprint."""

    code = "wrong-server"
    default_message = "activation token belongs to another server"
    http_status = 403


class ClockRollbackError(LicenseError):
    """The clock is earlier than a time this token store has already seen.

    Attributes:
        seen: the latest time the store recorded (aware UTC).
    """

    code = "clock-rollback"
    default_message = "the system clock was set back"

    def __init__(self, seen: _dt.datetime | None = None, message: str | None = None) -> None:
        self.seen = seen
        if message is None and seen is not None:
            message = (
                "the system clock is earlier than a time this server already saw "
                f"({format_utc(seen)}) — correct the clock"
            )
        super().__init__(message)

    def details(self) -> dict[str, Any]:
        """The latest time seen."""
        return {} if self.seen is None else {"seen": format_utc(self.seen)}

    @classmethod
    def from_problem(cls, message: str, details: dict[str, Any]) -> Self:
        """Rebuild with the time the store had seen."""
        seen = parse_moment(details.get("seen"))
        return cls(seen if isinstance(seen, _dt.datetime) else None, message=message)


class RevocationsError(LicenseError):
    """A revocation list that is malformed, wrongly signed, or from another issuer."""

    code = "invalid-revocations"
    default_message = "invalid revocation list"


class RevocationsRollbackError(RevocationsError):
    """A revocation list older (lower serial) than one already applied."""

    code = "revocations-rollback"
    default_message = "revocation list is older than the one already applied"


class TrustedKeysError(LicenseError):
    """A trusted-keys (JWKS) document that cannot be used."""

    code = "invalid-trusted-keys"
    default_message = "invalid trusted keys"


class TrustedKeysMissingError(TrustedKeysError):
    """The trusted-keys file is not where it was looked for."""

    code = "trusted-keys-missing"
    default_message = "trusted keys file not found"


class TokenStoreError(LicenseError):
    """The stored token cannot be read or written."""

    code = "token-store-error"
    default_message = "cannot access the token store"
