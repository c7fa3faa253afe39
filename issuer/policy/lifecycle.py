"""The license state machine: activation outcomes, leases, renewal and monthly regeneration.

A redemption ends in one of five outcomes, numbered here and in the tests:

1. unknown key, or a key of an earlier generation → ``invalid activation key``
   (:func:`current_key`, before the others: the ledger only finds what the
   key was ever indexed to);
2. license revoked or expired, or for another product → a refusal naming why;
3. license not yet activated → the activation is recorded and signed;
4. already activated on the same server (by fingerprint) → that same activation
   again with a fresh lease, so re-installing a server does not burn its key;
5. already activated on another server → ``already activated``, with the date
   from which the provider may regenerate the key.

Regeneration is allowed once per calendar month: Jan 15 → Feb 15, and
Jan 31 → Feb 28/29.

Every token is issued for a lease: ``exp`` = min(license expiry, now + lease),
and only the license's current activation, on its own server, renews.

Pure functions over :class:`~issuer.records.LicenseRecord` values: the
capabilities call them inside a ledger transaction with freshly read records
and have the ledger keep what they return. Refusals are raised as
LicenseError subclasses, and nothing is written.

Example:
    >>> import datetime as dt
    >>> add_months(dt.datetime(2027, 1, 31, tzinfo=dt.timezone.utc), 1).date()
    datetime.date(2027, 2, 28)
"""

from __future__ import annotations

import calendar
import datetime as _dt
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from issuer.records import Activation, Event, LicenseRecord, LicenseStatus
from verifier.claims import IDENTITY_HARDWARE, IDENTITY_MACHINE_ID
from verifier.clock import format_utc
from verifier.errors import (
    ActivationNotFoundError,
    ActivationSupersededError,
    AlreadyActivatedError,
    BadInputError,
    InvalidActivationKeyError,
    LicenseExpiredError,
    LicenseRevokedError,
    MachineIdRefusedError,
    ProductMismatchError,
    RegenerationTooSoonError,
    WrongServerError,
)
from verifier.fingerprint import Fingerprint, matches

__all__ = [
    "EDITABLE",
    "Lease",
    "NO_LEASE_LIFETIME",
    "add_months",
    "amend",
    "audited_fields",
    "check_usable",
    "current_key",
    "effective_lease_days",
    "lease_for",
    "next_regeneration",
    "regeneration_allowed_from",
    "recorded",
    "redeem",
    "regenerate",
    "renew",
    "revoke",
]

# Without a lease and without a license expiry a token still needs an end.
NO_LEASE_LIFETIME = _dt.timedelta(days=3653)
_MIN_GRACE = _dt.timedelta(days=1)


@dataclass(frozen=True)
class Lease:
    """The validity a token gets when it is issued.

    Attributes:
        expires_at: the token's ``exp``: the lease's end or the license's expiry,
            whichever is first.
        renew_at: the start of the grace window (``exp`` minus a third of the
            lease, at least 1 day).
    """

    expires_at: _dt.datetime
    renew_at: _dt.datetime


def lease_for(record: LicenseRecord, default_days: int, now: _dt.datetime, months: int) -> Lease:
    """The lease a token issued ``now`` for ``record`` gets.

    ``exp`` = min(license expiry, now + lease). With a lease of 0 the token
    lasts until the license's expiry (or ten years for a license without
    one). ``renew_at`` = ``exp`` minus the grace window, a third of the lease
    and at least one day.

    A lease also ends no later than the earliest moment at which a *second*
    regeneration could follow one made now (``months`` calendar months, from
    the start of that day). A server superseded by one regeneration is then
    always stopped before the next regeneration can free the key again, so at
    most two servers of one license run at any moment, even when a customer
    renews by hand on the eve of a regeneration and the months are short
    (Feb 27 + 30 days would outlive the Mar 27 regeneration).
    """
    days = default_days if record.lease_days is None else record.lease_days
    if days == 0:
        end = now + NO_LEASE_LIFETIME
        lease = NO_LEASE_LIFETIME
    else:
        lease = _dt.timedelta(days=days)
        next_free = add_months(now.astimezone(_dt.UTC), months)
        end = min(now + lease, next_free.replace(hour=0, minute=0, second=0, microsecond=0))
    if record.expires_at is not None:
        end = min(end, record.expires_at)
        if days == 0:
            lease = end - now
    grace = max(_MIN_GRACE, lease / 3)
    return Lease(expires_at=end, renew_at=max(now, end - grace))


def effective_lease_days(lease_days: int, now: _dt.datetime, months: int) -> int:
    """Whole days a token issued ``now`` lasts under a lease of ``lease_days`` (0: no lease).

    The lease, or fewer when the regeneration cap of :func:`lease_for` ends it
    sooner (a lease of 90 days gives tokens of about a month). The license's
    own expiry, which may end a token sooner still, is not counted here.
    """
    if lease_days == 0:
        return 0
    cap = add_months(now.astimezone(_dt.UTC), months).replace(
        hour=0, minute=0, second=0, microsecond=0
    )
    return min(lease_days, (cap - now).days)


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


def regeneration_allowed_from(record: LicenseRecord, months: int) -> _dt.datetime:
    """The fixed instant from which regeneration is (or was) allowed; it does not move with time.

    The license's creation when it was never regenerated (the first
    regeneration is allowed at once), else the start of the day ``months``
    calendar months after the last regeneration.
    """
    if record.regenerated_at is None:
        return record.created_at
    due = add_months(record.regenerated_at.astimezone(_dt.UTC), months)
    return due.replace(hour=0, minute=0, second=0, microsecond=0)


def current_key(
    record: LicenseRecord | None, key_hash: str, *, key_generation: int | None = None
) -> LicenseRecord:
    """The license ``key_hash`` opens: outcome 1 when none, or when it is a superseded key.

    Args:
        record: the license the ledger found indexed under ``key_hash`` (``None``: none).
        key_hash: the hash of the key presented.
        key_generation: the generation of the key presented, when the caller may
            know it (the provider's own door): the refusal then says which
            regeneration replaced it, and when. Anonymous clients get the
            generic refusal, which tells them nothing about the license.

    Raises:
        InvalidActivationKeyError: no license, or a key of an earlier generation.
    """
    if record is None or record.key_hash != key_hash:
        if record is not None and key_generation is not None:
            raise InvalidActivationKeyError(_replaced(record, key_generation))
        raise InvalidActivationKeyError()
    return record


def _replaced(record: LicenseRecord, generation: int) -> str:
    """Why a key of an earlier generation opens nothing: the regeneration that replaced it."""
    regenerations = [e for e in record.history if e.action == "regenerated"]
    # The n-th regeneration replaced the key of generation n.
    at = regenerations[generation - 1].at if 0 < generation <= len(regenerations) else None
    when = f" on {format_utc(at)}" if at is not None else ""
    return (
        f"this activation key of license {record.license_id} was replaced by a regeneration"
        f"{when}; the license's current key is generation {record.generation} "
        "(shown by 'issuer license show')"
    )


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
    lease_days: int,
    identity: str = IDENTITY_HARDWARE,
    accept_machine_id: bool = True,
) -> tuple[LicenseRecord, Activation, Lease]:
    """Decide a redemption: refuse an unusable license, or activate, re-issue or refuse.

    Every success issues a lease (outcomes 3 and 4 of this module).

    Returns:
        ``(new_record, activation, lease)``. The same server activating again
        gets its same activation with a fresh lease.

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
            return _extend(record, current, "reactivated", method, actor, now, lease_days, months)
        allowed = next_regeneration(record, months, now)
        raise AlreadyActivatedError(regenerate_after=allowed.date())
    lease = lease_for(record, lease_days, now, months)
    activation = Activation(
        activation_id=activation_id,
        fingerprint=fingerprint,
        hostname=hostname,
        method=method,
        activated_at=now,
        lease_until=lease.expires_at,
        identity=identity,
    )
    updated = replace(record, status=LicenseStatus.ACTIVATED, activation=activation)
    detail = (
        f"{activation_id} on {hostname or '?'} ({method}); "
        f"lease until {format_utc(lease.expires_at)}"
    )
    return (
        recorded(record, updated, "activated", actor=actor, now=now, detail=detail),
        activation,
        lease,
    )


def _extend(
    record: LicenseRecord,
    current: Activation,
    action: str,
    method: str,
    actor: str,
    now: _dt.datetime,
    lease_days: int,
    months: int,
) -> tuple[LicenseRecord, Activation, Lease]:
    """Give the current activation a fresh lease and record it in the history."""
    lease = lease_for(record, lease_days, now, months)
    # The recorded end never moves back: a revocation entry must outlive every token issued.
    until = max(lease.expires_at, current.lease_until or lease.expires_at)
    activation = replace(current, lease_until=until, renewed_at=now)
    detail = f"{current.activation_id} ({method}); lease until {format_utc(lease.expires_at)}"
    updated = replace(record, activation=activation)
    return recorded(record, updated, action, actor=actor, now=now, detail=detail), activation, lease


def renew(
    record: LicenseRecord,
    *,
    product: str,
    activation_id: str,
    fingerprint: Fingerprint,
    method: str,
    actor: str,
    now: _dt.datetime,
    lease_days: int,
    months: int,
) -> tuple[LicenseRecord, Activation, Lease]:
    """Decide a renewal: only the license's current activation, on its own server, renews.

    A token that has already expired renews too, as long as its activation is current.

    Raises:
        LicenseRevokedError | LicenseExpiredError | ProductMismatchError: unusable license.
        ActivationSupersededError: the key was regenerated since; activate again.
        ActivationNotFoundError: the license never had this activation.
        WrongServerError: the fingerprint does not match the activation's server.
    """
    check_usable(record, product, now)
    current = record.activation
    if current is None or current.activation_id != activation_id:
        if any(a.activation_id == activation_id for a in record.past_activations):
            raise ActivationSupersededError()
        raise ActivationNotFoundError(
            f"license {record.license_id} has no activation {activation_id!r}"
        )
    # The same majority rule as verification, against the fingerprint bound at activation.
    if not matches(current.fingerprint, fingerprint):
        raise WrongServerError("this renewal comes from another server than the activation's")
    return _extend(record, current, "renewed", method, actor, now, lease_days, months)


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
EDITABLE = ("customer", "ip", "expires_at", "features", "limits", "lease_days")


def audited_fields(record: LicenseRecord | None) -> dict[str, Any]:
    """The fields the audit trail follows, as JSON values (``None`` before creation)."""
    if record is None:
        return {}
    return {
        "product": record.product,
        "customer": record.customer,
        "ip": record.ip,
        "expires_at": format_utc(record.expires_at),
        "features": list(record.features),
        "limits": dict(record.limits),
        "lease_days": record.lease_days,
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
