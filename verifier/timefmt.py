"""How licet writes and reads a time: UTC to the second, and JSON epoch seconds.

Standard library only, and importing nothing of licet: errors format their
times with it, and :mod:`verifier.clock` (which raises errors) re-exports it.

Example:
    >>> import datetime as dt
    >>> format_utc(dt.datetime(2027, 2, 15, 12, 0, tzinfo=dt.UTC))
    '2027-02-15T12:00:00Z'
    >>> last_day(dt.datetime(2028, 1, 1, tzinfo=dt.UTC))
    '2027-12-31'
    >>> is_epoch(True), from_epoch(0).year
    (False, 1970)
"""

from __future__ import annotations

import datetime as _dt
from typing import TypeGuard

__all__ = ["format_utc", "from_epoch", "is_epoch", "last_day"]


def format_utc(moment: _dt.datetime | None) -> str | None:
    """How every command prints a time: ISO 8601 in UTC to the second (``2027-02-15T12:00:00Z``).

    ``None`` (no expiry, not activated) stays ``None``.
    """
    if moment is None:
        return None
    return moment.astimezone(_dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def last_day(expires_at: _dt.datetime | None) -> str | None:
    """The last day (UTC, ``YYYY-MM-DD``) on which something ending at ``expires_at`` is valid.

    ``--expires 2027-12-31`` ends at the midnight after that day
    (``2028-01-01T00:00:00Z``): its last day is ``2027-12-31``. An end in the
    middle of a day (``--days 365``) makes that day the last one. ``None`` (no
    end) stays ``None``.
    """
    if expires_at is None:
        return None
    return (expires_at.astimezone(_dt.UTC) - _dt.timedelta(microseconds=1)).date().isoformat()


_MAX_EPOCH = 253402300799  # 9999-12-31T23:59:59Z, the last second datetime can hold


def is_epoch(value: object) -> TypeGuard[int]:
    """Whether a JSON value is epoch seconds licet accepts: a whole number from 1970 to 9999.

    ``bool`` is refused although Python counts it as an ``int``: a JSON ``true``
    must never pass as the second 1 of 1970.
    """
    return type(value) is int and 0 <= value <= _MAX_EPOCH


def from_epoch(value: object) -> _dt.datetime | None:
    """Return the aware datetime of a JSON epoch-seconds value, or ``None`` if it is not one."""
    if not is_epoch(value):
        return None
    return _dt.datetime.fromtimestamp(value, _dt.UTC)
