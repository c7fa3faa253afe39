"""The one exception tree of licet.

Every refusal anywhere in licet is a :class:`LicenseError` with a stable
machine-readable ``code`` and a one-line human message. The CLIs print
``str(err)`` and exit 1; the license server answers problem+json with
``err.code``; the panel's client turns that code back into the same class
(:func:`error_for_code`), so a panel sees the same exception whether it
activated online or offline.

Every subclass registers its ``code`` when the class is created: a class
without a code of its own, or with a code another class holds, is an error
at import. Every refusal of the provider's side is defined here too — the
ledger and keyring faults, the console's and admin API's refusals, those of
the commands — so a panel or any API client that imports only ``verifier``
rebuilds every code a licet server can send as its exact class;
``issuer.errors`` and ``keytool.errors`` re-export them under their
familiar homes.

Example:
    >>> try:
    ...     raise AlreadyActivatedError(regenerate_after=None)
    ... except LicenseError as err:
    ...     err.code
    'already-activated'
"""

from __future__ import annotations

import datetime as _dt
import re
from typing import Any, ClassVar, Self

__all__ = [
    "AccountExistsError",
    "AccountNotFoundError",
    "ActivationKeyFormatError",
    "ActivationNotFoundError",
    "ActivationRequiredError",
    "ActivationSupersededError",
    "AlreadyActivatedError",
    "AuthenticationError",
    "BadInputError",
    "BodyTooLargeError",
    "CallbackError",
    "ClockRollbackError",
    "CsrfError",
    "ExpiryOutOfRangeError",
    "HeadersTooLargeError",
    "HttpRefusalError",
    "InvalidActivationKeyError",
    "InvalidTokenError",
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
    "LicenseError",
    "LicenseExpiredError",
    "LicenseNotFoundError",
    "LicenseRevokedError",
    "ListenError",
    "MachineIdRefusedError",
    "MethodNotAllowedError",
    "NoActiveKeyError",
    "NoLicenseForAddressError",
    "NotFoundError",
    "OutputRefusedError",
    "PassphraseError",
    "PermissionDeniedError",
    "PrivateKeyError",
    "ProductMismatchError",
    "RateLimitedError",
    "RegenerationTooSoonError",
    "RenewalCodeError",
    "RequestCodeError",
    "RevocationsError",
    "RevocationListTooLargeError",
    "RevocationsRollbackError",
    "SecretMissingError",
    "ServerUnavailableError",
    "SigningKeyRevokedError",
    "TokenExpiredError",
    "TokenNotYetValidError",
    "TokenStoreError",
    "TokenTooLargeError",
    "TrustedKeysError",
    "TrustedKeysMissingError",
    "UnknownProductError",
    "UntrustedKeyError",
    "WrongServerError",
    "error_class",
    "error_classes",
    "error_for_code",
]


_CODE = re.compile(r"[a-z][a-z0-9]*(-[a-z0-9]+)*")
_REGISTRY: dict[str, type[LicenseError]] = {}


class LicenseError(Exception):
    """Root of every licet refusal.

    Attributes:
        code: stable machine-readable identifier (kebab-case), part of the API;
            unique across every licet package.
        message: one line for humans.
    """

    code: ClassVar[str] = "license-error"
    default_message: ClassVar[str] = "license error"
    #: HTTP status the license server answers with for this refusal.
    http_status: ClassVar[int] = 400
    #: What a client should do about this refusal (its problem page says it).
    advice: ClassVar[str] = "Read the detail, correct the request, or ask the provider."
    #: Whether the very same request, sent again later, may succeed.
    retry: ClassVar[bool] = False
    #: Extension members this refusal carries in a problem document: name → JSON Schema.
    members: ClassVar[dict[str, dict[str, Any]]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        _register(cls)

    def __init__(self, message: str | None = None) -> None:
        self.message = " ".join((message or self.default_message).split())
        super().__init__(self.message)

    def details(self) -> dict[str, Any]:
        """Extra machine-readable fields (JSON types only) carried with the error."""
        return {}

    @classmethod
    def from_problem(cls, message: str, details: dict[str, Any]) -> Self:
        """Rebuild this error from a problem document's ``detail`` and extra members.

        Classes whose :meth:`details` carry data override this to read it back.
        """
        return cls(message)


def _register(cls: type[LicenseError]) -> None:
    code = cls.__dict__.get("code")
    name = f"{cls.__module__}.{cls.__qualname__}"
    if not isinstance(code, str) or _CODE.fullmatch(code) is None:
        raise TypeError(f"{name} must define its own kebab-case 'code'")
    holder = _REGISTRY.get(code)
    # The same class created again (its module reloaded) takes its own place back.
    if holder is not None and (holder.__module__, holder.__qualname__) != (
        cls.__module__,
        cls.__qualname__,
    ):
        raise TypeError(
            f"error code {code!r} of {name} is already used by "
            f"{holder.__module__}.{holder.__qualname__}"
        )
    _REGISTRY[code] = cls


_register(LicenseError)


def error_classes() -> list[type[LicenseError]]:
    """Every registered error class (of the modules imported so far), ordered by code."""
    return [_REGISTRY[code] for code in sorted(_REGISTRY)]


def error_class(code: str) -> type[LicenseError] | None:
    """The error class registered for ``code``, or ``None`` when no imported module defines it."""
    return _REGISTRY.get(code)


def error_for_code(code: str, message: str, details: dict[str, Any] | None = None) -> LicenseError:
    """Rebuild the licet error for a code received from a license server.

    The exact subclass comes back, with the data it carries (for example
    :attr:`AlreadyActivatedError.regenerate_after`). Unknown codes (a newer
    server) come back as a plain :class:`LicenseError` carrying the server's
    code and message, never as an exception of another kind.
    """
    cls = _REGISTRY.get(code)
    if cls is None or cls is LicenseError:
        err = LicenseError(message)
        err.code = code  # type: ignore[misc]  # keeps a newer server's code visible
        return err
    try:
        return cls.from_problem(message, details or {})
    except (TypeError, ValueError):  # data of the wrong shape from the server
        err = LicenseError(message)
        err.code = code  # type: ignore[misc]
        return err


def _parse_date(value: object) -> _dt.date | None:
    if not isinstance(value, str):
        return None
    try:
        return _dt.date.fromisoformat(value[:10])
    except ValueError:
        return None


def _parse_moment(value: object) -> _dt.datetime | _dt.date | None:
    """A datetime or a date in ISO form, as :meth:`RegenerationTooSoonError.details` writes it."""
    if not isinstance(value, str):
        return None
    try:
        moment = _dt.datetime.fromisoformat(value)
    except ValueError:
        return None
    if len(value) == 10:  # a bare date
        return moment.date()
    return moment if moment.tzinfo is not None else None


# --- bad input -------------------------------------------------------------


class BadInputError(LicenseError):
    """Input of the wrong shape: an option, a JSON field, an IP address."""

    code = "bad-input"
    advice = (
        "The request is malformed (a field of the wrong type, length or format, an "
        "unknown member). Fix the request as the detail says; the OpenAPI document gives "
        "every field's format."
    )
    default_message = "bad input"
    http_status = 422  # a malformed request body, whichever field is wrong


class RequestCodeError(LicenseError):
    """An activation request code that is truncated, altered or of another version."""

    code = "invalid-request-code"
    advice = (
        "Copy the whole request code again from the panel (it is one line) and send it "
        "unchanged; a code of another version needs a matching panel."
    )
    default_message = "invalid activation request code"
    http_status = 422  # a malformed request body, whichever field is wrong


class ActivationKeyFormatError(LicenseError):
    """A typed activation key that fails its check character or has the wrong length.

    Raised before any request is sent or any ledger is read.
    """

    code = "malformed-activation-key"
    advice = (
        "The activation key has a typo: compare it with the key the provider gave, "
        "character by character."
    )
    default_message = "malformed activation key — check for a typo"
    http_status = 422  # a malformed request body, whichever field is wrong


class RenewalCodeError(LicenseError):
    """A renewal code that is truncated, altered or of another version."""

    code = "invalid-renewal-code"
    default_message = "invalid renewal code"
    http_status = 422  # a malformed request body, whichever field is wrong
    advice = (
        "Make a new renewal code on the panel and send it whole and unchanged; "
        "a code of another version needs a matching license server."
    )


# --- token verification ----------------------------------------------------


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
    advice = (
        "The token or renewal belongs to another server's activation. "
        "Activate this server with its own activation key."
    )
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
                f"({seen.isoformat()}) — correct the clock"
            )
        super().__init__(message)

    def details(self) -> dict[str, Any]:
        """The latest time seen."""
        return {} if self.seen is None else {"seen": self.seen.isoformat()}

    @classmethod
    def from_problem(cls, message: str, details: dict[str, Any]) -> Self:
        """Rebuild with the time the store had seen."""
        seen = _parse_moment(details.get("seen"))
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


# --- activation outcomes (issuer side, relayed to panels) -------------------


class InvalidActivationKeyError(LicenseError):
    """A well-formed key that opens no license (counted for rate limiting)."""

    code = "invalid-activation-key"
    advice = (
        "The key opens no license. Check it with the provider; repeated wrong keys from "
        "one address are rate limited."
    )
    default_message = "invalid activation key"
    http_status = 403


class LicenseNotFoundError(LicenseError):
    """No license with that id."""

    code = "license-not-found"
    advice = "No license has that id. Check the id."
    default_message = "no such license"
    http_status = 404


class LicenseRevokedError(LicenseError):
    """The license was revoked by the provider."""

    code = "license-revoked"
    advice = "The provider revoked this license. Contact the provider; retrying does not help."
    default_message = "license has been revoked by the provider"
    http_status = 403


class LicenseExpiredError(LicenseError):
    """The license is past its expiry date."""

    code = "license-expired"
    advice = "The license has expired. Renew the license with the provider."
    default_message = "license has expired"
    http_status = 403


class ActivationSupersededError(LicenseError):
    """The activation was replaced: the key was regenerated and the license freed or reused."""

    code = "activation-superseded"
    advice = (
        "The activation key was regenerated and this server's activation replaced. "
        "Activate again with the current key."
    )
    default_message = (
        "this server's activation was superseded — the activation key was regenerated; "
        "activate again with the current key"
    )
    http_status = 409


class ActivationNotFoundError(LicenseError):
    """A renewal names an activation the license never had."""

    code = "activation-not-found"
    advice = "The license never had this activation. Activate the server again."
    default_message = "no such activation for this license"
    http_status = 404


class ProductMismatchError(LicenseError):
    """The key or token belongs to another product."""

    code = "wrong-product"
    advice = "The key or license belongs to another product. Use the key issued for this product."
    default_message = "license is for another product"
    http_status = 403


class MachineIdRefusedError(LicenseError):
    """The license accepts only the server's own hardware identity, not a custom machine id."""

    code = "machine-id-refused"
    advice = (
        "Activate with the server's own hardware identity (no custom machine id), or ask "
        "the provider to allow custom machine ids for this license."
    )
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
    advice = (
        "The key is in use on another server. Ask the provider to regenerate the "
        "activation key (possible from regenerate_after), then activate with the new key."
    )
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
        return cls(_parse_date(details.get("regenerate_after")), message=message)


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
    advice = "The key was regenerated less than a month ago. Try again from allowed_from."
    retry = True
    http_status = 409

    def __init__(self, allowed_from: _dt.datetime | _dt.date, message: str | None = None) -> None:
        self.allowed_from = allowed_from
        shown = allowed_from.isoformat()
        if isinstance(allowed_from, _dt.datetime):
            from verifier.clock import format_utc  # here: verifier.clock imports this module

            # Rounded up: at the second shown, regeneration is allowed.
            ceiling = allowed_from + _dt.timedelta(microseconds=999_999)
            shown = format_utc(ceiling.replace(microsecond=0)) or shown
        super().__init__(
            message
            or "activation key was regenerated less than a month ago; "
            f"next regeneration possible from {shown}"
        )

    def details(self) -> dict[str, Any]:
        """Carry the date from which regeneration is possible."""
        return {"allowed_from": self.allowed_from.isoformat()}

    @classmethod
    def from_problem(cls, message: str, details: dict[str, Any]) -> Self:
        """Rebuild with the date the server sent.

        Raises:
            ValueError: the server sent no usable date.
        """
        allowed = _parse_moment(details.get("allowed_from"))
        if allowed is None:
            raise ValueError("regeneration-too-soon without a date")
        return cls(allowed, message=message)


class NoLicenseForAddressError(LicenseError):
    """Automatic activation found no license assigned to the caller's address."""

    code = "no-license-for-address"
    advice = (
        "No license is assigned to this server's address for the product. Activate "
        "manually with an activation key."
    )
    default_message = "no license is assigned to this server's address — activate manually"
    http_status = 404


class CallbackError(LicenseError):
    """The license server could not confirm the panel at the caller's address."""

    code = "callback-failed"
    advice = (
        "The license server could not fetch the challenge from the panel at the caller's "
        "address and callback port. Make the port reachable from the license server "
        "(firewall, NAT), then retry; or activate manually."
    )
    retry = True
    default_message = "the license server could not confirm this panel through its callback"
    http_status = 403


#: The ``retry_after`` member of every refusal that says when to try again.
_RETRY_AFTER_MEMBER: dict[str, Any] = {
    "type": "integer",
    "minimum": 0,
    "description": "seconds to wait before the next attempt (also the Retry-After header)",
}


def _retry_after(details: dict[str, Any]) -> int | None:
    """The ``retry_after`` a server sent, if it is a whole number of seconds ≥ 0."""
    wait = details.get("retry_after")
    return wait if type(wait) is int and wait >= 0 else None


class RateLimitedError(LicenseError):
    """Too many attempts from one client address: failed keys, or revocation-list requests."""

    code = "rate-limited"
    advice = (
        "Too many attempts from this address (failed activation keys, or requests for the "
        "revocation list). Wait retry_after seconds (also sent as Retry-After) before "
        "trying again."
    )
    retry = True
    members: ClassVar[dict[str, dict[str, Any]]] = {"retry_after": _RETRY_AFTER_MEMBER}
    default_message = "too many failed activation attempts — try again later"
    http_status = 429

    def __init__(self, message: str | None = None, retry_after: int | None = None) -> None:
        self.retry_after = retry_after
        super().__init__(message)

    def details(self) -> dict[str, Any]:
        """Carry the seconds to wait before the next attempt."""
        return {} if self.retry_after is None else {"retry_after": self.retry_after}

    @classmethod
    def from_problem(cls, message: str, details: dict[str, Any]) -> Self:
        """Rebuild with the wait the server sent (ignored unless a whole number ≥ 0)."""
        return cls(message, retry_after=_retry_after(details))


class ServerUnavailableError(LicenseError):
    """The license server could not be reached or answered nonsense."""

    code = "server-unavailable"
    advice = (
        "The license server failed or could not be reached. Retry later with backoff; "
        "quote the incident id to the provider if it persists."
    )
    retry = True
    default_message = "license server unavailable"
    # The license server answers it for a fault of its own (a bug), under an
    # incident id; a panel also raises it when no license server answers at all.
    http_status = 500


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


# --- refusals of the HTTP layer (the license server and the console) -----------


class NotFoundError(LicenseError):
    """No endpoint at that path (or no such problem page)."""

    code = "not-found"
    default_message = "no such resource"
    http_status = 404
    advice = "Check the URL against the OpenAPI document (/openapi.json)."


class MethodNotAllowedError(LicenseError):
    """The path exists but not for that method; the ``Allow`` header lists the methods."""

    code = "method-not-allowed"
    default_message = "method not allowed"
    http_status = 405
    advice = "Use one of the methods the Allow header lists."


class BodyTooLargeError(LicenseError):
    """A request body over the server's size limit, refused before it is read whole."""

    code = "body-too-large"
    default_message = "request body is too large"
    http_status = 413
    advice = (
        "Send a smaller body: a panel's requests, sent unchanged, are never this large; "
        "an admin API body stays under the console's limit (64 KiB by default)."
    )


class HeadersTooLargeError(LicenseError):
    """Request headers over the server's size limit."""

    code = "headers-too-large"
    default_message = "request headers are too large"
    http_status = 431
    advice = "Send fewer or shorter headers (cookies, proxies' additions)."


class HttpRefusalError(LicenseError):
    """Any other refusal of the HTTP layer, with the status it names."""

    code = "http-error"
    default_message = "the request was refused"
    advice = "Read the detail and the HTTP status; correct the request."


# --- the provider's own faults (the license server answers 503) -------------------
#
# Raised by the issuer and keytool, defined here because a panel may receive any
# of them from a license server and must rebuild the same class.


class LedgerError(LicenseError):
    """The ledger cannot be used."""

    code = "ledger-error"
    advice = (
        "The provider's ledger cannot be used right now. Retry later with backoff; quote "
        "the incident id to the provider if it persists."
    )
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
    advice = (
        "The provider's ledger database cannot be reached right now (a restart or a "
        "failover). Wait retry_after seconds (also sent as Retry-After), then retry."
    )
    members: ClassVar[dict[str, dict[str, Any]]] = {"retry_after": _RETRY_AFTER_MEMBER}
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
        return cls(message, retry_after=_retry_after(details))


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
    advice = (
        "The provider's signing keys cannot be used right now. Retry later; quote the "
        "incident id to the provider."
    )
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
    advice = (
        "The provider's signing key cannot be used right now. Retry later; quote the "
        "incident id to the provider."
    )
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


# --- the provider's console, admin API and commands --------------------------------
#
# Raised by the issuer and keytool, defined here so that a panel or any other
# client importing only this package rebuilds every code a licet server or
# command can give as its own class.


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
    """The credentials are valid but do not allow this (a read- or keys-scope token writing)."""

    code = "forbidden"
    default_message = "this token may only read; changes need a write-scope token"
    advice = "Use a write-scope token for changes; read- and keys-scope tokens may only GET."
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
    advice = (
        "The provider's revocation list has outgrown what panels accept; the panel keeps "
        "the list it has. Quote the incident id to the provider."
    )
    default_message = "the revocation list is larger than panels accept"
    http_status = 503  # the provider's list, not the client's request
