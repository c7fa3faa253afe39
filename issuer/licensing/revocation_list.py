"""The provider's signed revocation list: bounded by what panels accept, signed once per serial.

A panel refuses a list larger than :data:`verifier.revocations.MAX_REVOCATIONS_BYTES`
and keeps the one it has, so a list past that size would stop nothing while
everything looked fine. The issuer therefore measures every list it signs
against that same limit: over it, the list is not given out
(:class:`~verifier.errors.RevocationListTooLargeError`, naming the count and
what to do); from three quarters of it, :attr:`SignedRevocations.warning`
says so, early enough to act.

Entries are never dropped to make room. An entry names a revoked license or a
superseded activation and leaves the list once the last token it stops has
expired (the ledger records that moment); for a license without a lease that
is the license's expiry, up to ten years away. Dropping it sooner by a
maximum age would let a superseded server run again, so the only safe way to
keep the list short is leases.

The list is signed from the ledger's entries under its lock, which is costly
at a hundred thousand entries. :class:`RevocationListCache` keeps the last
list signed, keyed by the ledger's revocation serial (read without the lock),
the UTC day, the freshness and the signing key, so an unchanged list is
answered from memory and a rotated key re-signs it.

Example:
    >>> signed = iss.signed_revocations()  # doctest: +SKIP
    >>> signed.warning  # None well below the limit  # doctest: +SKIP
    >>> signed.text  # raises RevocationListTooLargeError over it  # doctest: +SKIP
"""

from __future__ import annotations

import datetime as _dt
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import cached_property

from issuer.ledger.api import LedgerBackend
from issuer.licensing.minting import Minter
from issuer.records import RevocationEntry
from keytool.signing import TokenSigner
from verifier.clock import Clock, now_from
from verifier.errors import BadInputError, RevocationListTooLargeError
from verifier.revocations import (
    MAX_REVOCATIONS_BYTES,
    REVOCATIONS_TYPE,
    build_revocation_claims,
    revocations_etag,
)

__all__ = [
    "MAX_REVOCATIONS_BYTES",
    "WARN_FRACTION",
    "RevocationListCache",
    "RevocationLists",
    "SignedRevocations",
    "sign_revocations",
]

#: From this share of the limit on, a signed list carries a warning.
WARN_FRACTION = 0.75
_REFUSED = "so it is not given out and panels keep the list they have"
_NEAR = "and at the limit no new list is given out: panels would keep the list they have"
_ADVICE = (
    "entries leave the list only when the last token they stop expires (without a lease: "
    "at the license's expiry, up to ten years) — give licenses leases "
    "(issuer license set ID --lease-days N) so that new entries leave within a lease"
)


@dataclass(frozen=True)
class SignedRevocations:
    """A revocation list as signed, with what it weighs against the panels' limit.

    Attributes:
        serial: the ledger's revocation serial the list was signed at.
        entries: ids in the list (revoked licenses and superseded activations).
        size: bytes as written to a file (the JWS and its newline).
        limit: the most bytes the issuer gives out (at most what panels accept).
    """

    serial: int
    entries: int
    size: int
    limit: int
    _text: str = field(default="", repr=False)  # empty when the list is too large

    @property
    def fits(self) -> bool:
        """Whether panels accept the list."""
        return self.size <= self.limit

    @property
    def text(self) -> str:
        """The signed list (the bare compact JWS).

        Raises:
            RevocationListTooLargeError: the list is larger than panels accept.
        """
        if not self.fits:
            raise RevocationListTooLargeError(self._weight("over", _REFUSED))
        return self._text

    @cached_property
    def etag(self) -> str:
        """The HTTP entity tag of :attr:`text`, hashed once per list, not per request.

        Raises:
            RevocationListTooLargeError: the list is larger than panels accept.
        """
        return revocations_etag(self.text)

    @property
    def warning(self) -> str | None:
        """What the provider should know about the list's size; ``None`` well below the limit."""
        if not self.fits:
            return self._weight("over", _REFUSED)
        if self.size < self.limit * WARN_FRACTION:
            return None
        share = self.size * 100 // self.limit
        return self._weight(f"{share}% of", _NEAR)

    def _weight(self, against: str, outcome: str) -> str:
        return (
            f"the revocation list (serial {self.serial}) has {self.entries:,} entries, "
            f"{self.size:,} bytes signed — {against} the {self.limit:,} bytes panels accept, "
            f"{outcome}; {_ADVICE}"
        )


def sign_revocations(
    signer: TokenSigner,
    *,
    issuer: str,
    serial: int,
    entries: Iterable[RevocationEntry],
    now: _dt.datetime,
    fresh: _dt.timedelta,
    limit: int,
) -> SignedRevocations:
    """Sign the entries still in force at the start of ``now``'s UTC day, and weigh the list.

    Args:
        signer: the active signing key.
        issuer: the provider (``iss``).
        serial: the ledger's revocation serial the entries were read at.
        entries: the ledger's entries (those already harmless are left out).
        now: the signing time (``iat``).
        fresh: how long the list stays fresh (``exp`` = ``now`` + ``fresh``).
        limit: the most bytes given out.
    """
    day = now.replace(hour=0, minute=0, second=0, microsecond=0)
    live = [e for e in entries if e.until > day]
    claims = build_revocation_claims(
        issuer=issuer,
        serial=serial,
        issued_at=now,
        expires_at=now + fresh,
        licenses=[e.ident for e in live if e.kind == RevocationEntry.LICENSE],
        activations=[e.ident for e in live if e.kind == RevocationEntry.ACTIVATION],
    )
    text = signer.sign(claims, typ=REVOCATIONS_TYPE)
    size = len(text) + 1  # a file or a download carries it with a newline
    count = sum(len(ids) for ids in claims["revoked"].values())
    return SignedRevocations(serial, count, size, limit, text if size <= limit else "")


class RevocationListCache:
    """The last list signed, shared by an issuer and the per-request copies it makes.

    Holding it in an object of its own (not in an attribute of the issuer)
    is what lets the copies ``acting_as`` makes for each request share it.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._held: tuple[tuple[object, ...], SignedRevocations] | None = None

    def get(
        self,
        key: tuple[object, ...],
        serial: int | None,
        sign: Callable[[], SignedRevocations],
    ) -> SignedRevocations:
        """The list signed for ``key`` at ``serial``; ``sign`` only when there is none.

        Args:
            key: what else the list depends on (day, freshness, signing key).
            serial: the ledger's serial as read without its lock (``None``:
                unknown, so the list is signed afresh).
            sign: reads the ledger under its lock and signs; its result is
                kept under the serial it read, which may be newer than ``serial``.
        """
        held = self._held
        if serial is not None and held is not None and held[0] == (serial, *key):
            return held[1]
        with self._lock:  # one thread signs; the others then find its list here
            held = self._held
            if serial is not None and held is not None and held[0] == (serial, *key):
                return held[1]
            signed = sign()
            self._held = ((signed.serial, *key), signed)
            return signed


class RevocationLists:
    """The signed revocation list of one ledger, signed once per serial, day and key.

    Args:
        ledger: the ledger.
        minter: the signing key.
        clock: time source.
        cache: the last list signed, shared by every actor of one issuer.
        days: how long a list stays fresh by default (1 to 365).
        max_bytes: the largest list given out.
    """

    def __init__(
        self,
        ledger: LedgerBackend,
        minter: Minter,
        *,
        clock: Clock,
        cache: RevocationListCache,
        days: int,
        max_bytes: int,
    ) -> None:
        self.ledger = ledger
        self._minter = minter
        self._clock = clock
        self._cache = cache
        self._days = days
        self._max_bytes = max_bytes

    def signed(self, days: int | None = None) -> SignedRevocations:
        """The signed revocation list with its size against the panels' limit (and a warning).

        While the ledger's revocation serial (read without its lock), the UTC
        day and the signing key stay the same, the list signed before is
        returned without reading the ledger's entries.

        Raises:
            BadInputError: ``days`` out of 1..365.
        """
        fresh = self._days if days is None else days
        if type(fresh) is not int or not 1 <= fresh <= 365:
            raise BadInputError("revocation list days must be a whole number from 1 to 365")
        signer = self._minter.signer()  # the active key now: a rotation re-signs the list
        now = now_from(self._clock)
        key = (now.date(), fresh, signer.kid, self._max_bytes)

        def sign() -> SignedRevocations:
            serial, entries = self.ledger.revocations()
            return sign_revocations(
                signer,
                issuer=self.ledger.info.provider,
                serial=serial,
                entries=entries,
                now=now,
                fresh=_dt.timedelta(days=fresh),
                limit=self._max_bytes,
            )

        return self._cache.get(key, self.ledger.revocation_serial(), sign)

    def text(self, days: int | None = None) -> str:
        """The signed revocation list: revoked licenses and superseded activations still live.

        Entries whose every token has expired are left out. One list is signed
        per serial, UTC day and signing key and then reused, so repeated calls
        return the same text (HTTP caches and ETags stay useful).

        Args:
            days: how long the list stays fresh (default from the config, 30).

        Raises:
            BadInputError: ``days`` out of 1..365.
            RevocationListTooLargeError: the list is larger than panels accept.
        """
        return self.signed(days).text
