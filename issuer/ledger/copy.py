"""Copying a ledger between backends (a folder and a PostgreSQL database, either way).

The copy goes into a new, empty ledger that keeps the source's identity —
provider, creation time, default lease, machine-id default and the check of
the activation-key secret, so the same keys folder works with it. Every
license travels whole: its current key (as a hash), its activation and lease,
the activations that regenerations superseded, and its audit history; so
does the revocation list, serial included, so panels see no serial go back;
so do the console's users and API tokens (their hashes: passwords and tokens
keep working) and the one audit log of every change, in its order, which
the admin API's event feed reads. Afterwards the destination is read back
and its counts and a SHA-256 digest over every record must equal the
source's; if they do not, or the copy fails half-way, the new destination is
removed again and nothing of it remains.

Rate-limit counters, console sessions and failed console log-ins are not
copied: they are short-lived, the new ledger's clients start with a clean
slate and console users log in again.

Example:
    >>> report = copy_ledger("ledger", "postgresql://licet@db/licet")  # doctest: +SKIP
    >>> report.licenses, report.digest  # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import hashlib
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from issuer.errors import LedgerError
from issuer.ledger import LedgerBackend, create_ledger, is_database_url, open_ledger
from issuer.records import Account, LoggedEvent
from issuer.webhook_records import Delivery, Endpoint

__all__ = ["LedgerSummary", "copy_ledger", "summarize"]

_BATCH = 10_000  # audit events read per call


@dataclass(frozen=True)
class LedgerSummary:
    """What a ledger holds, counted, with a digest over all of it.

    Attributes:
        licenses: how many licenses.
        activations: current and superseded activations.
        events: entries of the audit log (every license's history, and account changes).
        users: console users.
        tokens: admin API tokens.
        revocation_serial: the revocation list's serial.
        revocations: entries of the revocation list.
        webhooks: webhook endpoints.
        undelivered: webhook deliveries not delivered yet (pending or failed).
        digest: SHA-256 (hex) over the ledger's identity and every record, the
            audit log in its order (not its cursors) and the accounts.
    """

    licenses: int
    activations: int
    events: int
    users: int
    tokens: int
    revocation_serial: int
    revocations: int
    digest: str
    webhooks: int = 0
    undelivered: int = 0


def _all_events(ledger: LedgerBackend) -> list[LoggedEvent]:
    events: list[LoggedEvent] = []
    while batch := ledger.events(after=events[-1].cursor if events else 0, limit=_BATCH):
        events.extend(batch)
    return events


def _accounts(ledger: LedgerBackend) -> list[Account]:
    store = ledger.account_store
    return [*store.accounts("user"), *store.accounts("token")]


def _webhooks(ledger: LedgerBackend) -> tuple[list[Endpoint], list[Delivery]]:
    store = ledger.webhooks()
    endpoints = store.endpoints()
    queued = [
        d for e in endpoints for d in store.deliveries(e.endpoint_id, limit=2**31, undelivered=True)
    ]
    # Each endpoint's in its order: a folder ledger numbers each endpoint's deliveries
    # on its own, a PostgreSQL ledger all of them together.
    return endpoints, sorted(queued, key=lambda d: (d.endpoint_id, d.seq))


def summarize(ledger: LedgerBackend) -> LedgerSummary:
    """Count a ledger's records and digest them (the same value on every backend)."""
    return _summary(ledger, _all_events(ledger), _accounts(ledger), _webhooks(ledger))


def _summary(
    ledger: LedgerBackend,
    events: list[LoggedEvent],
    accounts: list[Account],
    webhooks: tuple[list[Endpoint], list[Delivery]],
) -> LedgerSummary:
    records = ledger.licenses()
    serial, entries = ledger.revocations()
    info = ledger.info
    identity = {
        "provider": info.provider,
        "created_at": info.created_at.isoformat(),
        "secret_check": info.secret_check,
        "lease_days": info.lease_days,
        "accept_machine_id": info.accept_machine_id,
        "revocation_serial": serial,
        "revocations": [e.to_doc() for e in entries],
    }
    digest = hashlib.sha256(json.dumps(identity, sort_keys=True).encode())
    for record in sorted(records, key=lambda r: r.license_id):
        digest.update(b"\n" + json.dumps(record.to_doc(), sort_keys=True).encode())
    for logged in events:
        doc = {"license_id": logged.license_id, **logged.event.to_doc()}
        digest.update(b"\nevent " + json.dumps(doc, sort_keys=True).encode())
    for account in sorted(accounts, key=lambda a: (a.kind, a.name)):
        digest.update(b"\naccount " + json.dumps(account.to_doc(), sort_keys=True).encode())
    endpoints, queued = webhooks
    for endpoint in sorted(endpoints, key=lambda e: e.endpoint_id):
        digest.update(b"\nwebhook " + json.dumps(endpoint.to_doc(), sort_keys=True).encode())
    for d in queued:  # in their order; the numbers a ledger gives them are its own
        # What will be sent, whether a ledger keeps the body or the bytes (cursor filled in).
        doc = {**d.to_doc(), "seq": None, "body": json.loads(d.payload())}
        digest.update(b"\ndelivery " + json.dumps(doc, sort_keys=True).encode())
    return LedgerSummary(
        webhooks=len(endpoints),
        undelivered=len(queued),
        licenses=len(records),
        activations=sum(len(r.past_activations) + (r.activation is not None) for r in records),
        events=len(events),
        users=sum(a.kind == "user" for a in accounts),
        tokens=sum(a.kind == "token" for a in accounts),
        revocation_serial=serial,
        revocations=len(entries),
        digest=digest.hexdigest(),
    )


def copy_ledger(
    source: str | os.PathLike[str],
    destination: str | os.PathLike[str],
    *,
    now: _dt.datetime | None = None,
) -> LedgerSummary:
    """Copy the ledger at ``source`` into a new ledger at ``destination`` and check it.

    Args:
        source: a ledger folder or ``postgresql://`` URL.
        destination: a new folder, or a database without a licet ledger.
        now: the time of the copy (the destination keeps the source's creation time).

    Returns:
        The summary both ledgers share.

    Raises:
        LedgerExistsError: the destination holds a ledger (or other files) already.
        LedgerError: either side cannot be used, or the copy does not match its source.
    """
    src = open_ledger(source)
    try:
        events, accounts, webhooks = _all_events(src), _accounts(src), _webhooks(src)
        before = _summary(src, events, accounts, webhooks)
        records = src.licenses()
        serial, entries = src.revocations()
    finally:
        src.close()
    info = src.info
    folder_existed = not is_database_url(destination) and Path(destination).exists()
    dst = create_ledger(
        destination,
        provider=info.provider,
        secret_check=info.secret_check,
        now=now or _dt.datetime.now(_dt.UTC),
        created_at=info.created_at,
        lease_days=info.lease_days,
        accept_machine_id=info.accept_machine_id,
    )
    try:
        dst.add_many(records, log_history=False)
        dst.restore_revocations(serial, entries)
        dst.restore_console(accounts, events)
        dst.webhooks().restore(*webhooks)
        after = summarize(dst)
        if after != before:
            raise LedgerError(
                f"the copy in {dst.location} does not match its source "
                f"({after.licenses} of {before.licenses} licenses, digest "
                f"{after.digest[:12]} instead of {before.digest[:12]}); it was removed"
            )
    except BaseException:
        dst.close()
        _discard(destination, folder_existed)
        raise
    dst.close()
    return after


def _discard(destination: str | os.PathLike[str], folder_existed: bool) -> None:
    """Remove a destination this copy created (only ever a new or empty one)."""
    with contextlib.suppress(LedgerError, OSError):
        if is_database_url(destination):
            from issuer.ledger.postgres import drop_schema

            drop_schema(str(destination))
            return
        root = Path(destination)
        if not folder_existed:
            shutil.rmtree(root)
            return
        for entry in root.iterdir():  # it was empty before the copy
            if entry.is_dir():
                shutil.rmtree(entry)
            else:
                entry.unlink()
