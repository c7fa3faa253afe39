"""The clock mark: how far this server's time has come, so that a clock set back stops the panel.

A panel's wall clock is the customer's to set. The mark is the latest time the
verifier has seen (the wall clock at checks, the signed ``iat`` of tokens),
carried forward between checks by the boot clock, which nobody can set back.
A wall clock more than the tolerance behind the mark is a clock set back.
Because the mark keeps counting while the wall clock is held back, many small
steps back add up against one tolerance instead of each passing on its own.

Within one boot the count goes on across restarts of the panel: the store
keeps the boot id and the boot clock's reading beside the mark. Across a
reboot the time the machine was off is unknown, so the mark counts on from
where it stood when it was saved, and only the plain rule holds (a wall clock
more than the tolerance behind the last mark saved).

The boot clock is counted at :data:`BOOT_RATE` of its speed: a machine whose
clock runs fast and is stepped back now and then (by up to 1 ms a second) is
never refused for it, and a clock held back gains at most that 0.1 %.

Arithmetic: the mark at boot reading ``b`` is ``base + BOOT_RATE * b``, where
``base`` is the largest ``seen - BOOT_RATE * b`` over every time seen. That
is ``mark = max(mark + BOOT_RATE * elapsed, seen)`` applied at every check,
without writing anything while the wall clock and the boot clock agree.

Example:
    >>> keeper = MarkKeeper(BootClock("boot-1", lambda: 100.0), tolerance=3600)
    >>> keeper.see(1_800_000_000.0)
    >>> keeper.check(1_800_000_000.0 - 600)  # ten minutes behind: tolerated
    True
    >>> keeper.check(1_800_000_000.0 - 7200)  # doctest: +IGNORE_EXCEPTION_DETAIL
    Traceback (most recent call last):
    verifier.errors.ClockRollbackError: the system clock is earlier than ...
"""

from __future__ import annotations

import datetime as _dt
import math
from dataclasses import dataclass
from typing import TypeGuard

from verifier.clock import BootClock, is_boot_id, is_epoch
from verifier.encoding import EncodingError, json_dumps_compact, json_loads_strict
from verifier.errors import ClockRollbackError

__all__ = ["BOOT_RATE", "SAVE_LAG", "ClockMark", "MarkKeeper"]

#: The share of boot-clock time the mark counts (forgives a fast clock stepped back).
BOOT_RATE = 0.999
#: How far (seconds) the saved mark may trail the one in memory before it is written again.
SAVE_LAG = 60.0
_MAX_EPOCH = 253402300799  # the last second a datetime holds (9999-12-31T23:59:59Z)
_MAX_BOOT_SECONDS = 1e10  # over 300 years of uptime: anything larger is damage
_MEMBERS = frozenset({"seen", "boot_id", "boot_seconds"})


@dataclass(frozen=True)
class ClockMark:
    """The clock mark as the token store keeps it.

    Attributes:
        seen: the latest time counted, in whole epoch seconds.
        boot_id: the boot it was counted in; ``None`` for a mark of a verifier
            older than boot counting, or of a system that names no boots.
        boot_seconds: the boot clock's reading at ``seen`` (``None`` without a boot id).
    """

    seen: int
    boot_id: str | None = None
    boot_seconds: float | None = None

    def to_text(self) -> str:
        """The file's content: a JSON object (``seen`` alone when no boot is named)."""
        if self.boot_id is None or self.boot_seconds is None:
            return json_dumps_compact({"seen": self.seen}).decode()
        members = {"seen": self.seen, "boot_id": self.boot_id, "boot_seconds": self.boot_seconds}
        return json_dumps_compact(members).decode()

    @classmethod
    def parse(cls, text: str | None) -> ClockMark | None:
        """Read a stored mark; ``None`` when there is none or it is damaged.

        Two forms are read: a JSON object as :meth:`to_text` writes it, and
        the plain number of epoch seconds older verifiers wrote (ASCII digits
        only: ``"²"`` is a digit to Python, not a number). Anything else —
        garbage, other JSON types, huge or negative numbers, a boot id with
        odd characters — counts as no mark and never raises.
        """
        if text is None:
            return None
        text = text.strip()
        if text.isascii() and text.isdigit():
            return cls(int(text)) if len(text) <= 12 and is_epoch(int(text)) else None
        try:
            value = json_loads_strict(text)
        except EncodingError:
            return None
        if not isinstance(value, dict) or not value.keys() <= _MEMBERS or "seen" not in value:
            return None
        seen, boot_id, reading = value["seen"], value.get("boot_id"), value.get("boot_seconds")
        if not is_epoch(seen) or (boot_id is None) != (reading is None):
            return None
        if boot_id is None:
            return cls(seen)
        if not is_boot_id(boot_id) or not _is_boot_reading(reading):
            return None
        return cls(seen, boot_id, float(reading))


def _is_boot_reading(value: object) -> TypeGuard[int | float]:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False  # a JSON true is not a reading of 1 second
    return 0 <= value <= _MAX_BOOT_SECONDS  # false for NaN and infinity, safe for huge ints


class MarkKeeper:
    """The clock mark of one running verifier; reads the boot clock, does no file I/O.

    The verifier feeds it what the store holds (:meth:`adopt`) and writes what
    :meth:`pending` returns, at most once per interval (when :meth:`check` says so).

    Args:
        boot: the boot clock.
        tolerance: seconds the wall clock may fall behind the mark.
        interval: seconds the mark moves on between the verifier's visits to its
            store (0: a visit at every check).
    """

    __slots__ = (
        "_base",
        "_boot_id",
        "_floor",
        "_interval",
        "_next_visit",
        "_read",
        "_saved_base",
        "_saved_rate",
        "_tolerance",
    )

    def __init__(self, boot: BootClock, tolerance: float, interval: float = 0.0) -> None:
        self._boot_id = boot.boot_id
        self._read = boot.seconds
        self._tolerance = tolerance
        self._interval = interval
        self._base = -math.inf  # the mark is base + BOOT_RATE * reading; none yet
        self._floor = -math.inf  # wall - BOOT_RATE * reading below this: set back
        self._next_visit = -math.inf  # the first check visits the store
        # What the store holds, as seen from this boot: saved_base + saved_rate * reading
        # (rate 0 for a mark that cannot count on, i.e. from another or an unnamed boot).
        self._saved_base = -math.inf
        self._saved_rate = 0.0

    @property
    def mark(self) -> float | None:
        """The mark now (epoch seconds), or ``None`` before anything was seen."""
        if self._base == -math.inf:
            return None
        return min(self._base + BOOT_RATE * self._read(), _MAX_EPOCH)

    def check(self, wall: float) -> bool:
        """Count the mark on to ``wall``, or refuse it as set back; say whether a visit is due.

        This runs at every check of a running panel, so it is kept to one
        read of the boot clock and a few comparisons.

        Args:
            wall: the wall clock (epoch seconds).

        Returns:
            Whether the verifier should visit its store now (the mark moved an
            interval on since the last :meth:`visit`; at once at the first check).

        Raises:
            ClockRollbackError: ``wall`` is more than the tolerance behind the mark.
        """
        reading = self._read()
        base = wall - BOOT_RATE * reading
        if base >= self._base:  # the usual case: the wall clock leads, it is the mark
            self._base = base
            self._floor = base - self._tolerance
            return wall >= self._next_visit
        if base < self._floor:
            seen = min(self._base + BOOT_RATE * reading, _MAX_EPOCH)
            raise ClockRollbackError(_dt.datetime.fromtimestamp(seen, _dt.UTC))
        return self._base + BOOT_RATE * reading >= self._next_visit

    def see(self, seen: float) -> None:
        """Raise the mark to ``seen`` (a signed token's ``iat``) if it is later."""
        self._raise(seen - BOOT_RATE * self._read())

    def visit(self) -> None:
        """Schedule the next visit: when the mark has moved one interval on from here.

        Measured on the mark, not the wall clock, so setting the clock back
        never postpones a visit.
        """
        self._next_visit = self._base + BOOT_RATE * self._read() + self._interval

    def adopt(self, stored: ClockMark | None) -> None:
        """Take in the mark the store holds (saved earlier, or by another process).

        A mark of this boot counts on by the boot clock since it was saved; a
        mark of another boot, or of none named, counts only from now. After
        this, :meth:`pending` compares with exactly what the store holds.
        """
        reading = self._read()
        self._saved_base, self._saved_rate = -math.inf, 0.0
        if stored is None:
            return
        if (
            stored.boot_id is not None
            and stored.boot_id == self._boot_id
            and stored.boot_seconds is not None
            and stored.boot_seconds <= reading  # a reading later than now is not from this boot
        ):
            base = stored.seen - BOOT_RATE * stored.boot_seconds
            self._raise(base)
            self._saved_base, self._saved_rate = base, BOOT_RATE
            return
        self._raise(stored.seen - BOOT_RATE * reading)
        if stored.boot_id is None and self._boot_id is None:
            # This system names no boots: a plain time is the best the store can hold.
            self._saved_base = float(stored.seen)

    def pending(self) -> ClockMark | None:
        """The mark to save, when the store's trails this one by :data:`SAVE_LAG` or more."""
        if self._base == -math.inf:
            return None
        reading = self._read()
        ahead = self._base + BOOT_RATE * reading - (self._saved_base + self._saved_rate * reading)
        if ahead < SAVE_LAG:
            return None
        # Rounded, not floored: base + rate * reading may land a hair under a whole second.
        seen = min(round(self._base + BOOT_RATE * reading), _MAX_EPOCH)
        if self._boot_id is None:
            return ClockMark(seen)
        return ClockMark(seen, self._boot_id, reading)

    def saved(self, mark: ClockMark) -> None:
        """Record that the store now holds ``mark`` (as :meth:`pending` returned it)."""
        if mark.boot_id is not None and mark.boot_seconds is not None:
            self._saved_base, self._saved_rate = (
                mark.seen - BOOT_RATE * mark.boot_seconds,
                BOOT_RATE,
            )
        else:
            self._saved_base, self._saved_rate = float(mark.seen), 0.0

    def _raise(self, base: float) -> None:
        if base > self._base:
            self._base = base
            self._floor = base - self._tolerance
