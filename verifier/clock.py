"""Time in licet: aware UTC datetimes from an injectable clock.

Every component takes ``clock=`` (a callable returning an aware UTC datetime)
so tests can move time; nothing reads a time override from the environment.
The panel's verifier also takes a :class:`BootClock` (seconds since boot, and
which boot): the wall clock can be set back, the boot clock cannot. How a time
is written (:func:`format_utc`, :func:`is_epoch`, :func:`from_epoch`) lives in
:mod:`verifier.timefmt` and is importable from here as well.

Example:
    >>> utc_now().tzinfo is not None
    True
    >>> system_boot_clock().seconds() >= 0
    True
"""

from __future__ import annotations

import datetime as _dt
import functools
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeGuard

from verifier.errors import BadInputError
from verifier.timefmt import format_utc, from_epoch, is_epoch, last_day

__all__ = [
    "BootClock",
    "Clock",
    "format_utc",
    "from_epoch",
    "is_boot_id",
    "is_epoch",
    "last_day",
    "now_from",
    "system_boot_clock",
    "utc_now",
]

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


@dataclass(frozen=True)
class BootClock:
    """Seconds since this machine booted, and which boot this is.

    Nobody can set this clock back: it only restarts at a reboot, which the
    boot id tells apart. Tests pass their own to simulate time and reboots.

    Attributes:
        boot_id: names this boot (Linux: ``/proc/sys/kernel/random/boot_id``);
            ``None`` when the system names none, so readings are never
            compared across processes.
        seconds: reads the clock (Linux: ``CLOCK_BOOTTIME``, which counts
            suspend too); never decreases within one boot.
    """

    boot_id: str | None
    seconds: Callable[[], float]


_BOOT_ID = re.compile(r"[0-9A-Za-z._:-]{1,64}")
_BOOT_ID_FILE = "/proc/sys/kernel/random/boot_id"


def is_boot_id(value: object) -> TypeGuard[str]:
    """Whether ``value`` looks like a boot id: 1-64 letters, digits, ``.``, ``_``, ``:``, ``-``."""
    return isinstance(value, str) and _BOOT_ID.fullmatch(value) is not None


@functools.cache
def system_boot_clock() -> BootClock:
    """The boot clock of the machine this runs on (found once: a process never outlives its boot).

    On Linux, ``CLOCK_BOOTTIME`` and the kernel's boot id. Elsewhere, the
    monotonic clock and no boot id.
    """
    boottime = getattr(time, "CLOCK_BOOTTIME", None)
    if boottime is None:
        return BootClock(None, time.monotonic)
    try:
        with open(_BOOT_ID_FILE, encoding="ascii") as handle:
            boot_id: str | None = handle.read(128).strip()
    except (OSError, ValueError):  # no /proc (a sandbox), or not ASCII
        boot_id = None
    return BootClock(
        boot_id if is_boot_id(boot_id) else None,
        functools.partial(time.clock_gettime, boottime),
    )
