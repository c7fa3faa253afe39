"""A folder ledger's webhook endpoints and delivery queue (TinyDB files under ``webhooks/``).

Layout::

    webhooks/endpoints.json   the endpoints, with their secrets
    webhooks/queue.json       deliveries not yet delivered (pending and failed);
                              the document id is the delivery's place in order
    webhooks/done.json        delivered ones, the latest 50 of each endpoint
    webhooks/WH-....lock      held (flock) by the one deliverer sending for that endpoint

Every read and write runs in the ledger's transaction under its lock, so a
queued delivery commits with the change that caused it. A deliverer holds
an endpoint's lock file while it sends, not the ledger's lock: activations
never wait for a receiver.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from tinydb import Query
from tinydb.table import Table

from issuer.errors import WebhookNotFoundError
from issuer.ledger.shards import ShardTransaction
from issuer.ledger.webhook_api import SendClaim, WebhookStorage
from issuer.records import Event
from issuer.webhook_records import Delivery, DeliveryStatus, Endpoint

#: Opens the ledger's locked transaction (``Ledger._transaction``).
Transaction = Callable[[], contextlib.AbstractContextManager[ShardTransaction]]
#: Logs an audit event in a transaction (``Ledger._log``).
Log = Callable[[ShardTransaction, Event], None]

__all__ = ["FolderWebhooks", "enqueue", "read_endpoints"]

_KIND = "webhooks"
_ENDPOINTS, _QUEUE, _DONE = "endpoints", "queue", "done"
_KEEP_DONE = 50


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


def enqueue(
    txn: ShardTransaction,
    root: Path,
    deliveries: Sequence[Delivery],
    cursors: Sequence[int],
) -> None:
    """Append deliveries to the queue; ``cursors``: those of the transaction's logged events."""
    if not deliveries:
        return
    table = _queue(txn, root)
    for d in deliveries:
        cursor = cursors[d.index] if cursors and d.event_cursor is None else d.event_cursor
        doc_id = table.insert({**d.to_doc(), "event_cursor": cursor})
        table.update({"seq": doc_id}, doc_ids=[doc_id])


class FolderWebhooks(WebhookStorage):
    """The webhook storage of one folder ledger.

    Args:
        root: the ledger folder.
        transaction: opens the ledger's locked transaction.
        log: logs an audit event in a transaction.
    """

    def __init__(self, root: Path, transaction: Transaction, log: Log) -> None:
        self._root = root
        self._transaction = transaction
        self._log = log

    @contextlib.contextmanager
    def _txn(self) -> Iterator[ShardTransaction]:
        with self._transaction() as txn:
            yield txn
            txn.commit()

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
        """Replace an endpoint, log ``event``, and keep ``reopen``'s rows."""
        with self._txn() as txn:
            table = self._endpoints(txn)
            if not table.contains(Query().endpoint_id == endpoint.endpoint_id):
                raise WebhookNotFoundError(f"no webhook endpoint {endpoint.endpoint_id}")
            table.update(_whole(endpoint.to_doc()), Query().endpoint_id == endpoint.endpoint_id)
            self._put(txn, reopen)
            self._log(txn, event)

    def remove_endpoint(self, endpoint_id: str, event: Event) -> None:
        """Remove an endpoint and its deliveries; log ``event``."""
        with self._txn() as txn:
            table = self._endpoints(txn)
            if not table.remove(Query().endpoint_id == endpoint_id):
                raise WebhookNotFoundError(f"no webhook endpoint {endpoint_id}")
            _queue(txn, self._root).remove(Query().endpoint_id == endpoint_id)
            txn.table(_KIND, _DONE).remove(Query().endpoint_id == endpoint_id)
            self._log(txn, event)
        with contextlib.suppress(OSError):
            os.unlink(self._root / _KIND / f"{endpoint_id}.lock")

    def deliveries(
        self, endpoint_id: str, *, limit: int, undelivered: bool = False
    ) -> list[Delivery]:
        """An endpoint's deliveries, newest first."""
        with self._txn() as txn:
            if not (self._root / _KIND).is_dir():
                return []
            docs = list(_queue(txn, self._root).search(Query().endpoint_id == endpoint_id))
            if not undelivered:
                docs += txn.table(_KIND, _DONE).search(Query().endpoint_id == endpoint_id)
        found = sorted((Delivery.from_doc(d) for d in docs), key=lambda d: d.seq, reverse=True)
        return found[:limit]

    def delivery(self, delivery_id: str) -> Delivery | None:
        """The delivery with this id."""
        with self._txn() as txn:
            if not (self._root / _KIND).is_dir():
                return None
            for kind in (_QUEUE, _DONE):
                doc = txn.table(_KIND, kind).get(Query().delivery_id == delivery_id)
                if isinstance(doc, dict):
                    return Delivery.from_doc(doc)
        return None

    def put(self, deliveries: Sequence[Delivery]) -> None:
        """Queue new deliveries, or replace existing ones by id."""
        with self._txn() as txn:
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
        with self._txn() as txn:
            if endpoints:
                self._endpoints(txn).insert_multiple(e.to_doc() for e in endpoints)
            ordered = sorted(deliveries, key=lambda d: d.seq)
            self._put(txn, [replace(d, seq=0) for d in ordered])

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
        with self._store._txn() as txn:
            docs = _queue(txn, self._store._root).search(
                (Query().endpoint_id == self._id) & (Query().status == DeliveryStatus.PENDING)
            )
        return sorted((Delivery.from_doc(d) for d in docs), key=lambda d: d.seq)[:limit]

    def record(self, deliveries: Sequence[Delivery], *, state: str | None) -> None:
        with self._store._txn() as txn:
            if state is not None:
                table = self._store._endpoints(txn)
                table.update({"state": state}, Query().endpoint_id == self._id)
            # A delivery dropped meanwhile (its endpoint removed) is not brought back.
            queue = _queue(txn, self._store._root)
            present = {doc.get("delivery_id") for doc in queue.all()}
            self._store._put(txn, [d for d in deliveries if d.delivery_id in present])


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
