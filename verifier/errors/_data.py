"""Reading back the data an error carries in a problem document (shared by the families)."""

from __future__ import annotations

import datetime as _dt
from typing import Any

#: The ``retry_after`` member of every refusal that says when to try again.
RETRY_AFTER_MEMBER: dict[str, Any] = {
    "type": "integer",
    "minimum": 0,
    "description": "seconds to wait before the next attempt (also the Retry-After header)",
}


def retry_after(details: dict[str, Any]) -> int | None:
    """The ``retry_after`` a server sent, if it is a whole number of seconds ≥ 0."""
    wait = details.get("retry_after")
    return wait if type(wait) is int and wait >= 0 else None


def parse_date(value: object) -> _dt.date | None:
    """A date in ISO form (the first ten characters), or ``None``."""
    if not isinstance(value, str):
        return None
    try:
        return _dt.date.fromisoformat(value[:10])
    except ValueError:
        return None


def parse_moment(value: object) -> _dt.datetime | _dt.date | None:
    """An aware datetime or a date in ISO form, as the errors' ``details`` write them."""
    if not isinstance(value, str):
        return None
    try:
        moment = _dt.datetime.fromisoformat(value)
    except ValueError:
        return None
    if len(value) == 10:  # a bare date
        return moment.date()
    return moment if moment.tzinfo is not None else None
