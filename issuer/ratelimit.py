"""Rate limiting of failed attempts (wrong activation keys), over the ledger.

The policy — how many failures per window, how IPv6 clients are grouped —
lives here; the counting is a ledger operation (:meth:`Ledger.take_attempt`),
so every server worker, every process and any future ledger backend share
one count, checked and counted in one atomic step.

An attempt is counted *before* it is tried and forgiven afterwards unless it
failed in a counted way. So concurrent guesses can never test more keys than
the limit, and when the count cannot be written the attempt is refused
(fail closed) instead of being tried uncounted.

Example:
    >>> with issuer.attempt("203.0.113.7"):  # doctest: +SKIP
    ...     issuer.redeem(request, method="online")  # a wrong key stays counted
"""

from __future__ import annotations

import contextlib
import datetime as _dt
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol

from issuer.addresses import rate_bucket
from verifier.clock import Clock, now_from
from verifier.errors import BadInputError, InvalidActivationKeyError, LicenseError, RateLimitedError

__all__ = ["AttemptLedger", "RateLimit", "attempt"]


@dataclass(frozen=True)
class RateLimit:
    """How many failed attempts a client gets.

    Attributes:
        limit: failed attempts allowed per window and client (default 10; 1 to 10,000).
        window: the sliding window (default 15 minutes; 1 second to 1 day).
        ipv6_prefix: IPv6 clients are counted per network of this prefix
            length (default 64: one subscriber's network; 32 to 128).
    """

    limit: int = 10
    window: _dt.timedelta = _dt.timedelta(minutes=15)
    ipv6_prefix: int = 64

    def __post_init__(self) -> None:
        if type(self.limit) is not int or not 1 <= self.limit <= 10_000:
            raise BadInputError("the failure limit must be a whole number from 1 to 10000")
        if not _dt.timedelta(seconds=1) <= self.window <= _dt.timedelta(days=1):
            raise BadInputError("the rate-limit window must be between 1 second and 1 day")
        if type(self.ipv6_prefix) is not int or not 32 <= self.ipv6_prefix <= 128:
            raise BadInputError("the IPv6 rate-limit prefix must be from 32 to 128")


class AttemptLedger(Protocol):
    """What the rate limiter needs from a ledger (every backend provides these)."""

    def take_attempt(
        self, bucket: str, *, now: _dt.datetime, window: _dt.timedelta, limit: int
    ) -> _dt.datetime | None:
        """Check and count one attempt; the retry time when over the limit."""

    def forgive_attempt(self, bucket: str, *, at: _dt.datetime) -> None:
        """Remove an attempt counted at ``at``."""


@contextlib.contextmanager
def attempt(
    ledger: AttemptLedger,
    address: str,
    policy: RateLimit,
    clock: Clock,
    *,
    counted: tuple[type[LicenseError], ...] = (InvalidActivationKeyError,),
) -> Iterator[None]:
    """Run one attempt from ``address`` under the limit.

    The attempt is counted on entry; it stays counted if the body raises one
    of ``counted`` (or anything unexpected), and is forgiven otherwise.

    Raises:
        RateLimitedError: ``address`` used up its failures (nothing is tried).
        LedgerError: the count cannot be recorded (nothing is tried).
    """
    bucket = rate_bucket(address, ipv6_prefix=policy.ipv6_prefix)
    now = now_from(clock)
    retry_at = ledger.take_attempt(bucket, now=now, window=policy.window, limit=policy.limit)
    if retry_at is not None:
        wait = max(1, int((retry_at - now).total_seconds()) + 1)
        raise RateLimitedError(
            f"too many failed activation attempts from {address} — try again in {wait} s"
        )
    try:
        yield
    except counted:
        raise
    except LicenseError:
        _forgive(ledger, bucket, now)
        raise
    else:
        _forgive(ledger, bucket, now)


def _forgive(ledger: AttemptLedger, bucket: str, at: _dt.datetime) -> None:
    # Failing to forgive leaves the attempt counted: the safe side of the error.
    with contextlib.suppress(LicenseError, OSError):
        ledger.forgive_attempt(bucket, at=at)
