"""What a change to a license adds to the revocation list.

Every key regeneration and every revocation moves the list to a new serial.
An entry names a revoked license or a superseded activation, and stays until
the last token it stops has expired: an activation's lease end (or its
license's expiry), a revoked license's latest such moment.

Example:
    >>> revocation_changes(record, record)  # doctest: +SKIP
"""

from __future__ import annotations

import datetime as _dt

from issuer.records import Activation, LicenseRecord, LicenseStatus, RevocationEntry

__all__ = ["revocation_changes", "tokens_end"]


# Tokens issued before leases were recorded lived at most this long.
_UNRECORDED_LEASE = _dt.timedelta(days=3653)


def tokens_end(activation: Activation) -> _dt.datetime:
    """When the last token of ``activation`` expires: its lease's end, or the longest one lived."""
    if activation.lease_until is not None:
        return activation.lease_until
    return activation.activated_at + _UNRECORDED_LEASE


def revocation_changes(before: LicenseRecord, after: LicenseRecord) -> list[RevocationEntry] | None:
    """What a change to a license adds to the revocation list.

    Returns ``None`` when the change does not concern the list; otherwise the
    entries to add (possibly none): every key regeneration and every
    revocation moves the list to a new serial.
    """
    regenerated = after.generation != before.generation
    revoked = after.status == LicenseStatus.REVOKED and before.status != LicenseStatus.REVOKED
    if not (regenerated or revoked):
        return None
    entries: list[RevocationEntry] = []
    if regenerated and before.activation is not None:
        entries.append(
            RevocationEntry(
                RevocationEntry.ACTIVATION,
                before.activation.activation_id,
                tokens_end(before.activation),
            )
        )
    if revoked:
        ends = [tokens_end(a) for a in after.activations()]
        until = max(ends) if ends else (after.revoked_at or after.created_at)
        entries.append(RevocationEntry(RevocationEntry.LICENSE, after.license_id, until))
    return entries
