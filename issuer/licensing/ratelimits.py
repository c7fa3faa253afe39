"""The provider's view of the rate limits: which clients failed lately, and forgiving them.

Example:
    >>> [r.bucket for r in iss.rate_limits.limited()]  # doctest: +SKIP
"""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass
from typing import Any

from issuer.addresses import canonical_ip, in_bucket
from issuer.ledger.api import LedgerBackend
from issuer.policy.ratelimit import RateLimit
from verifier.clock import Clock, format_utc, now_from

__all__ = ["RateLimited", "RateLimits"]


@dataclass(frozen=True)
class RateLimited:
    """A client (an IPv4 address or an IPv6 network) with recent failed attempts.

    Attributes:
        bucket: who is counted.
        failures: failed attempts inside the window.
        last_failure: the latest of them.
        blocked_until: while at its limit, when it may try again; else ``None``.
    """

    bucket: str
    failures: int
    last_failure: _dt.datetime
    blocked_until: _dt.datetime | None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready view (``issuer ratelimit list --json``)."""
        return {
            "bucket": self.bucket,
            "failures": self.failures,
            "last_failure": format_utc(self.last_failure),
            "blocked_until": format_utc(self.blocked_until),
        }


class RateLimits:
    """The failed attempts a ledger counts, judged by one rate limit.

    Args:
        ledger: the ledger.
        clock: time source.
        limit: the failures allowed per client and window.
    """

    def __init__(self, ledger: LedgerBackend, *, clock: Clock, limit: RateLimit) -> None:
        self.ledger = ledger
        self._clock = clock
        self._limit = limit

    def limited(self) -> list[RateLimited]:
        """Clients with failed attempts inside the window, blocked ones first."""
        now = now_from(self._clock)
        policy_ = self._limit
        found = []
        for bucket, times in self.ledger.failed_attempts(since=now - policy_.window).items():
            blocked = None
            if len(times) >= policy_.limit:
                # Free again once enough failures have left the window to be under the limit.
                oldest_counting = times[len(times) - policy_.limit]
                blocked = _dt.datetime.fromtimestamp(oldest_counting, _dt.UTC) + policy_.window
            last = _dt.datetime.fromtimestamp(times[-1], _dt.UTC)
            found.append(RateLimited(bucket, len(times), last, blocked))
        return sorted(found, key=lambda r: (r.blocked_until is None, r.bucket))

    def clear(self, address: str | None = None) -> list[str]:
        """Forget the failed attempts of ``address`` (of every client when ``None``).

        A customer who mistyped the key too often can try again at once.

        Returns:
            The buckets forgotten.

        Raises:
            BadInputError: ``address`` is not an IP address.
        """
        if address is None:
            return self.ledger.forget_attempts(lambda bucket: True)
        canonical_ip(address)  # refuse a typo before touching anything
        return self.ledger.forget_attempts(lambda bucket: in_bucket(address, bucket))
