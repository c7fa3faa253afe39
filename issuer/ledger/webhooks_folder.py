"""A folder ledger's webhook endpoints, outbox and delivery queue.

Layout::

    webhooks/endpoints.json  the endpoints, with their secrets
    index/head.json          table ``outbox``: the outboxes of the latest license
                             changes, written in each change's own transaction
    events/outbox-N....json  older outboxes, moved out of the head 8 at a time
                             (named by the cursor of the first one's first event)
    webhooks/WH-....json     one endpoint's queue: table ``queue`` its deliveries not
                             yet delivered (pending and failed), ``done`` the latest 50
                             delivered, ``mark`` the last outbox it took in and the last
                             place in order (``seq``) it gave
    webhooks/queue.lock      the queue's own lock (``webhooks/journal.json`` its journal)
    webhooks/WH-....lock     held (flock) by the one deliverer sending for that endpoint

Why an outbox apart from the queue: a license change keeps its deliveries
in the index head, a small file it writes anyway — one file more every 8
changes, when the head spills — so a committed change always has its
deliveries and an uncommitted one never, while the change neither writes
a file of its own (each costs an fsync) nor rewrites a queue that grows
with every pending delivery, nor waits for a deliverer. How an outbox is kept
and read back is :mod:`issuer.ledger.webhooks_outbox`'s.

Why one file per endpoint, marks included: a deliverer serving one
endpoint takes that endpoint's deliveries in from the outbox, and records
its attempts, each time in one file — one fsync, no journal — however many
endpoints there are; its writes share the disk with license changes, so
they are kept few. An outbox file goes once every endpoint has taken it in.
Whoever reads or adds to the queue takes the outboxes in first, in order,
reading them under the ledger's lock (only committed ones are seen) and
writing the queue under the queue's lock. Locks are always taken queue
first, then ledger; a license change takes only the ledger's.

Older layouts (one queue and one done file per endpoint, or one shared
``queue.json``/``done.json``) are moved into this one on first use; the
marks they shared (``queue.json``, table ``outbox``) stand for every
endpoint that has none of its own yet.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from tinydb import Query
from tinydb.table import Document, Table

from issuer.errors import LedgerBusyError, LedgerCorruptError, WebhookNotFoundError
from issuer.ledger.folder_layout import HEAD, INDEX
from issuer.ledger.shards import ShardTransaction, read_raw, replay_journal, table_docs
from issuer.ledger.webhook_api import SendClaim, WebhookStorage
from issuer.ledger.webhooks_outbox import (
    OUTBOX,
    PAYLOAD,
    Outboxes,
    at_of,
    deliveries_of,
    in_order,
    spill_files,
)
from issuer.records import Event
from issuer.webhook_records import Delivery, DeliveryStatus, Endpoint
from verifier.fileio import LockTimeout, file_lock

#: Opens the ledger's locked transaction (``Ledger._transaction``).
Transaction = Callable[[], contextlib.AbstractContextManager[ShardTransaction]]
#: Logs an audit event in a transaction (``Ledger._log``).
Log = Callable[[ShardTransaction, Event], None]

__all__ = ["FolderWebhooks", "read_endpoints"]

_KIND = "webhooks"
_ENDPOINTS = "endpoints"
_QUEUE, _DONE, _MARK = "queue", "done", "mark"  # the tables of an endpoint's file
_LEGACY_MARKS = "queue"  # webhooks/queue.json, table "outbox": the marks endpoints once shared
_QUEUE_LOCK, _QUEUE_JOURNAL = f"{_KIND}/queue.lock", f"{_KIND}/journal.json"
_KEEP_DONE = 50
_ENDPOINT_ID = re.compile(r"WH-[0-9A-Z]{1,32}")


#: The endpoints last parsed, per file, with the bytes they were parsed from.
_PARSED: dict[Path, tuple[bytes, tuple[Endpoint, ...]]] = {}


def read_endpoints(root: Path) -> list[Endpoint]:
    """Every endpoint as committed, oldest first (none without a file when there never was one).

    Read from the file, not from a transaction: it is replaced whole at each
    commit, so any read sees one committed state — under the ledger's lock
    the latest; without it, at worst the one before a commit a crash cut
    short (the next locked operation finishes it). Every license change
    reads the endpoints: they are parsed again only when the bytes differ.
    """
    path = root / _KIND / f"{_ENDPOINTS}.json"
    data = read_raw(path, "webhook endpoints")
    if data is None:
        return []
    kept = _PARSED.get(path)
    if kept is None or kept[0] != data:
        parsed = tuple(Endpoint.from_doc(doc) for doc in table_docs(data, path, _KIND))
        kept = _PARSED[path] = (data, parsed)
    return list(kept[1])


def _file_of(endpoint_id: str) -> str:
    """The name of an endpoint's file (without ``.json``); an id is never a path."""
    if not _ENDPOINT_ID.fullmatch(endpoint_id):
        raise WebhookNotFoundError(f"no webhook endpoint {endpoint_id!r}")
    return endpoint_id


def _queue(txn: ShardTransaction, endpoint_id: str) -> Table:
    """An endpoint's undelivered deliveries (``webhooks/<id>.json``, table ``queue``)."""
    return txn.table(_KIND, _file_of(endpoint_id), _QUEUE)


def _done(txn: ShardTransaction, endpoint_id: str) -> Table:
    """An endpoint's latest delivered deliveries (``webhooks/<id>.json``, table ``done``)."""
    return txn.table(_KIND, _file_of(endpoint_id), _DONE)


def _endpoint_files(root: Path) -> list[str]:
    """The endpoint ids that have a queue file."""
    return sorted(p.stem for p in (root / _KIND).glob("WH-*.json"))


def _stored(d: Delivery) -> dict[str, Any]:
    """A delivery's document in the queue's files: its payload as sent, in place of its body.

    A deliverer rewrites its endpoint's file at every batch; one string
    costs a fraction of a nested document to encode and decode, and the
    payload need not be made again for each attempt.
    """
    doc = d.to_doc()
    del doc["body"]
    doc[PAYLOAD] = d.sent_as if d.sent_as is not None else d.payload().decode()
    return doc


def _delivery(doc: Any) -> Delivery:
    """A delivery from the queue's files (one kept with its body, as older ledgers did, too)."""
    payload = doc.get(PAYLOAD) if isinstance(doc, dict) else None
    if payload is None:
        return Delivery.from_doc(doc)
    try:
        body = json.loads(payload)
    except (TypeError, ValueError) as err:
        raise LedgerCorruptError("ledger is damaged: a webhook delivery is malformed") from err
    return Delivery.from_doc({**doc, "body": body}, sent_as=payload)


class FolderWebhooks(WebhookStorage):
    """The webhook storage of one folder ledger.

    Args:
        root: the ledger folder.
        transaction: opens the ledger's locked transaction.
        log: logs an audit event in a transaction.
        lock_timeout: how long to wait for the queue's lock.
    """

    def __init__(self, root: Path, transaction: Transaction, log: Log, lock_timeout: float) -> None:
        self._root = root
        self._transaction = transaction
        self._log = log
        self._lock_timeout = lock_timeout

    @contextlib.contextmanager
    def _txn(self) -> Iterator[ShardTransaction]:
        """The ledger's transaction, committed when the block ends."""
        with self._transaction() as txn:
            yield txn
            txn.commit()

    @contextlib.contextmanager
    def _queue_txn(self, *, commit: bool = True) -> Iterator[_QueueTxn]:
        """The queue's transaction under its own lock; committed when the block ends, if ``commit``.

        A commit that touches one endpoint's file alone needs no journal.
        """
        (self._root / _KIND).mkdir(mode=0o700, exist_ok=True)
        try:
            with file_lock(self._root / _QUEUE_LOCK, self._lock_timeout):
                replay_journal(self._root, _QUEUE_JOURNAL)
                _upgrade_layout(self._root)
                queue = _QueueTxn(ShardTransaction(self._root, _QUEUE_JOURNAL))
                yield queue
                if not commit:
                    return
                queue.txn.commit()
                # Housekeeping, once every endpoint's queue holds them: each is at or below
                # every endpoint's mark, which keeps a later take from queueing it twice.
                for path in queue.spent:
                    with contextlib.suppress(OSError):
                        os.unlink(path)
        except LockTimeout:
            raise LedgerBusyError(
                f"the webhook queue is busy: another process held it for {self._lock_timeout:g} s"
            ) from None

    def _take(self, queue: _QueueTxn, endpoint_ids: Sequence[str]) -> None:
        """Move the endpoints' committed deliveries from the outbox into their queues.

        Outboxes at or below an endpoint's mark were taken before: the head
        keeps them until it spills them, and an outbox file stays until every
        endpoint has taken it (then it is ``queue.spent``). Files every taker
        has passed are not read at all.
        """
        if not self._outbox_waiting():
            return
        txn = queue.txn
        # Endpoints go under the queue's lock, which this take holds: the list cannot shrink.
        # A removed endpoint takes nothing in: there is nobody to send to.
        endpoints = {e.endpoint_id for e in self.endpoints()}
        takers = {e: _Mark(txn, e) for e in endpoint_ids if e in endpoints}
        if not takers:
            return
        taken = {e: m.taken for e, m in takers.items()}
        spilled = self._read_outboxes(min(taken.values()))
        # Each outbox is read once, however many endpoints take it in. One transaction's
        # outboxes share their "at": each is compared with the marks as they were.
        # Rows go in once per endpoint: a TinyDB insert rewrites its whole table.
        moved: dict[str, list[dict[str, Any]]] = {}
        for outbox in (o for found in spilled.values() for o in found.outboxes):
            at = int(outbox["at"])
            due = {e for e in takers if at > taken[e]}
            if not due:
                continue
            for doc in deliveries_of(outbox):
                endpoint_id = doc.get("endpoint_id")
                if endpoint_id in due:
                    row = {**doc, "seq": takers[endpoint_id].next_seq()}
                    moved.setdefault(endpoint_id, []).append(row)
            for endpoint_id in due:
                takers[endpoint_id].taken = at
                moved.setdefault(endpoint_id, [])
        for endpoint_id, rows in moved.items():
            _queue(txn, endpoint_id).insert_multiple(rows)
            takers[endpoint_id].save()
        files = {path: found.last for path, found in spilled.items() if path is not None}
        passed = min(m.taken for m in takers.values())
        if moved and any(last <= passed for last in files.values()):
            # The other endpoints' marks are read only now, when the takers passed outbox files.
            lowest = min(
                (takers[e].taken if e in takers else _Mark(txn, e).taken for e in endpoints),
                default=passed,
            )
            queue.spent = [path for path, last in files.items() if last <= lowest]

    def _read_outboxes(self, passed: int) -> dict[Path | None, Outboxes]:
        """The committed outboxes, oldest first, by file (``None``: the head's).

        Under the ledger's lock only the bytes are read, and only of files
        that may hold an outbox above ``passed``; they are parsed after it.
        A file holds outboxes at or below the next one's name (one
        transaction's may straddle a spill), so a file whose successor is
        named ``passed`` or lower is known to be taken without reading it.
        """
        head = self._root / INDEX / f"{HEAD}.json"
        read: dict[Path | None, bytes | int | None] = {}  # bytes, or a file's bound unread
        with self._transaction():  # only committed outboxes are seen under this lock
            paths = spill_files(self._root)
            for n, path in enumerate(paths):
                bound = at_of(paths[n + 1]) if n + 1 < len(paths) else None
                skip = bound is not None and bound <= passed
                read[path] = bound if skip else read_raw(path, "webhook outbox")
            read[None] = read_raw(head, "index head")
        found: dict[Path | None, Outboxes] = {}
        for where, data in read.items():
            if isinstance(data, int):
                found[where] = Outboxes([], data)
                continue
            docs = in_order(table_docs(data, where or head, OUTBOX))
            found[where] = Outboxes(docs, int(docs[-1]["at"]) if docs else 0)
        return found

    def _outbox_waiting(self) -> bool:
        """Whether an outbox may wait (read without the lock: a hint, checked under it).

        The head keeps outboxes taken already until it spills them: then
        this says yes and the take finds nothing new.
        """
        if spill_files(self._root):
            return True
        try:
            head = json.loads((self._root / INDEX / f"{HEAD}.json").read_bytes())
        except (OSError, ValueError):
            return True  # let the locked read say what is wrong
        return bool(isinstance(head, dict) and head.get(OUTBOX))

    def _endpoints(self, txn: ShardTransaction) -> Table:
        (self._root / _KIND).mkdir(mode=0o700, exist_ok=True)
        return txn.table(_KIND, _ENDPOINTS)

    def add_endpoint(self, endpoint: Endpoint, event: Event) -> None:
        """Store a new endpoint and log ``event``."""
        with self._txn() as txn:
            self._endpoints(txn).insert(endpoint.to_doc())
            self._log(txn, event)

    def endpoints(self) -> list[Endpoint]:
        """Every endpoint, oldest first, read without the ledger's lock (:func:`read_endpoints`).

        A deliverer reads the endpoints for every batch; license changes need that lock.
        """
        return read_endpoints(self._root)

    def save_endpoint(
        self, endpoint: Endpoint, event: Event, *, reopen: Sequence[Delivery] = ()
    ) -> None:
        """Replace an endpoint, log ``event``, and keep ``reopen``'s rows.

        The endpoint commits first: a crash before the queue's commit leaves
        the rows as they were, to reopen again.
        """
        with self._queue_txn() as queue:
            self._put(queue, reopen)
            with self._txn() as txn:
                table = self._endpoints(txn)
                if not table.contains(Query().endpoint_id == endpoint.endpoint_id):
                    raise WebhookNotFoundError(f"no webhook endpoint {endpoint.endpoint_id}")
                table.update(_whole(endpoint.to_doc()), Query().endpoint_id == endpoint.endpoint_id)
                self._log(txn, event)

    def remove_endpoint(self, endpoint_id: str, event: Event) -> None:
        """Remove an endpoint and its deliveries; log ``event``."""
        with self._queue_txn():
            with self._txn() as txn:
                if not self._endpoints(txn).remove(Query().endpoint_id == endpoint_id):
                    raise WebhookNotFoundError(f"no webhook endpoint {endpoint_id}")
                self._log(txn, event)
            # Under the queue's lock: no take writes the file again meanwhile. A file
            # left by a crash here belongs to no endpoint, and nothing reads it.
            for name in (f"{_file_of(endpoint_id)}.json", f"{endpoint_id}.lock"):
                with contextlib.suppress(OSError):
                    os.unlink(self._root / _KIND / name)

    def deliveries(
        self, endpoint_id: str, *, limit: int, undelivered: bool = False
    ) -> list[Delivery]:
        """An endpoint's deliveries, newest first."""
        if not (self._root / _KIND).is_dir() and not self._outbox_waiting():
            return []
        with self._queue_txn() as queue:
            self._take(queue, [endpoint_id])
            docs = list(_queue(queue.txn, endpoint_id).all())
            if not undelivered:
                docs += _done(queue.txn, endpoint_id).all()
        docs.sort(key=_seq, reverse=True)
        return [_delivery(d) for d in docs[:limit]]

    def delivery(self, delivery_id: str) -> Delivery | None:
        """The delivery with this id."""
        if not (self._root / _KIND).is_dir() and not self._outbox_waiting():
            return None
        with self._queue_txn() as queue:
            ids = _endpoint_files(self._root)
            self._take(queue, ids)
            for endpoint_id in ids:
                for table in (_queue(queue.txn, endpoint_id), _done(queue.txn, endpoint_id)):
                    doc = table.get(Query().delivery_id == delivery_id)
                    if isinstance(doc, dict):
                        return _delivery(doc)
        return None

    def put(self, deliveries: Sequence[Delivery]) -> None:
        """Queue new deliveries, or replace existing ones by id."""
        with self._queue_txn() as queue:
            self._put(queue, deliveries)

    def _put(self, queue: _QueueTxn, deliveries: Sequence[Delivery]) -> None:
        """Each endpoint's rows after its outbox is taken in (so new ones come after those)."""
        by_endpoint: dict[str, list[Delivery]] = {}
        for d in deliveries:
            by_endpoint.setdefault(d.endpoint_id, []).append(d)
        self._take(queue, list(by_endpoint))
        for endpoint_id, rows in by_endpoint.items():
            _put_rows(queue.txn, endpoint_id, rows)

    def restore(self, endpoints: Sequence[Endpoint], deliveries: Sequence[Delivery]) -> None:
        """Give a new ledger copied endpoints and deliveries (in order)."""
        with self._queue_txn() as queue:
            ordered = sorted(deliveries, key=lambda d: d.seq)
            self._put(queue, [replace(d, seq=0) for d in ordered])
            if endpoints:
                with self._txn() as txn:
                    self._endpoints(txn).insert_multiple(e.to_doc() for e in endpoints)

    @contextlib.contextmanager
    def claim(self, endpoint_id: str) -> Iterator[SendClaim | None]:
        """Hold the endpoint's lock file (``flock``, not waiting); ``None`` if another holds it."""
        (self._root / _KIND).mkdir(mode=0o700, exist_ok=True)
        path = self._root / _KIND / f"{_file_of(endpoint_id)}.lock"
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                yield None
                return
            yield _FolderClaim(self, endpoint_id)
        finally:
            os.close(fd)


class _FolderClaim:
    def __init__(self, store: FolderWebhooks, endpoint_id: str) -> None:
        self._store = store
        self._id = endpoint_id

    def endpoint(self) -> Endpoint | None:
        return next((e for e in self._store.endpoints() if e.endpoint_id == self._id), None)

    def pending(self, limit: int) -> list[Delivery]:
        # Taken in but not written: the batch's record takes the same in again and writes
        # the endpoint's file once. A take is the same whoever makes it (ids from the outbox,
        # places from the mark), and a crash before the record leaves it all in the outbox.
        with self._store._queue_txn(commit=False) as queue:
            self._store._take(queue, [self._id])
            docs = _queue(queue.txn, self._id).search(Query().status == DeliveryStatus.PENDING)
        return [_delivery(d) for d in sorted(docs, key=_seq)[:limit]]

    def record(self, deliveries: Sequence[Delivery], *, state: str | None) -> None:
        with self._store._queue_txn() as queue:
            self._store._take(queue, [self._id])  # this endpoint's file alone is written
            # A delivery dropped meanwhile (its endpoint removed) is not brought back.
            present = {doc.get("delivery_id") for doc in _queue(queue.txn, self._id).all()}
            _put_rows(queue.txn, self._id, [d for d in deliveries if d.delivery_id in present])
            if state is not None:
                with self._store._txn() as txn:
                    table = self._store._endpoints(txn)
                    table.update({"state": state}, Query().endpoint_id == self._id)


class _QueueTxn:
    """The queue's transaction, and the outbox files it leaves to remove once it commits."""

    def __init__(self, txn: ShardTransaction) -> None:
        self.txn = txn
        self.spent: list[Path] = []


class _Mark:
    """An endpoint's counters (its file's table ``mark``).

    ``taken``: the last outbox taken in; ``seq``: the last place in order
    given. A document's id cannot be its place: TinyDB numbers an emptied
    table from 1 again, and the delivered ones keep theirs. An endpoint
    without a mark of its own starts from the marks all endpoints shared in
    an older layout, if the ledger has them.
    """

    def __init__(self, txn: ShardTransaction, endpoint_id: str) -> None:
        self._table = txn.table(_KIND, _file_of(endpoint_id), _MARK)
        doc = self._table.get(doc_id=1)
        if not isinstance(doc, dict) and (txn.root / _KIND / f"{_LEGACY_MARKS}.json").exists():
            doc = txn.table(_KIND, _LEGACY_MARKS, OUTBOX).get(doc_id=1)
        try:
            self.taken = int(doc.get("taken", 0)) if isinstance(doc, dict) else 0
            seq = doc.get("seq") if isinstance(doc, dict) else None
            if seq is None:  # a queue from before the counter: go on after its highest
                rows = [*_queue(txn, endpoint_id), *_done(txn, endpoint_id)]
                seq = max((_seq(d) for d in rows), default=0)
            self.seq = int(seq)
        except (TypeError, ValueError) as err:
            raise LedgerCorruptError("ledger is damaged: a webhook queue's marks") from err

    def next_seq(self) -> int:
        """The next place in order."""
        self.seq += 1
        return self.seq

    def save(self) -> None:
        """Keep the counters in the queue's transaction."""
        doc = {"taken": self.taken, "seq": self.seq}
        if self._table.contains(doc_id=1):
            self._table.update(doc, doc_ids=[1])
        else:
            self._table.insert(Document(doc, doc_id=1))


def _put_rows(txn: ShardTransaction, endpoint_id: str, rows: Sequence[Delivery]) -> None:
    """Queue new rows of one endpoint, or replace them by id (delivered ones go to ``done``)."""
    queue, done = _queue(txn, endpoint_id), _done(txn, endpoint_id)
    wanted = {d.delivery_id for d in rows}
    queued = {doc["delivery_id"]: doc.doc_id for doc in queue if doc.get("delivery_id") in wanted}
    finished = [doc.doc_id for doc in done if doc.get("delivery_id") in wanted]
    if finished:
        done.remove(doc_ids=finished)
    delivered = [d for d in rows if d.status == DeliveryStatus.DELIVERED]
    gone = [queued[d.delivery_id] for d in delivered if d.delivery_id in queued]
    if gone:
        queue.remove(doc_ids=gone)
    if delivered:
        done.insert_multiple(_stored(d) for d in delivered)
        _trim(done)
    mark: _Mark | None = None  # read only when a new row needs a place
    new: list[dict[str, Any]] = []  # inserted at once: a TinyDB insert rewrites its table
    for d in rows:
        if d.status == DeliveryStatus.DELIVERED:
            continue
        if d.delivery_id in queued:
            queue.update(_whole(_stored(d)), doc_ids=[queued[d.delivery_id]])
            continue
        seq = d.seq
        if not seq:
            mark = mark or _Mark(txn, endpoint_id)
            seq = mark.next_seq()
        new.append({**_stored(d), "seq": seq})
    if new:
        queue.insert_multiple(new)
    if mark is not None:
        mark.save()


def _upgrade_layout(root: Path) -> None:
    """Move a queue of an older layout into one file per endpoint (under the queue's lock).

    Older layouts: one ``queue-<id>.json`` and ``done-<id>.json`` per
    endpoint, or before those one shared ``queue.json`` (table ``webhooks``)
    and ``done.json``. The old tables are emptied in the same journaled
    commit, so a crash before their files go moves nothing twice.
    """
    folder = root / _KIND
    per_endpoint = sorted(folder.glob("queue-WH-*.json")) + sorted(folder.glob("done-WH-*.json"))
    shared_done = folder / f"{_DONE}.json"
    shared_queue = _has_table(folder / f"{_LEGACY_MARKS}.json", _KIND)
    if not per_endpoint and not shared_done.exists() and not shared_queue:
        return
    txn = ShardTransaction(root, _QUEUE_JOURNAL)
    old: list[tuple[Table, Callable[[ShardTransaction, str], Table]]] = [
        (txn.table(_KIND, p.stem), _queue if p.stem.startswith(_QUEUE) else _done)
        for p in per_endpoint
    ]
    if shared_queue:
        old.append((txn.table(_KIND, _LEGACY_MARKS), _queue))
    if shared_done.exists():
        old.append((txn.table(_KIND, _DONE), _done))
    for table, target in old:
        for doc in sorted(table.all(), key=lambda d: d.get("seq", 0)):
            target(txn, str(doc.get("endpoint_id"))).insert(dict(doc))
        table.truncate()
    txn.commit()
    for path in [*per_endpoint, shared_done]:
        with contextlib.suppress(OSError):
            os.unlink(path)


def _has_table(path: Path, name: str) -> bool:
    """Whether a ledger file has a non-empty table ``name`` (a cheap look before a transaction)."""
    try:
        return bool(json.loads(path.read_bytes()).get(name))
    except (OSError, ValueError, AttributeError):
        return False


def _seq(doc: Any) -> int:
    """A stored delivery's place in order."""
    try:
        return int(doc["seq"])
    except (KeyError, TypeError, ValueError) as err:
        raise LedgerCorruptError("ledger is damaged: a webhook delivery is malformed") from err


def _trim(done: Table) -> None:
    docs = done.all()
    if len(docs) > _KEEP_DONE:
        docs.sort(key=lambda doc: doc.get("seq", 0))
        done.remove(doc_ids=[doc.doc_id for doc in docs[: len(docs) - _KEEP_DONE]])


def _whole(doc: dict[str, Any]) -> Any:
    def transform(stored: Any) -> None:
        stored.clear()
        stored.update(doc)

    return transform
