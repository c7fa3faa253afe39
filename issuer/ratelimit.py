"""Rate limiting of failed activation-key attempts, shared by every server worker.

The failures of the last window are kept per client address in one small
JSON file beside the ledger, under its own lock, so ``--workers N`` does not
multiply the allowance by N.

Example:
    >>> limiter = FailureLimiter(Path("ledger/ratelimit.json"))  # doctest: +SKIP
    >>> limiter.check("203.0.113.7")  # raises RateLimitedError over the limit  # doctest: +SKIP
"""

from __future__ import annotations

import datetime as _dt
import json
from pathlib import Path

from verifier.clock import Clock, now_from, utc_now
from verifier.errors import RateLimitedError
from verifier.fileio import LockTimeout, atomic_write, file_lock

__all__ = ["FailureLimiter"]

_MAX_ADDRESSES = 10_000


class FailureLimiter:
    """At most ``limit`` failed key attempts per address in a sliding ``window``.

    Args:
        path: the state file (created on first failure).
        limit: failures allowed per window (default 10).
        window: the window (default 15 minutes).
        clock: time source.
    """

    def __init__(
        self,
        path: Path,
        *,
        limit: int = 10,
        window: _dt.timedelta = _dt.timedelta(minutes=15),
        clock: Clock = utc_now,
    ) -> None:
        self.path = path
        self.limit = limit
        self.window = window
        self._clock = clock

    def check(self, address: str) -> None:
        """Refuse an address that used up its failures.

        Raises:
            RateLimitedError: too many recent failures from ``address``.
        """
        now = now_from(self._clock).timestamp()
        recent = self._load(now).get(address, [])
        if len(recent) >= self.limit:
            retry = int(recent[0] + self.window.total_seconds() - now) + 1
            raise RateLimitedError(
                f"too many failed activation attempts from {address} — try again in {retry} s"
            )

    def record_failure(self, address: str) -> None:
        """Count one failed attempt from ``address``."""
        now = now_from(self._clock).timestamp()
        try:
            with file_lock(self.path.with_suffix(".lock"), 5.0):
                state = self._load(now)
                state.setdefault(address, []).append(now)
                if len(state) > _MAX_ADDRESSES:  # a flood of addresses: keep the busiest
                    busiest = sorted(state.items(), key=lambda kv: -len(kv[1]))[:_MAX_ADDRESSES]
                    state = dict(busiest)
                atomic_write(self.path, json.dumps(state).encode())
        except LockTimeout:
            return  # counting is best effort; the refusal itself already happened

    def _load(self, now: float) -> dict[str, list[float]]:
        try:
            raw = json.loads(self.path.read_bytes())
        except (OSError, ValueError):
            return {}  # no failures yet, or a damaged file: start counting afresh
        horizon = now - self.window.total_seconds()
        state: dict[str, list[float]] = {}
        if isinstance(raw, dict):
            for address, stamps in raw.items():
                if isinstance(stamps, list):
                    kept = [t for t in stamps if isinstance(t, int | float) and t > horizon]
                    if kept:
                        state[str(address)] = kept
        return state
