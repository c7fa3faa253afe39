"""A ledger folder's index of licenses and its audit log, in pages of creation order.

One concern: the files under ``index/`` and ``events/``. ``index/head.json``
counts the licenses and the audit events; ``index/NNNNNN.json`` holds the
license summaries by position and ``events/NNNNNN.json`` the events by
cursor, :data:`~issuer.ledger.folder_layout.PAGE` to a page, so a reader
opens only the pages it shows. Everything here works inside a locked
:class:`~issuer.ledger.shards.ShardTransaction` of the caller; a ledger made
before the index existed gets one from :func:`build_index`.

Example:
    >>> head = read_head(txn)  # doctest: +SKIP
    >>> append_events(txn, head, [(event, "LIC-7K3QM9XW2D")])  # doctest: +SKIP
    >>> save_head(txn, head)  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tinydb import Query
from tinydb.table import Document, Table

from issuer.errors import LedgerCorruptError
from issuer.ledger.folder_layout import EVENTS, HEAD, INDEX, LICENSES, PAGE, POS, page_name
from issuer.ledger.shards import ShardTransaction, read_raw
from issuer.records import Event, LicenseRecord, LicenseSummary, LoggedEvent

__all__ = [
    "append_events",
    "append_summary",
    "build_index",
    "log_event",
    "may_contain",
    "raw_needle",
    "read_events",
    "read_head",
    "save_head",
]


def read_head(txn: ShardTransaction) -> dict[str, int]:
    """How many licenses and audit events the ledger holds (zero of each before the first).

    Raises:
        LedgerCorruptError: the head is malformed.
    """
    doc = txn.table(INDEX, HEAD).get(doc_id=1)
    if doc is None:
        return {"licenses": 0, "events": 0}
    counts = {k: doc.get(k) for k in ("licenses", "events")}
    if not all(type(v) is int and v >= 0 for v in counts.values()):
        raise LedgerCorruptError("ledger is damaged: the index head is malformed")
    return counts  # type: ignore[return-value]  # checked just above


def save_head(txn: ShardTransaction, head: dict[str, int]) -> None:
    """Keep the counts of :func:`read_head`, as the appends since changed them."""
    table = txn.table(INDEX, HEAD)
    if table.contains(doc_id=1):
        table.update(dict(head), doc_ids=[1])
    else:
        table.insert(Document(dict(head), doc_id=1))


def append_summary(txn: ShardTransaction, head: dict[str, int], summary: LicenseSummary) -> int:
    """Give a new license the next place in the index; returns its position."""
    position = head["licenses"]
    txn.table(INDEX, page_name(position)).insert(Document(summary.to_doc(), doc_id=position + 1))
    head["licenses"] = position + 1
    return position


def append_events(
    txn: ShardTransaction,
    head: dict[str, int],
    events: Sequence[tuple[Event, str | None]],
) -> None:
    """Append events (each with its license's id, or ``None``) to the audit log, in order."""
    for event, license_id in events:
        cursor = head["events"] + 1
        doc = {"license_id": license_id, **event.to_doc()}
        txn.table(EVENTS, page_name(cursor - 1)).insert(Document(doc, doc_id=cursor))
        head["events"] = cursor


def log_event(txn: ShardTransaction, event: Event, license_id: str | None = None) -> None:
    """Append one event to the audit log, head included."""
    head = read_head(txn)
    append_events(txn, head, [(event, license_id)])
    save_head(txn, head)


def read_events(txn: ShardTransaction, *, after: int, limit: int) -> list[LoggedEvent]:
    """Audit events in the order they happened, from the one after cursor ``after``.

    Raises:
        LedgerCorruptError: an event the head counts is missing or malformed.
    """
    logged: list[LoggedEvent] = []
    total = read_head(txn)["events"]
    cursor = max(after, 0) + 1
    while cursor <= total and len(logged) < limit:
        page = txn.table(EVENTS, page_name(cursor - 1))
        docs = {doc.doc_id: doc for doc in page.all()}
        last = min(total, cursor - (cursor - 1) % PAGE + PAGE - 1)
        for here in range(cursor, last + 1):
            doc = docs.get(here)
            if doc is None:
                raise LedgerCorruptError(f"ledger is damaged: audit event {here} is missing")
            logged.append(_logged(here, doc))
            if len(logged) >= limit:
                break
        cursor = last + 1
    return logged


def build_index(folder: Path) -> None:
    """Index a ledger written before the index and the audit log existed.

    Licenses get places in creation order and their histories become the
    audit log, in time order. The head is written last: an interrupted
    build is simply done again. The caller holds the ledger's lock.
    """
    txn = ShardTransaction(folder)
    records: list[tuple[LicenseRecord, Table]] = []
    for path in sorted((folder / LICENSES).glob("*.json")):
        table = txn.table(LICENSES, path.stem)
        records.extend((LicenseRecord.from_doc(doc), table) for doc in table.all())
    records.sort(key=lambda item: (item[0].created_at, item[0].license_id))
    for path in (folder / INDEX).glob("*.json"):
        txn.table(INDEX, path.stem).truncate()
    for path in (folder / EVENTS).glob("[0-9]*.json"):  # the pages, not the webhook outbox
        txn.table(EVENTS, path.stem).truncate()
    head = {"licenses": 0, "events": 0}
    for record, table in records:
        position = append_summary(txn, head, LicenseSummary.of(record))
        table.update({POS: position}, Query().license_id == record.license_id)
    history = sorted(
        ((e, r.license_id) for r, _ in records for e in r.history), key=lambda item: item[0].at
    )
    append_events(txn, head, history)
    save_head(txn, head)  # last: its file is the mark of a finished build
    txn.commit(journal=False)


def _logged(cursor: int, doc: Any) -> LoggedEvent:
    try:
        license_id = doc["license_id"]
        if license_id is not None and not isinstance(license_id, str):
            raise TypeError("license_id is not text")
        return LoggedEvent(cursor=cursor, event=Event.from_doc(doc), license_id=license_id)
    except (KeyError, TypeError, ValueError) as err:
        raise LedgerCorruptError(f"ledger is damaged: audit event {cursor} is malformed") from err


def raw_needle(text: str | None) -> bytes | None:
    """Search text as it appears in a page file's bytes, when that can be known.

    Pages are JSON with non-ASCII escaped, so only plain printable ASCII text
    (without quotes or backslashes) is found verbatim in them.
    """
    if not text or not all(32 <= ord(c) < 127 and c not in '"\\' for c in text):
        return None
    return text.lower().encode()


def may_contain(path: Path, needle: bytes) -> bool:
    """Whether an index page's bytes contain ``needle`` (case-insensitively): a cheap pre-check."""
    data = read_raw(path, "index page")
    return data is None or needle in data.lower()
