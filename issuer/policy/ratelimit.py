"""Rate limiting of anonymous clients: failed attempts (wrong keys, log-ins), plain requests.

The policy — how many failures per window, how IPv6 clients are grouped,
which refusals count — lives here, and so does the counting
(:func:`counting`), which runs inside the very ledger transaction that looks
the key up: the check, the look-up and the count of a failure are one step
under the ledger's lock, so concurrent guesses from any worker or process
can never test more keys than the limit, and successful attempts, however
many run at once, never count. When a failure cannot be recorded the refusal
becomes a ledger error (503): a guess is never answered uncounted.

The ledger only keeps the counts; both backends give the same guarantee
because the one rule here drives them both.

Console log-ins are counted the other way round (:class:`LoginAttempt`): a
log-in is counted as a failure *before* its password is checked, in one
locked ledger step that first refuses it if a limit is reached, and the
count is taken back when the password was right. Checking a password
(Argon2) takes long and needs no ledger, so it runs outside the lock — yet
however many log-ins race, no more passwords are checked than the limit.

Requests that are not guesses but cost the server work — fetching the
revocation list — are limited by :class:`RequestRate`, a token bucket per
client kept in the process's memory: counting them in the ledger would take
the very lock the limit is there to spare.

Example:
    >>> policy = RateLimit(limit=10)
    >>> attempt = policy.attempt("2001:db8::7", now=now)  # doctest: +SKIP
    >>> attempt.bucket  # doctest: +SKIP
    '2001:db8::/64'
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from issuer.addresses import rate_bucket
from verifier.errors import BadInputError, InvalidActivationKeyError, LicenseError, RateLimitedError

__all__ = [
    "MAX_LOGIN_SUBJECTS",
    "Attempt",
    "FailureCounts",
    "LoginAttempt",
    "RateLimit",
    "RequestRate",
    "counting",
]

#: Log-in counters a ledger keeps at most (the most recently failing ones): a flood
#: of made-up names from many addresses cannot grow the ledger without bound.
MAX_LOGIN_SUBJECTS = 10_000


@dataclass(frozen=True)
class Attempt:
    """One attempt by an anonymous client, as the ledger counts it.

    Attributes:
        bucket: who is counted: an IPv4 address, or an IPv6 network.
        address: the client's address, for messages.
        now: when the attempt is made.
        window: failures older than this are forgotten.
        limit: failures allowed per window; at the limit, attempts are refused.
        counted: refusals that count as failures (by default a wrong key).
    """

    bucket: str
    address: str
    now: _dt.datetime
    window: _dt.timedelta
    limit: int
    counted: tuple[type[LicenseError], ...] = (InvalidActivationKeyError,)

    @property
    def horizon(self) -> float:
        """Failures at or before this moment (epoch seconds) have left the window."""
        return (self.now - self.window).timestamp()

    def judge(self, recent: Sequence[float]) -> None:
        """Refuse the attempt when the client's ``recent`` failures (oldest first) reach the limit.

        Raises:
            RateLimitedError: at the limit, until the oldest failure leaves the window.
        """
        if len(recent) >= self.limit:
            oldest = _dt.datetime.fromtimestamp(recent[0], _dt.UTC)
            raise self.refusal(oldest + self.window)

    def refusal(self, retry_at: _dt.datetime) -> RateLimitedError:
        """The refusal for a client at its limit, until ``retry_at``."""
        wait = max(1, math.ceil((retry_at - self.now).total_seconds()))
        return RateLimitedError(
            f"too many failed attempts from {self.address} — try again in {wait} s",
            retry_after=wait,
        )


class FailureCounts(Protocol):
    """What :func:`counting` needs of a ledger transaction (its rate-limit verbs)."""

    def failures(self, bucket: str, *, since: float, lock: bool) -> list[float]:
        """The bucket's failure times after ``since``, oldest first (``lock``: wait for others)."""

    def record_failure(self, bucket: str, stamps: list[float], *, forget_before: float) -> None:
        """Keep ``stamps`` as the bucket's failures; drop buckets idle since ``forget_before``."""

    def commit(self) -> None:
        """Make the count durable before the refusal that follows."""


@contextlib.contextmanager
def counting(tx: FailureCounts, attempt: Attempt | None) -> Iterator[None]:
    """Run a look-up as ``attempt``: refused at the limit, and a counted refusal is counted.

    On entry the client's failures are read without waiting for other nodes
    (a success is decided against the count as it is now, so clients behind
    one address never queue behind each other) and judged. When a refusal
    that ``attempt`` counts leaves the block, the failures are read again
    under the bucket's lock and judged again, one more is recorded and
    committed, and the refusal goes on: however many attempts race, at most
    ``limit`` failures are ever answered per window. Without an attempt
    (the provider's own commands) nothing is counted.

    Raises:
        RateLimitedError: the client is at its limit (the block does not run,
            or its refusal is not answered).
    """
    if attempt is None:
        yield
        return
    attempt.judge(tx.failures(attempt.bucket, since=attempt.horizon, lock=False))
    try:
        yield
    except attempt.counted:
        recent = tx.failures(attempt.bucket, since=attempt.horizon, lock=True)
        attempt.judge(recent)
        stamps = [*recent, attempt.now.timestamp()]
        tx.record_failure(attempt.bucket, stamps, forget_before=attempt.horizon)
        tx.commit()
        raise


@dataclass(frozen=True)
class RateLimit:
    """How many failed attempts a client gets.

    Attributes:
        limit: failed attempts allowed per window and client (default 10; 1 to 1,000,000).
        window: the sliding window (default 15 minutes; 1 second to 1 day).
        ipv6_prefix: IPv6 clients are counted per network of this prefix
            length (default 64: one subscriber's network; 32 to 128).

    Raises:
        BadInputError: a value out of bounds.
    """

    limit: int = 10
    window: _dt.timedelta = _dt.timedelta(minutes=15)
    ipv6_prefix: int = 64

    def __post_init__(self) -> None:
        if type(self.limit) is not int or not 1 <= self.limit <= 1_000_000:
            raise BadInputError("the failure limit must be a whole number from 1 to 1000000")
        if not _dt.timedelta(seconds=1) <= self.window <= _dt.timedelta(days=1):
            raise BadInputError("the rate-limit window must be between 1 second and 1 day")
        if type(self.ipv6_prefix) is not int or not 32 <= self.ipv6_prefix <= 128:
            raise BadInputError("the IPv6 rate-limit prefix must be from 32 to 128")

    def attempt(
        self,
        address: str,
        *,
        now: _dt.datetime,
        counted: tuple[type[LicenseError], ...] = (InvalidActivationKeyError,),
    ) -> Attempt:
        """The attempt of a client at ``address`` at ``now``, for the ledger to count."""
        return Attempt(
            bucket=rate_bucket(address, ipv6_prefix=self.ipv6_prefix),
            address=address or "an unknown address",
            now=now,
            window=self.window,
            limit=self.limit,
            counted=counted,
        )


@dataclass(frozen=True)
class LoginAttempt:
    """One console log-in, counted by the ledger before its password is checked.

    Two counters are kept: failures of this user name from this address (a
    low limit: guessing one user's password) and failures from this address
    under any name (a much higher one: guessing names). Failures of one name
    from other addresses never refuse this one, so nobody can lock a user out
    from elsewhere, and made-up names from a shared address (a NAT, a proxy)
    refuse a right password only once the address's much higher limit is reached.

    Attributes:
        user: the name tried, as counted (names no account can have count as one).
        bucket: who is counted: an IPv4 address, or an IPv6 network.
        now: when the log-in is made; its provisional failure carries this time.
        window: failures older than this are forgotten.
        user_limit: failures allowed per name and address in the window.
        address_limit: failures allowed per address, whatever the names, in the window.
        max_subjects: counters the ledger keeps at most (the most recent ones).
    """

    user: str
    bucket: str
    now: _dt.datetime
    window: _dt.timedelta
    user_limit: int
    address_limit: int
    max_subjects: int = MAX_LOGIN_SUBJECTS

    @property
    def pair(self) -> str:
        """The counter of this name from this address (a name holds no space)."""
        return f"user:{self.user} from {self.bucket}"

    @property
    def source(self) -> str:
        """The counter of every name from this address."""
        return f"address:{self.bucket}"

    @property
    def subjects(self) -> tuple[str, str]:
        """Both counters, in the one order every ledger locks them in."""
        first, second = sorted((self.pair, self.source))
        return first, second

    @property
    def horizon(self) -> _dt.datetime:
        """Failures at or before this time are forgotten."""
        return self.now - self.window

    def check(self, recent: Mapping[str, Sequence[_dt.datetime]]) -> None:
        """Refuse the log-in if either counter is at its limit.

        Args:
            recent: each subject's failures inside the window, oldest first.

        Raises:
            RateLimitedError: a limit is reached; ``retry_after`` is when it is not.
        """
        refusals = []
        for subject, limit, words in (
            (self.pair, self.user_limit, "for this user name from this address"),
            (self.source, self.address_limit, "from this address"),
        ):
            times = sorted(recent.get(subject, ()))
            if len(times) >= limit:
                # Free again once enough failures have left the window to be under the limit.
                retry_at = times[len(times) - limit] + self.window
                refusals.append((retry_at, words))
        if refusals:
            retry_at, words = max(refusals)
            wait = max(1, math.ceil((retry_at - self.now).total_seconds()))
            raise RateLimitedError(
                f"too many failed logins {words} — try again in {_in_words(wait)}",
                retry_after=wait,
            )


def _in_words(seconds: int) -> str:
    if seconds < 60:
        return f"{seconds} s"
    minutes = math.ceil(seconds / 60)
    return "1 minute" if minutes == 1 else f"{minutes} minutes"


class RequestRate:
    """A token bucket per client, in this process: ``per_minute`` requests, and as many at once.

    A client is an IPv4 address or an IPv6 network (as for failed attempts).
    Each worker process keeps its own buckets, so N workers allow N times the
    rate; that bounds the work, which is all this limit is for. At most
    ``max_clients`` buckets are kept: the least recently seen go first (a
    client forgotten starts with a full bucket, as after a quiet minute).

    Args:
        per_minute: requests allowed per client and minute (1 to 100,000), all
            of them at once after a quiet minute.
        what: the requests, for the refusal's message.
        ipv6_prefix: IPv6 clients share one bucket per network of this prefix length.
        clock: monotonic seconds.
        max_clients: buckets kept at most.

    Raises:
        BadInputError: a rate out of bounds.
    """

    def __init__(
        self,
        per_minute: int,
        *,
        what: str,
        ipv6_prefix: int = 64,
        clock: Callable[[], float] = time.monotonic,
        max_clients: int = 10_000,
    ) -> None:
        if type(per_minute) is not int or not 1 <= per_minute <= 100_000:
            raise BadInputError("the request rate must be a whole number from 1 to 100000 a minute")
        self._burst = float(per_minute)
        self._refill = per_minute / 60.0  # tokens per second
        self._what = what
        self._ipv6_prefix = ipv6_prefix
        self._clock = clock
        self._max_clients = max_clients
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()  # tokens, at
        self._lock = threading.Lock()

    def take(self, address: str) -> None:
        """Count one request by the client at ``address``.

        Raises:
            RateLimitedError: its bucket is empty (``retry_after``: until one request is allowed).
        """
        bucket = rate_bucket(address, ipv6_prefix=self._ipv6_prefix)
        now = self._clock()
        with self._lock:
            tokens, at = self._buckets.pop(bucket, (self._burst, now))
            tokens = min(self._burst, tokens + (now - at) * self._refill)
            if tokens < 1:
                self._buckets[bucket] = (tokens, now)
                wait = max(1, math.ceil((1 - tokens) / self._refill))
                raise RateLimitedError(
                    f"too many {self._what} from {address or 'an unknown address'} — "
                    f"try again in {wait} s",
                    retry_after=wait,
                )
            self._buckets[bucket] = (tokens - 1, now)
            while len(self._buckets) > self._max_clients:
                self._buckets.popitem(last=False)
