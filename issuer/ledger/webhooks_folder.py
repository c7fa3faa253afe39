"""A folder ledger's webhook endpoints, outbox and delivery queue.

Layout::

    webhooks/endpoints.json  the endpoints, with their secrets
    index/head.json          table ``outbox``: the outboxes of the latest license
                             changes, written in each change's own transaction
    events/outbox-N....json  older outboxes, moved out of the head 8 at a time
                             (named by the cursor of the first one's first event)
    webhooks/queue.json      deliveries not yet delivered (pending and failed);
                             the document id is the delivery's place in order;
                             table ``outbox``: the last outbox taken in (its cursor)
    webhooks/done.json       delivered ones, the latest 50 of each endpoint
    webhooks/queue.lock      the queue's own lock (``webhooks/journal.json`` its journal)
    webhooks/WH-....lock     held (flock) by the one deliverer sending for that endpoint

Why an outbox apart from the queue: a license change keeps its deliveries
in the index head, a small file it writes anyway — one file more every 8
changes, when the head spills — so a committed change always has its
deliveries and an uncommitted one never, while the change neither writes
a file of its own (each costs an fsync) nor rewrites a queue that grows
with every pending delivery, nor waits for a deliverer. Whoever next
reads or adds to the queue takes the outboxes in, in order, reading them
under the ledger's lock (only committed ones are seen) and writing the
queue under the queue's lock. Locks are always taken queue first, then
ledger; a license change takes only the ledger's.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from tinydb import Query
from tinydb.table import Document, Table

from issuer.errors import LedgerBusyError, LedgerCorruptError, WebhookNotFoundError
from issuer.ledger.folder_layout import EVENTS, HEAD, INDEX
from issuer.ledger.shards import ShardTransaction, replay_journal
from issuer.ledger.webhook_api import SendClaim, WebhookStorage
from issuer.records import Event
from issuer.webhook_records import Delivery, DeliveryStatus, Endpoint
from verifier.fileio import LockTimeout, file_lock

#: Opens the ledger's locked transaction (``Ledger._transaction``).
Transaction = Callable[[], contextlib.AbstractContextManager[ShardTransaction]]
#: Logs an audit event in a transaction (``Ledger._log``).
Log = Callable[[ShardTransaction, Event], None]

__all__ = ["FolderWebhooks", "enqueue", "read_endpoints"]

_KIND = "webhooks"
_OUTBOX, _OUTBOX_PREFIX = "outbox", "outbox-"  # table name; file name prefix under events/
_ENDPOINTS, _QUEUE, _DONE = "endpoints", "queue", "done"
_QUEUE_LOCK, _QUEUE_JOURNAL = f"{_KIND}/queue.lock", f"{_KIND}/journal.json"
_KEEP_DONE = 50
_NAME_DIGITS = 12
_SPILL = 8  # outboxes the index head holds before they move to a file of their own


def _has_endpoints(root: Path) -> bool:
    return (root / _KIND / f"{_ENDPOINTS}.json").exists()


def read_endpoints(txn: ShardTransaction, root: Path) -> list[Endpoint]:
    """Every endpoint, in the transaction (none without reading a file when there never was one)."""
    if not _has_endpoints(root):
        return []
    return [Endpoint.from_doc(doc) for doc in txn.table(_KIND, _ENDPOINTS).all()]


def _queue(txn: ShardTransaction, root: Path) -> Table:
    (root / _KIND).mkdir(mode=0o700, exist_ok=True)
    return txn.table(_KIND, _QUEUE)


def _held(txn: ShardTransaction) -> Table:
    """The outboxes the index head holds (``index/head.json``, table ``outbox``)."""
    return txn.table(INDEX, HEAD, _OUTBOX)


def _spill_table(txn: ShardTransaction, at: int) -> Table:
    """A spilled outbox file (``events/outbox-<at>.json``)."""
    return txn.table(EVENTS, f"{_OUTBOX_PREFIX}{at:0{_NAME_DIGITS}d}", _OUTBOX)


def _spill_files(root: Path) -> list[Path]:
    return sorted((root / EVENTS).glob(f"{_OUTBOX_PREFIX}*.json"))


def enqueue(
    txn: ShardTransaction,
    deliveries: Sequence[Delivery],
    cursors: Sequence[int],
    *,
    first: int,
) -> None:
    """Keep deliveries in the transaction's outbox; ``cursors``: its last change's events.

    The outbox is one document ``{"at": first, "raw": <the deliveries as
    JSON text>}`` in the index head, which the transaction writes anyway
    (kept as text: the head is read and written by every change, and text
    costs little to carry). ``first`` is the cursor of the transaction's
    first logged event, above every earlier transaction's, so documents in
    ``at`` order (then stored order) are the deliveries in event order.
    Once the head holds :data:`_SPILL` outboxes they move to a file of their
    own: the head stays small whether or not a deliverer runs (a take in
    reads them all and skips what it took before; see the queue's mark).
    """
    if not deliveries:
        return
    docs = [{**d.to_doc(), "event_cursor": d.event_cursor or cursors[d.index]} for d in deliveries]
    held = _held(txn)
    held.insert({"at": first, "raw": json.dumps(docs, separators=(",", ":"))})
    if len(held) >= _SPILL:
        outboxes = _in_order(held.all())
        _spill_table(txn, outboxes[0]["at"]).insert_multiple(dict(doc) for doc in outboxes)
        held.truncate()


def _in_order(outboxes: Sequence[Any]) -> list[Any]:
    """Outbox documents by ``at`` (stable: one transaction's stay in stored order)."""
    try:
        return sorted(outboxes, key=lambda doc: int(doc["at"]))
    except (KeyError, TypeError, ValueError) as err:
        raise LedgerCorruptError("ledger is damaged: a webhook outbox entry is malformed") from err


def _deliveries_of(outbox: Any) -> list[dict[str, Any]]:
    try:
        docs = json.loads(outbox["raw"])
    except (KeyError, TypeError, ValueError) as err:
        raise LedgerCorruptError("ledger is damaged: a webhook outbox entry is malformed") from err
    if not isinstance(docs, list) or not all(isinstance(d, dict) for d in docs):
        raise LedgerCorruptError("ledger is damaged: a webhook outbox entry is malformed")
    return docs


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
    def _queue_txn(self, *, take: bool = True) -> Iterator[ShardTransaction]:
        """The queue's transaction under its own lock; committed when the block ends.

        ``take``: the outbox is taken in first (whoever reads the queue or
        adds to it; recording attempts of rows already there need not).
        """
        (self._root / _KIND).mkdir(mode=0o700, exist_ok=True)
        try:
            with file_lock(self._root / _QUEUE_LOCK, self._lock_timeout):
                replay_journal(self._root, _QUEUE_JOURNAL)
                txn = ShardTransaction(self._root, _QUEUE_JOURNAL)
                spilled = self._take_outbox(txn) if take else []
                yield txn
                txn.commit()
                # Housekeeping, once the queue holds them: every file was read whole and
                # is at or below the mark, which keeps a later take from queueing it twice.
                for path in spilled:
                    with contextlib.suppress(OSError):
                        os.unlink(path)
        except LockTimeout:
            raise LedgerBusyError(
                f"the webhook queue is busy: another process held it for {self._lock_timeout:g} s"
            ) from None

    def _take_outbox(self, queue_txn: ShardTransaction) -> list[Path]:
        """Move committed outboxes into the queue (not committed yet); the spilled files read.

        Outboxes at or below the queue's mark were taken before: the head
        keeps them until it spills them, and a crash can keep a spilled file.
        """
        if not self._outbox_waiting():
            return []
        marks = queue_txn.table(_KIND, _QUEUE, _OUTBOX)
        mark_doc = marks.get(doc_id=1)
        mark = 0 if mark_doc is None else int(mark_doc.get("taken", 0))
        with self._transaction() as txn:  # only committed outboxes are seen under this lock
            files = _spill_files(self._root)
            outboxes = [o for f in files for o in _spill_table(txn, _at_of(f)).all()]
            outboxes += _held(txn).all()
            endpoints = {e.endpoint_id for e in read_endpoints(txn, self._root)}
        fresh = [o for o in _in_order(outboxes) if int(o["at"]) > mark]
        queue = _queue(queue_txn, self._root)
        for outbox in fresh:
            for doc in _deliveries_of(outbox):
                if doc.get("endpoint_id") in endpoints:  # removed since: nobody to send to
                    doc_id = queue.insert(doc)
                    queue.update({"seq": doc_id}, doc_ids=[doc_id])
        if fresh:
            mark = int(fresh[-1]["at"])
            if marks.contains(doc_id=1):
                marks.update({"taken": mark}, doc_ids=[1])
            else:
                marks.insert(Document({"taken": mark}, doc_id=1))
        return files

    def _outbox_waiting(self) -> bool:
        """Whether an outbox may wait (read without the lock: a hint, checked under it).

        The head keeps outboxes taken already until it spills them: then
        this says yes and the take finds nothing new.
        """
        if _spill_files(self._root):
            return True
        try:
            head = json.loads((self._root / INDEX / f"{HEAD}.json").read_bytes())
        except (OSError, ValueError):
            return True  # let the locked read say what is wrong
        return bool(isinstance(head, dict) and head.get(_OUTBOX))

    def _endpoints(self, txn: ShardTransaction) -> Table:
        (self._root / _KIND).mkdir(mode=0o700, exist_ok=True)
        return txn.table(_KIND, _ENDPOINTS)

    def add_endpoint(self, endpoint: Endpoint, event: Event) -> None:
        """Store a new endpoint and log ``event``."""
        with self._txn() as txn:
            self._endpoints(txn).insert(endpoint.to_doc())
            self._log(txn, event)

    def endpoints(self) -> list[Endpoint]:
        """Every endpoint, oldest first (no lock taken while the ledger never had one)."""
        if not _has_endpoints(self._root):
            return []
        with self._txn() as txn:
            return read_endpoints(txn, self._root)

    def save_endpoint(
        self, endpoint: Endpoint, event: Event, *, reopen: Sequence[Delivery] = ()
    ) -> None:
        """Replace an endpoint, log ``event``, and keep ``reopen``'s rows.

        The endpoint commits first: a crash before the queue's commit leaves
        the rows as they were, to reopen again.
        """
        with self._queue_txn() as queue_txn:
            self._put(queue_txn, reopen)
            with self._txn() as txn:
                table = self._endpoints(txn)
                if not table.contains(Query().endpoint_id == endpoint.endpoint_id):
                    raise WebhookNotFoundError(f"no webhook endpoint {endpoint.endpoint_id}")
                table.update(_whole(endpoint.to_doc()), Query().endpoint_id == endpoint.endpoint_id)
                self._log(txn, event)

    def remove_endpoint(self, endpoint_id: str, event: Event) -> None:
        """Remove an endpoint and its deliveries; log ``event``."""
        with self._queue_txn() as queue_txn:
            with self._txn() as txn:
                if not self._endpoints(txn).remove(Query().endpoint_id == endpoint_id):
                    raise WebhookNotFoundError(f"no webhook endpoint {endpoint_id}")
                self._log(txn, event)
            _queue(queue_txn, self._root).remove(Query().endpoint_id == endpoint_id)
            queue_txn.table(_KIND, _DONE).remove(Query().endpoint_id == endpoint_id)
        with contextlib.suppress(OSError):
            os.unlink(self._root / _KIND / f"{endpoint_id}.lock")

    def deliveries(
        self, endpoint_id: str, *, limit: int, undelivered: bool = False
    ) -> list[Delivery]:
        """An endpoint's deliveries, newest first."""
        if not (self._root / _KIND).is_dir() and not self._outbox_waiting():
            return []
        with self._queue_txn() as txn:
            docs = list(_queue(txn, self._root).search(Query().endpoint_id == endpoint_id))
            if not undelivered:
                docs += txn.table(_KIND, _DONE).search(Query().endpoint_id == endpoint_id)
        found = sorted((Delivery.from_doc(d) for d in docs), key=lambda d: d.seq, reverse=True)
        return found[:limit]

    def delivery(self, delivery_id: str) -> Delivery | None:
        """The delivery with this id."""
        if not (self._root / _KIND).is_dir() and not self._outbox_waiting():
            return None
        with self._queue_txn() as txn:
            for kind in (_QUEUE, _DONE):
                doc = txn.table(_KIND, kind).get(Query().delivery_id == delivery_id)
                if isinstance(doc, dict):
                    return Delivery.from_doc(doc)
        return None

    def put(self, deliveries: Sequence[Delivery]) -> None:
        """Queue new deliveries, or replace existing ones by id."""
        with self._queue_txn() as txn:
            self._put(txn, deliveries)

    def _put(self, txn: ShardTransaction, deliveries: Sequence[Delivery]) -> None:
        if not deliveries:
            return
        queue, done = _queue(txn, self._root), txn.table(_KIND, _DONE)
        wanted = {d.delivery_id for d in deliveries}
        queued = {
            doc["delivery_id"]: doc.doc_id
            for doc in queue.all()
            if doc.get("delivery_id") in wanted
        }
        finished = {
            doc["delivery_id"]: doc.doc_id for doc in done.all() if doc.get("delivery_id") in wanted
        }
        if finished:
            done.remove(doc_ids=list(finished.values()))
        gone = [
            queued[d.delivery_id]
            for d in deliveries
            if d.status == DeliveryStatus.DELIVERED and d.delivery_id in queued
        ]
        if gone:
            queue.remove(doc_ids=gone)
        delivered = [d.to_doc() for d in deliveries if d.status == DeliveryStatus.DELIVERED]
        if delivered:
            done.insert_multiple(delivered)
            for endpoint_id in {d["endpoint_id"] for d in delivered}:
                _trim(done, endpoint_id)
        for d in deliveries:
            if d.status == DeliveryStatus.DELIVERED:
                continue
            if d.delivery_id in queued:
                queue.update(_whole(d.to_doc()), doc_ids=[queued[d.delivery_id]])
            else:
                doc_id = queue.insert(d.to_doc())
                if not d.seq:
                    queue.update({"seq": doc_id}, doc_ids=[doc_id])

    def restore(self, endpoints: Sequence[Endpoint], deliveries: Sequence[Delivery]) -> None:
        """Give a new ledger copied endpoints and deliveries (in order)."""
        with self._queue_txn() as queue_txn:
            ordered = sorted(deliveries, key=lambda d: d.seq)
            self._put(queue_txn, [replace(d, seq=0) for d in ordered])
            if endpoints:
                with self._txn() as txn:
                    self._endpoints(txn).insert_multiple(e.to_doc() for e in endpoints)

    @contextlib.contextmanager
    def claim(self, endpoint_id: str) -> Iterator[SendClaim | None]:
        """Hold the endpoint's lock file (``flock``, not waiting); ``None`` if another holds it."""
        (self._root / _KIND).mkdir(mode=0o700, exist_ok=True)
        path = self._root / _KIND / f"{endpoint_id}.lock"
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
        with self._store._queue_txn() as txn:
            docs = _queue(txn, self._store._root).search(
                (Query().endpoint_id == self._id) & (Query().status == DeliveryStatus.PENDING)
            )
        return sorted((Delivery.from_doc(d) for d in docs), key=lambda d: d.seq)[:limit]

    def record(self, deliveries: Sequence[Delivery], *, state: str | None) -> None:
        with self._store._queue_txn(take=False) as queue_txn:
            # A delivery dropped meanwhile (its endpoint removed) is not brought back.
            queue = _queue(queue_txn, self._store._root)
            present = {doc.get("delivery_id") for doc in queue.all()}
            self._store._put(queue_txn, [d for d in deliveries if d.delivery_id in present])
            if state is not None:
                with self._store._txn() as txn:
                    table = self._store._endpoints(txn)
                    table.update({"state": state}, Query().endpoint_id == self._id)


def _at_of(path: Path) -> int:
    name = path.stem.removeprefix(_OUTBOX_PREFIX)
    if len(name) != _NAME_DIGITS or not name.isdigit():
        raise LedgerCorruptError(f"ledger is damaged: stray webhook outbox file {path.name}")
    return int(name)


def _trim(done: Table, endpoint_id: str) -> None:
    docs = done.search(Query().endpoint_id == endpoint_id)
    if len(docs) > _KEEP_DONE:
        docs.sort(key=lambda doc: doc.get("seq", 0))
        done.remove(doc_ids=[doc.doc_id for doc in docs[: len(docs) - _KEEP_DONE]])


def _whole(doc: dict[str, Any]) -> Any:
    def transform(stored: Any) -> None:
        stored.clear()
        stored.update(doc)

    return transform
