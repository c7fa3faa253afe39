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

from verifier.errors import BadInputError

__all__ = ["MAX_EPOCH", "Clock", "from_epoch", "now_from", "utc_now"]

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


MAX_EPOCH = 253402300799  # 9999-12-31T23:59:59Z, the last second datetime can hold


def from_epoch(value: object) -> _dt.datetime | None:
    """Return the aware datetime of a JSON epoch-seconds value, or ``None`` if it is not one.

    ``bool`` is refused although Python counts it as an ``int``: a JSON ``true``
    must never pass as the second 1 of 1970.
    """
    if type(value) is not int or not 0 <= value <= MAX_EPOCH:
        return None
    return _dt.datetime.fromtimestamp(value, _dt.UTC)
