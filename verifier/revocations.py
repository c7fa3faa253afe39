"""The signed revocation list: what must stop now, checkable offline.

A compact JWS with header ``alg: EdDSA``, ``typ: licet-revocations+jwt``,
``kid``, signed by one of the provider's keys, and claims ``iss``,
``serial`` (grows with every revocation and key regeneration), ``iat``,
``exp`` and ``revoked``: ``{"licenses": [ids of revoked licenses],
"activations": [ids of superseded activations]}``.

The signature is checked over the exact bytes before the claims are read.
A list past its ``exp`` still applies — revocations never un-happen — but is
reported as stale. The claim names are defined here once; the issuer builds
its lists with :func:`build_revocation_claims`.

Example:
    >>> info = verifier.apply_revocations(list_text)  # doctest: +SKIP
    >>> info.serial, info.stale  # doctest: +SKIP
    (7, False)
"""

from __future__ import annotations

import datetime as _dt
import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from verifier.errors import (
    LicenseError,
    RevocationsError,
    RevocationsRollbackError,
    TokenStoreError,
)
from verifier.jws import JwsChecker, Wording
from verifier.store import TokenStore
from verifier.timefmt import is_epoch
from verifier.trust import TrustedKeys

__all__ = [
    "HeldRevocations",
    "MAX_REVOCATIONS_BYTES",
    "REVOCATIONS_TYPE",
    "RevocationList",
    "build_revocation_claims",
    "parse_revocations",
    "revocations_etag",
]

REVOCATIONS_TYPE = "licet-revocations+jwt"
MAX_REVOCATIONS_BYTES = 4 * 1024 * 1024  # ~165,000 entries; the issuer gives out no larger list
_MAX_ID = 256


@dataclass(frozen=True)
class RevocationList:
    """A verified revocation list.

    Attributes:
        issuer: the provider (``iss``).
        serial: its serial number; a higher serial replaces a lower one.
        iat: when it was signed (epoch seconds).
        exp: when it becomes stale (epoch seconds).
        licenses: ids of revoked licenses.
        activations: ids of superseded activations.
        text: the signed list itself, as received.
    """

    issuer: str
    serial: int
    iat: int
    exp: int
    licenses: frozenset[str]
    activations: frozenset[str]
    text: str

    @property
    def issued_at(self) -> _dt.datetime:
        """When the list was signed (aware UTC)."""
        return _dt.datetime.fromtimestamp(self.iat, _dt.UTC)

    @property
    def expires_at(self) -> _dt.datetime:
        """When the list becomes stale (aware UTC)."""
        return _dt.datetime.fromtimestamp(self.exp, _dt.UTC)

    def stale(self, now: float) -> bool:
        """Whether the list is past its ``exp`` (it still applies)."""
        return now >= self.exp

    def __len__(self) -> int:
        return len(self.licenses) + len(self.activations)


def build_revocation_claims(
    *,
    issuer: str,
    serial: int,
    issued_at: _dt.datetime,
    expires_at: _dt.datetime,
    licenses: Iterable[str],
    activations: Iterable[str],
) -> dict[str, Any]:
    """Return the claims of a revocation list (the issuer signs these)."""
    return {
        "iss": issuer,
        "serial": serial,
        "iat": int(issued_at.timestamp()),
        "exp": int(expires_at.timestamp()),
        "revoked": {"licenses": sorted(set(licenses)), "activations": sorted(set(activations))},
    }


def revocations_etag(text: str) -> str:
    """The HTTP entity tag of a list: the server sends it, a panel sends it back to ask for news."""
    return '"' + hashlib.sha256(text.strip().encode()).hexdigest()[:32] + '"'


# Its refusals read "revocation list refused: it ...", "... its header ...".
_WORDING = Wording(it="it", its="its", decode_detail=False)


def _bad(detail: str) -> RevocationsError:
    return RevocationsError(f"revocation list refused: {detail}")


def _ids(value: object, name: str) -> frozenset[str]:
    if type(value) is not list:
        raise _bad(f"'{name}' is not a list")
    for item in value:
        if type(item) is not str or not 0 < len(item) <= _MAX_ID:
            raise _bad(f"'{name}' holds something other than ids")
    return frozenset(value)


def parse_revocations(
    text: object, trusted_keys: TrustedKeys, *, issuer: str | None = None
) -> RevocationList:
    """Verify a signed revocation list and return its content.

    Args:
        text: the list (the bare compact JWS; surrounding whitespace is ignored).
        trusted_keys: the keys whose signatures count.
        issuer: when given, the ``iss`` the list must carry.

    Raises:
        RevocationsError: too large, malformed, wrong type, bad signature,
            untrusted or revoked key, or another issuer.
    """
    if not isinstance(text, str):
        raise _bad("it is not text")
    if len(text) > MAX_REVOCATIONS_BYTES:
        raise _bad(f"it is larger than {MAX_REVOCATIONS_BYTES} bytes")
    jws = text.strip()
    checker = JwsChecker(trusted_keys, typ=REVOCATIONS_TYPE, wording=_WORDING)
    try:
        signed = checker.verify(jws)
    except LicenseError as err:
        raise _bad(err.message) from err
    # Signed by a trusted key: only now are the claims read.
    claims = signed.payload
    iss, serial, iat, exp = (claims.get(n) for n in ("iss", "serial", "iat", "exp"))
    if type(iss) is not str or not iss:
        raise _bad("'iss' is missing")
    if issuer is not None and iss != issuer:
        raise _bad(f"it was issued by {iss!r}, not {issuer!r}")
    if type(serial) is not int or serial < 0:
        raise _bad("'serial' is missing or not a whole number")
    if not is_epoch(iat) or not is_epoch(exp):
        raise _bad("'iat' or 'exp' is missing or not a timestamp")
    try:
        checker.check_window(signed, iat)
    except LicenseError as err:
        raise _bad(err.message) from err
    revoked = claims.get("revoked")
    if not isinstance(revoked, dict):
        raise _bad("'revoked' is missing")
    return RevocationList(
        issuer=iss,
        serial=serial,
        iat=iat,
        exp=exp,
        licenses=_ids(revoked.get("licenses"), "licenses"),
        activations=_ids(revoked.get("activations"), "activations"),
        text=jws,
    )


class HeldRevocations:
    """The revocation list a panel holds, and the one rule for replacing it: only a newer list.

    A list with a higher serial replaces the one held; one with the same
    serial only when signed later (a refreshed, un-stale copy); a lower
    serial never, so replaying an old list — or swapping the stored file for
    one — un-revokes nothing. The store is handed in by the caller.

    Args:
        keys: the keys whose signatures count.
        issuer: the ``iss`` every list must carry; when ``None``, the issuer
            of the list held is required of the next one.

    Attributes:
        current: the list in force, or ``None``.
        problem: why a list from the store or a license server was not
            installed, until one is; ``None`` when nothing went wrong.
    """

    def __init__(self, keys: TrustedKeys, issuer: str | None) -> None:
        self._keys = keys
        self._issuer = issuer
        self.current: RevocationList | None = None
        self.problem: str | None = None
        self._stamp: int | None = None  # mtime of the list file last read

    def _parse(self, text: object) -> RevocationList:
        current = self.current
        pinned = self._issuer or (None if current is None else current.issuer)
        return parse_revocations(text, self._keys, issuer=pinned)

    def reload(self, store: TokenStore) -> bool:
        """Pick up a list another process (cron, the admin's CLI) put in the store.

        A list that is unreadable or does not verify is ignored (the reason is
        kept in :attr:`problem`); one not newer than the list held changes nothing.

        Returns:
            Whether the list in force changed.
        """
        stamp = store.revocations_stamp()
        if stamp == self._stamp:
            return False
        self._stamp = stamp
        try:
            text = store.load_revocations()
            if text is None:
                return False
            lst = self._parse(text)
        except (TokenStoreError, RevocationsError) as err:
            self.problem = f"the stored revocation list was ignored: {err.message}"
            return False
        current = self.current
        if current is None or (lst.serial, lst.iat) > (current.serial, current.iat):
            self.current, self.problem = lst, None
            return True
        return False

    def apply(self, text: object, store: TokenStore | None) -> tuple[RevocationList, bool]:
        """Check a signed list and put it in force if it is newer; keep it in ``store``.

        Returns:
            The list in force afterwards, and whether it changed.

        Raises:
            RevocationsError: malformed, wrongly signed, untrusted key, or another issuer.
            RevocationsRollbackError: a lower serial than the list held.
            TokenStoreError: the store could not keep it (nothing changed).
        """
        current = self.current
        lst = self._parse(text)
        if current is not None:
            if lst.serial < current.serial:
                raise RevocationsRollbackError(
                    f"revocation list serial {lst.serial} is older than serial "
                    f"{current.serial} already applied — it cannot un-revoke anything"
                )
            if lst.serial == current.serial and lst.iat <= current.iat:
                return current, False
        if store is not None:
            store.save_revocations(lst.text)
            self._stamp = store.revocations_stamp()
        self.current, self.problem = lst, None
        return lst, True
