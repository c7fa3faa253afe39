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
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from issuer.records import Activation, Event, LicenseRecord, LicenseStatus
from verifier.claims import IDENTITY_HARDWARE, IDENTITY_MACHINE_ID
from verifier.errors import (
    AlreadyActivatedError,
    BadInputError,
    LicenseExpiredError,
    LicenseRevokedError,
    MachineIdRefusedError,
    ProductMismatchError,
    RegenerationTooSoonError,
)
from verifier.fingerprint import Fingerprint, matches

__all__ = [
    "EDITABLE",
    "add_months",
    "amend",
    "audited_fields",
    "check_usable",
    "next_regeneration",
    "recorded",
    "redeem",
    "regenerate",
    "revoke",
]


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
    updated = replace(record, status=LicenseStatus.ACTIVATED, activation=activation)
    detail = f"{activation_id} on {hostname or '?'} ({method})"
    return recorded(record, updated, "activated", actor=actor, now=now, detail=detail), activation


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
    updated = replace(
        record,
        generation=record.generation + 1,
        key_hash=new_key_hash,
        status=LicenseStatus.ISSUED,
        activation=None,
        past_activations=past,
        regenerated_at=now,
    )
    detail = f"activation key generation {record.generation + 1}; previous key invalidated"
    return recorded(record, updated, "regenerated", actor=actor, now=now, detail=detail)


def revoke(record: LicenseRecord, *, actor: str, now: _dt.datetime) -> LicenseRecord:
    """Revoke the license: no activation succeeds any more.

    Raises:
        LicenseRevokedError: already revoked.
    """
    if record.status == LicenseStatus.REVOKED:
        raise LicenseRevokedError("license is already revoked")
    updated = replace(record, status=LicenseStatus.REVOKED, revoked_at=now)
    return recorded(record, updated, "revoked", actor=actor, now=now)


def amend(
    record: LicenseRecord, edits: Mapping[str, Any], *, actor: str, now: _dt.datetime
) -> LicenseRecord | None:
    """Change a license's editable terms; ``None`` when nothing actually changes.

    Args:
        record: the license as stored.
        edits: validated new values by field name (``customer``, ``ip``,
            ``expires_at``, ``features``, ``limits``).
        actor: who.
        now: when.
    """
    unknown = set(edits) - set(EDITABLE)
    if unknown:
        raise BadInputError(f"these fields cannot be changed: {', '.join(sorted(unknown))}")
    updated = replace(record, **edits)
    if updated == record:
        return None
    changed = ", ".join(k for k in EDITABLE if getattr(updated, k) != getattr(record, k))
    return recorded(record, updated, "updated", actor=actor, now=now, detail=changed)


#: The terms a provider may change after creation.
EDITABLE = ("customer", "ip", "expires_at", "features", "limits")


def audited_fields(record: LicenseRecord | None) -> dict[str, Any]:
    """The fields the audit trail follows, as JSON values (``None`` before creation)."""
    if record is None:
        return {}
    return {
        "product": record.product,
        "customer": record.customer,
        "ip": record.ip,
        "expires_at": None if record.expires_at is None else record.expires_at.isoformat(),
        "features": list(record.features),
        "limits": dict(record.limits),
        "status": record.status,
        "key_generation": record.generation,
        "activation_id": None if record.activation is None else record.activation.activation_id,
    }


def recorded(
    before: LicenseRecord | None,
    after: LicenseRecord,
    action: str,
    *,
    actor: str,
    now: _dt.datetime,
    detail: str = "",
) -> LicenseRecord:
    """``after`` with one history event naming each audited field that changed."""
    old, new = audited_fields(before), audited_fields(after)
    changes = {
        name: {"before": old.get(name), "after": value}
        for name, value in new.items()
        if old.get(name) != value
    }
    event = Event(at=now, action=action, actor=actor, detail=detail, changes=changes)
    return replace(after, history=(*after.history, event))
