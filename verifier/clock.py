"""Time in licet: aware UTC datetimes from an injectable clock.

Every component takes ``clock=`` (a callable returning an aware UTC datetime)
so tests can move time; nothing reads a time override from the environment.

Example:
    >>> utc_now().tzinfo is not None
    True
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Callable
from typing import TypeGuard

from verifier.errors import BadInputError

__all__ = ["Clock", "format_utc", "from_epoch", "is_epoch", "now_from", "utc_now"]

Clock = Callable[[], _dt.datetime]


def utc_now() -> _dt.datetime:
    """The real clock."""
    return _dt.datetime.now(_dt.UTC)


def now_from(clock: Clock) -> _dt.datetime:
    """Call ``clock`` and insist on an aware datetime, returned in UTC.

    Raises:
        BadInputError: the clock returned a naive datetime.
    """
    moment = clock()
    if moment.tzinfo is _dt.UTC:  # the common case, and the hot path of every check
        return moment
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise BadInputError("clock must return an aware datetime")
    return moment.astimezone(_dt.UTC)


def format_utc(moment: _dt.datetime | None) -> str | None:
    """How every command prints a time: ISO 8601 in UTC to the second (``2027-02-15T12:00:00Z``).

    ``None`` (no expiry, not activated) stays ``None``.
    """
    if moment is None:
        return None
    return moment.astimezone(_dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


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
