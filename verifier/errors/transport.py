"""Refusals of the exchange itself: rate limits, an unreachable server, the HTTP layer."""

from __future__ import annotations

from typing import Any, ClassVar, Self

from verifier.errors._data import RETRY_AFTER_MEMBER, retry_after
from verifier.errors._registry import LicenseError

__all__ = [
    "BodyTooLargeError",
    "HeadersTooLargeError",
    "HttpRefusalError",
    "MethodNotAllowedError",
    "NotFoundError",
    "RateLimitedError",
    "ServerUnavailableError",
]


class RateLimitedError(LicenseError):
    """Too many attempts from one client address: failed keys, or revocation-list requests."""

    code = "rate-limited"
    retry = True
    members: ClassVar[dict[str, dict[str, Any]]] = {"retry_after": RETRY_AFTER_MEMBER}
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
        return cls(message, retry_after=retry_after(details))


class ServerUnavailableError(LicenseError):
    """The license server could not be reached or answered nonsense."""

    code = "server-unavailable"
    retry = True
    default_message = "license server unavailable"
    # The license server answers it for a fault of its own (a bug), under an
    # incident id; a panel also raises it when no license server answers at all.
    http_status = 500


class NotFoundError(LicenseError):
    """No endpoint at that path (or no such problem page)."""

    code = "not-found"
    default_message = "no such resource"
    http_status = 404


class MethodNotAllowedError(LicenseError):
    """The path exists but not for that method; the ``Allow`` header lists the methods."""

    code = "method-not-allowed"
    default_message = "method not allowed"
    http_status = 405


class BodyTooLargeError(LicenseError):
    """A request body over the server's size limit, refused before it is read whole."""

    code = "body-too-large"
    default_message = "request body is too large"
    http_status = 413


class HeadersTooLargeError(LicenseError):
    """Request headers over the server's size limit."""

    code = "headers-too-large"
    default_message = "request headers are too large"
    http_status = 431


class HttpRefusalError(LicenseError):
    """Any other refusal of the HTTP layer, with the status it names."""

    code = "http-error"
    default_message = "the request was refused"
