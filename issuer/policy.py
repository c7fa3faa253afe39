"""The license state machine: activation outcomes and monthly regeneration.

A redemption ends in one of five outcomes, numbered here and in the tests:

1. unknown key, or a key of an earlier generation → ``invalid activation key``
   (the ledger decides this one: it finds no license for the key);
2. license revoked or expired, or for another product → a refusal naming why;
3. license not yet activated → the activation is recorded and signed;
4. already activated on the same server (by fingerprint) → that same activation
   again, so re-installing a server does not burn its key;
5. already activated on another server → ``already activated``, with the date
   from which the provider may regenerate the key.

Regeneration is allowed once per calendar month: Jan 15 → Feb 15, and
Jan 31 → Feb 28/29.

Pure functions over :class:`~issuer.records.LicenseRecord` values: the ledger
calls them under its lock with freshly read records and writes what they
return. Refusals are raised as LicenseError subclasses, and nothing is
written.

Example:
    >>> import datetime as dt
    >>> add_months(dt.datetime(2027, 1, 31, tzinfo=dt.timezone.utc), 1).date()
    datetime.date(2027, 2, 28)
"""

from __future__ import annotations

import calendar
import datetime as _dt
import difflib
from collections.abc import Set
from dataclasses import replace

from issuer.errors import UnknownProductError
from issuer.records import Activation, Event, LicenseRecord, LicenseStatus
from verifier.claims import IDENTITY_HARDWARE, IDENTITY_MACHINE_ID
from verifier.errors import (
    AlreadyActivatedError,
    LicenseExpiredError,
    LicenseRevokedError,
    MachineIdRefusedError,
    ProductMismatchError,
    RegenerationTooSoonError,
)
from verifier.fingerprint import Fingerprint, matches

__all__ = [
    "add_months",
    "check_product",
    "check_usable",
    "next_regeneration",
    "redeem",
    "regenerate",
    "revoke",
]


def check_product(product: str, known: Set[str], *, new_product: bool = False) -> None:
    """Refuse a product name that is most likely a typo of one the ledger knows.

    A name that differs from a known one only in case is always refused (the
    two could never be told apart by a customer, yet tokens of one do not
    activate the other). Any other unknown name needs ``new_product``, except
    the ledger's very first one.

    Raises:
        UnknownProductError: a case variant, or a new name without ``new_product``.
    """
    if product in known:
        return
    for name in sorted(known):
        if name.casefold() == product.casefold():
            raise UnknownProductError(
                f"product {product!r} differs only in case from {name!r}, which this ledger "
                f"already has: use {name!r}"
            )
    if not known or new_product:
        return
    close = difflib.get_close_matches(product, sorted(known), n=1)
    hint = f"did you mean {close[0]!r}? " if close else ""
    names = sorted(known)
    has = ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")
    raise UnknownProductError(
        f"product {product!r} is new to this ledger (it has {has}): "
        f"{hint}check the spelling, or pass --new-product to add it"
    )


def add_months(moment: _dt.datetime, months: int) -> _dt.datetime:
    """The same day and time ``months`` calendar months later, clamped to the month's end.

    Jan 15 → Feb 15; Jan 31 → Feb 28 (Feb 29 in a leap year).
    """
    index = moment.month - 1 + months
    year, month = moment.year + index // 12, index % 12 + 1
    day = min(moment.day, calendar.monthrange(year, month)[1])
    return moment.replace(year=year, month=month, day=day)


def next_regeneration(record: LicenseRecord, months: int, now: _dt.datetime) -> _dt.datetime:
    """When the activation key may next be regenerated (``now`` if already allowed).

    From the start (00:00 UTC) of the day ``months`` calendar months after the
    last regeneration: refusals name that day, so the whole day is allowed,
    not only its part after the time of day of the last regeneration. The key
    issued with the license is not a regeneration, so the first regeneration
    is allowed at once.
    """
    if record.regenerated_at is None:
        return now
    due = add_months(record.regenerated_at.astimezone(_dt.UTC), months)
    return max(now, due.replace(hour=0, minute=0, second=0, microsecond=0))


def check_usable(record: LicenseRecord, product: str, now: _dt.datetime) -> None:
    """Refuse a revoked or expired license, or one for another product."""
    if record.status == LicenseStatus.REVOKED:
        raise LicenseRevokedError()
    if record.expires_at is not None and now >= record.expires_at:
        raise LicenseExpiredError(f"license expired on {record.expires_at.date().isoformat()}")
    if record.product != product:
        raise ProductMismatchError(
            f"this activation key is for product {record.product!r}, not {product!r}"
        )


def redeem(
    record: LicenseRecord,
    *,
    product: str,
    fingerprint: Fingerprint,
    hostname: str,
    method: str,
    activation_id: str,
    actor: str,
    now: _dt.datetime,
    months: int,
    identity: str = IDENTITY_HARDWARE,
    accept_machine_id: bool = True,
) -> tuple[LicenseRecord | None, Activation]:
    """Decide a redemption: refuse an unusable license, or activate, re-issue or refuse.

    Returns:
        ``(new_record, activation)``; ``new_record`` is ``None`` when nothing
        changes (the same server activating again gets its same activation).

    Raises:
        LicenseRevokedError | LicenseExpiredError | ProductMismatchError: outcome 2.
        AlreadyActivatedError: outcome 5, with the date from which regeneration is possible.
        MachineIdRefusedError: a custom machine id for a license that accepts
            only hardware identities (``accept_machine_id`` is the license's
            own setting, or the ledger's default).
    """
    check_usable(record, product, now)
    if identity == IDENTITY_MACHINE_ID and not accept_machine_id:
        raise MachineIdRefusedError()
    current = record.activation
    if current is not None:
        # Always compared with the fingerprint bound at activation, never a
        # later one: re-binding would let a license walk to another server
        # one component at a time.
        if matches(current.fingerprint, fingerprint):
            return None, current
        allowed = next_regeneration(record, months, now)
        raise AlreadyActivatedError(regenerate_after=allowed.date())
    activation = Activation(
        activation_id=activation_id,
        fingerprint=fingerprint,
        hostname=hostname,
        method=method,
        activated_at=now,
        identity=identity,
    )
    event = Event(
        at=now,
        action="activated",
        actor=actor,
        detail=f"{activation_id} on {hostname or '?'} ({method})",
    )
    return (
        replace(
            record,
            status=LicenseStatus.ACTIVATED,
            activation=activation,
            history=(*record.history, event),
        ),
        activation,
    )


def regenerate(
    record: LicenseRecord, *, new_key_hash: str, actor: str, now: _dt.datetime, months: int
) -> LicenseRecord:
    """Issue the next key generation and free the license for a new activation.

    Raises:
        LicenseRevokedError: the license is revoked.
        RegenerationTooSoonError: less than ``months`` calendar months since the last one.
    """
    if record.status == LicenseStatus.REVOKED:
        raise LicenseRevokedError()
    allowed = next_regeneration(record, months, now)
    if now < allowed:
        raise RegenerationTooSoonError(allowed_from=allowed)
    past = record.past_activations
    if record.activation is not None:
        past = (*past, replace(record.activation, superseded_at=now))
    event = Event(
        at=now,
        action="regenerated",
        actor=actor,
        detail=f"activation key generation {record.generation + 1}; previous key invalidated",
    )
    return replace(
        record,
        generation=record.generation + 1,
        key_hash=new_key_hash,
        status=LicenseStatus.ISSUED,
        activation=None,
        past_activations=past,
        regenerated_at=now,
        history=(*record.history, event),
    )


def revoke(record: LicenseRecord, *, actor: str, now: _dt.datetime) -> LicenseRecord:
    """Revoke the license: no activation succeeds any more.

    Raises:
        LicenseRevokedError: already revoked.
    """
    if record.status == LicenseStatus.REVOKED:
        raise LicenseRevokedError("license is already revoked")
    event = Event(at=now, action="revoked", actor=actor, detail="")
    return replace(
        record, status=LicenseStatus.REVOKED, revoked_at=now, history=(*record.history, event)
    )
