"""A folder ledger's webhook endpoints, outbox and delivery queue.

Layout::

    webhooks/endpoints.json  the endpoints, with their secrets
    index/head.json          table ``outbox``: the outboxes of the latest license
                             changes, written in each change's own transaction
    events/outbox-N....json  older outboxes, moved out of the head 8 at a time
                             (named by the cursor of the first one's first event)
    webhooks/queue.json      table ``outbox``: the last outbox taken in (its cursor)
                             and the last place in order given
    webhooks/queue-WH-....json  an endpoint's deliveries not yet delivered
                             (pending and failed), ``seq`` their place in order
    webhooks/done-WH-....json   its delivered ones, the latest 50
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
# One queue and one done file per endpoint: a deliverer recording one endpoint's
# attempts rewrites that endpoint's files, not every endpoint's backlog.
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


def _queue(txn: ShardTransaction, endpoint_id: str) -> Table:
    """An endpoint's undelivered deliveries (``webhooks/queue-<id>.json``)."""
    return txn.table(_KIND, f"{_QUEUE}-{endpoint_id}")


def _done(txn: ShardTransaction, endpoint_id: str) -> Table:
    """An endpoint's latest delivered deliveries (``webhooks/done-<id>.json``)."""
    return txn.table(_KIND, f"{_DONE}-{endpoint_id}")


def _endpoint_files(root: Path) -> list[str]:
    """The endpoint ids that have queue or done files."""
    names = (p.stem for p in (root / _KIND).glob("*-WH-*.json"))
    return sorted({n.split("-", 1)[1] for n in names})


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

    The outbox is one document ``{"at": first, "raw": <JSON text: the
    deliveries, and each event's body once>}`` in the index head, which
    the transaction writes anyway (kept as text: the head is read and
    written by every change, and text costs little to carry). ``first`` is
    the cursor of the transaction's first logged event, above every earlier
    transaction's, so documents in ``at`` order (then stored order) are the
    deliveries in event order.
    Once the head holds :data:`_SPILL` outboxes they move to a file of their
    own: the head stays small whether or not a deliverer runs (a take in
    reads them all and skips what it took before; see the queue's mark).
    """
    if not deliveries:
        return
    # Every endpoint gets the same body for an event: it is kept once.
    bodies: dict[str, Any] = {}
    rows = []
    for d in deliveries:
        row = {**d.to_doc(), "event_cursor": d.event_cursor or cursors[d.index]}
        bodies.setdefault(d.event_id, row.pop("body"))
        rows.append(row)
    raw = json.dumps({"bodies": bodies, "rows": rows}, separators=(",", ":"))
    held = _held(txn)
    held.insert({"at": first, "raw": raw})
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
    """The delivery documents of an outbox, each with its event's body."""
    try:
        kept = json.loads(outbox["raw"])
        bodies, rows = kept["bodies"], kept["rows"]
        return [{**row, "body": bodies[row["event_id"]]} for row in rows]
    except (KeyError, TypeError, ValueError) as err:
        raise LedgerCorruptError("ledger is damaged: a webhook outbox entry is malformed") from err


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
                _split_shared_files(txn, self._root)
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
        marks = _Marks(queue_txn)
        with self._transaction() as txn:  # only committed outboxes are seen under this lock
            files = _spill_files(self._root)
            outboxes = [o for f in files for o in _spill_table(txn, _at_of(f)).all()]
            outboxes += _held(txn).all()
            endpoints = {e.endpoint_id for e in read_endpoints(txn, self._root)}
        fresh = [o for o in _in_order(outboxes) if int(o["at"]) > marks.taken]
        for outbox in fresh:
            for doc in _deliveries_of(outbox):
                endpoint_id = doc.get("endpoint_id")
                if endpoint_id in endpoints:  # removed since: nobody to send to
                    _queue(queue_txn, endpoint_id).insert({**doc, "seq": marks.next_seq()})
        if fresh:
            marks.taken = int(fresh[-1]["at"])
            marks.save()
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
            _queue(queue_txn, endpoint_id).truncate()
            _done(queue_txn, endpoint_id).truncate()
        for name in (
            f"{_QUEUE}-{endpoint_id}.json",
            f"{_DONE}-{endpoint_id}.json",
            f"{endpoint_id}.lock",
        ):
            with contextlib.suppress(OSError):  # emptied above: housekeeping
                os.unlink(self._root / _KIND / name)

    def deliveries(
        self, endpoint_id: str, *, limit: int, undelivered: bool = False
    ) -> list[Delivery]:
        """An endpoint's deliveries, newest first."""
        if not (self._root / _KIND).is_dir() and not self._outbox_waiting():
            return []
        with self._queue_txn() as txn:
            docs = list(_queue(txn, endpoint_id).all())
            if not undelivered:
                docs += _done(txn, endpoint_id).all()
        found = sorted((Delivery.from_doc(d) for d in docs), key=lambda d: d.seq, reverse=True)
        return found[:limit]

    def delivery(self, delivery_id: str) -> Delivery | None:
        """The delivery with this id."""
        if not (self._root / _KIND).is_dir() and not self._outbox_waiting():
            return None
        with self._queue_txn() as txn:
            for endpoint_id in _endpoint_files(self._root):
                for table in (_queue(txn, endpoint_id), _done(txn, endpoint_id)):
                    doc = table.get(Query().delivery_id == delivery_id)
                    if isinstance(doc, dict):
                        return Delivery.from_doc(doc)
        return None

    def put(self, deliveries: Sequence[Delivery]) -> None:
        """Queue new deliveries, or replace existing ones by id."""
        with self._queue_txn() as txn:
            self._put(txn, deliveries)

    def _put(self, txn: ShardTransaction, deliveries: Sequence[Delivery]) -> None:
        marks: list[_Marks] = []  # read only when a new row needs a place

        def next_seq() -> int:
            if not marks:
                marks.append(_Marks(txn))
            return marks[0].next_seq()

        by_endpoint: dict[str, list[Delivery]] = {}
        for d in deliveries:
            by_endpoint.setdefault(d.endpoint_id, []).append(d)
        for endpoint_id, rows in by_endpoint.items():
            _put_rows(_queue(txn, endpoint_id), _done(txn, endpoint_id), rows, next_seq)
        if marks:
            marks[0].save()

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
            docs = _queue(txn, self._id).search(Query().status == DeliveryStatus.PENDING)
        return sorted((Delivery.from_doc(d) for d in docs), key=lambda d: d.seq)[:limit]

    def record(self, deliveries: Sequence[Delivery], *, state: str | None) -> None:
        with self._store._queue_txn(take=False) as queue_txn:
            # A delivery dropped meanwhile (its endpoint removed) is not brought back.
            present = {doc.get("delivery_id") for doc in _queue(queue_txn, self._id).all()}
            self._store._put(queue_txn, [d for d in deliveries if d.delivery_id in present])
            if state is not None:
                with self._store._txn() as txn:
                    table = self._store._endpoints(txn)
                    table.update({"state": state}, Query().endpoint_id == self._id)


class _Marks:
    """The queue's counters (``queue.json``, table ``outbox``).

    ``taken``: the last outbox taken in; ``seq``: the last place in order
    given. A document's id cannot be its place: TinyDB numbers an emptied
    table from 1 again, and the delivered ones keep theirs.
    """

    def __init__(self, txn: ShardTransaction) -> None:
        self._table = txn.table(_KIND, _QUEUE, _OUTBOX)
        doc = self._table.get(doc_id=1)
        try:
            self.taken = int(doc.get("taken", 0)) if isinstance(doc, dict) else 0
            seq = doc.get("seq") if isinstance(doc, dict) else None
            if seq is None:  # a queue from before the counter: go on after its highest
                root = txn.root
                seq = max(
                    (
                        int(d.get("seq", 0))
                        for e in _endpoint_files(root)
                        for table in (_queue(txn, e), _done(txn, e))
                        for d in table
                    ),
                    default=0,
                )
            self.seq = int(seq)
        except (TypeError, ValueError) as err:
            raise LedgerCorruptError("ledger is damaged: the webhook queue's marks") from err

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


def _at_of(path: Path) -> int:
    name = path.stem.removeprefix(_OUTBOX_PREFIX)
    if len(name) != _NAME_DIGITS or not name.isdigit():
        raise LedgerCorruptError(f"ledger is damaged: stray webhook outbox file {path.name}")
    return int(name)


def _put_rows(
    queue: Table, done: Table, rows: Sequence[Delivery], next_seq: Callable[[], int]
) -> None:
    """Queue new rows of one endpoint, or replace them by id (delivered ones go to ``done``)."""
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
        done.insert_multiple(d.to_doc() for d in delivered)
        _trim(done)
    for d in rows:
        if d.status == DeliveryStatus.DELIVERED:
            continue
        if d.delivery_id in queued:
            queue.update(_whole(d.to_doc()), doc_ids=[queued[d.delivery_id]])
        else:
            queue.insert({**d.to_doc(), "seq": d.seq or next_seq()})


def _split_shared_files(txn: ShardTransaction, root: Path) -> None:
    """Move a queue written before one file per endpoint (``queue.json``/``done.json``) apart."""
    shared = [k for k in (_QUEUE, _DONE) if (root / _KIND / f"{k}.json").exists()]
    for kind in shared:
        table = txn.table(_KIND, kind)
        docs = table.all()
        if not docs:
            continue
        for doc in sorted(docs, key=lambda d: d.get("seq", 0)):
            target = _queue if kind == _QUEUE else _done
            target(txn, str(doc.get("endpoint_id"))).insert(dict(doc))
        table.truncate()
    if (root / _KIND / f"{_DONE}.json").exists():
        txn.commit()
        with contextlib.suppress(OSError):
            os.unlink(root / _KIND / f"{_DONE}.json")


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
