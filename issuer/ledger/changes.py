"""What a change to a license implies for the ledger: written once, kept by both backends.

A changed license is more than its new document: a regenerated key is
indexed (the old keys stay, so a superseded key still finds its license and
is refused as such), an edited IP moves in the IP look-up, the license's
summary in the list index follows, its new history entries join the audit
log, and a regeneration or revocation moves the revocation list to a new
serial. :func:`plan` works all of that out from the two records; each backend
only turns the :class:`Change` into its own writes (shard files, or SQL
statements in one round trip) under its lock.

Which revocation entries a change adds is a rule of the policy
(:mod:`issuer.policy.revocations`): the caller decides them and hands them in.

Example:
    >>> change = plan(before, after, revoked=None)  # doctest: +SKIP
    >>> change.events  # doctest: +SKIP
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Sequence
from dataclasses import dataclass

from issuer.records import Event, LicenseRecord, LicenseSummary, RevocationEntry

__all__ = ["Change", "RevocationUpdate", "plan"]


@dataclass(frozen=True)
class RevocationUpdate:
    """The revocation list's next serial: entries added, and those no token needs any more dropped.

    Attributes:
        added: the new entries.
        drop_until: entries whose last token expired by then (``until`` <= it) go.
    """

    added: tuple[RevocationEntry, ...]
    drop_until: _dt.datetime


@dataclass(frozen=True)
class Change:
    """Everything a backend writes for one changed license.

    Attributes:
        record: the license as it is now, to keep.
        new_key_hash: a key hash to index to the license (a regeneration), else ``None``.
        ip_moved: the license's IP changed: the look-up loses ``old_ip`` and gains ``new_ip``.
        old_ip: the IP the look-up had for the license (``None``: none).
        new_ip: the IP it has now (``None``: none).
        summary: the license's new summary in the list index, ``None`` when unchanged.
        events: the history entries the change added, for the audit log, in order.
        revocations: the revocation list's next serial, ``None`` when the list stays.
    """

    record: LicenseRecord
    new_key_hash: str | None
    ip_moved: bool
    old_ip: str | None
    new_ip: str | None
    summary: LicenseSummary | None
    events: tuple[Event, ...]
    revocations: RevocationUpdate | None

    @property
    def license_id(self) -> str:
        """The license changed."""
        return self.record.license_id


def plan(
    before: LicenseRecord,
    after: LicenseRecord,
    *,
    revoked: Sequence[RevocationEntry] | None,
) -> Change:
    """What storing ``after`` in place of ``before`` implies.

    Args:
        before: the license as read under the ledger's lock.
        after: the license to keep.
        revoked: the entries the change adds to the revocation list (possibly
            none, which still moves the list to a new serial); ``None`` when the
            change does not concern the list.

    Raises:
        ValueError: ``after`` is another license, or its history does not
            continue ``before``'s (the audit log only ever grows).
    """
    if after.license_id != before.license_id:
        raise ValueError(f"a change of {before.license_id} cannot store {after.license_id}")
    if after.history[: len(before.history)] != before.history:
        raise ValueError(f"a change of {before.license_id} rewrites its history")
    summary = LicenseSummary.of(after)
    events = after.history[len(before.history) :]
    update = None
    if revoked is not None:
        # Entries whose tokens expired by the time of the change stop nothing any more.
        update = RevocationUpdate(added=tuple(revoked), drop_until=after.history[-1].at)
    return Change(
        record=after,
        new_key_hash=after.key_hash if after.key_hash != before.key_hash else None,
        ip_moved=after.ip != before.ip,
        old_ip=before.ip,
        new_ip=after.ip,
        summary=summary if summary != LicenseSummary.of(before) else None,
        events=tuple(events),
        revocations=update,
    )
