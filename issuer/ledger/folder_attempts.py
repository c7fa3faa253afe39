"""A ledger folder's rate-limit counters: ``attempts/XYZ.json``, bucket -> times of its failures.

One concern: keeping each client bucket's recent failure times, sharded by
the bucket's hash like the licenses. Whether a client is at its limit, and
which refusals count, is decided above the ledger
(:mod:`issuer.policy.ratelimit`); every call here runs in the caller's
locked :class:`~issuer.ledger.shards.ShardTransaction` (the folder is
locked whole, so every read is a locked read).

Example:
    >>> attempts = FolderAttempts(Path("ledger"), shard_width=3)  # doctest: +SKIP
    >>> attempts.failures(txn, "ip:198.51.100.7", since=0.0)  # doctest: +SKIP
    [1767225600.0]
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from tinydb import Query
from tinydb.table import Table

from issuer.ledger.folder_layout import ATTEMPTS, shard
from issuer.ledger.shards import ShardTransaction

__all__ = ["FolderAttempts"]


class FolderAttempts:
    """The failure counts of every rate-limit bucket of one ledger folder.

    Args:
        folder: the ledger folder.
        shard_width: hex digits per shard name (the ledger's recorded layout).
    """

    def __init__(self, folder: Path, *, shard_width: int) -> None:
        self.folder = folder
        self._width = shard_width

    def recent(self, txn: ShardTransaction, since: float) -> dict[str, list[float]]:
        """Buckets with failures after ``since`` (epoch seconds): bucket -> times, oldest first."""
        found: dict[str, list[float]] = {}
        for table in self._tables(txn):
            for doc in table.all():
                recent = _recent(doc, since)
                if recent and isinstance(doc.get("bucket"), str):
                    found[doc["bucket"]] = recent
        return found

    def forget(self, txn: ShardTransaction, matches: Callable[[str], bool]) -> list[str]:
        """Forget every bucket ``matches`` accepts; returns them, sorted (not committed)."""
        forgotten: list[str] = []
        for table in self._tables(txn):
            for doc in table.all():
                bucket = doc.get("bucket")
                if isinstance(bucket, str) and matches(bucket):
                    table.remove(doc_ids=[doc.doc_id])
                    forgotten.append(bucket)
        return sorted(forgotten)

    def failures(self, txn: ShardTransaction, bucket: str, since: float) -> list[float]:
        """The bucket's failure times after ``since``, oldest first."""
        return _recent(self._table(txn, bucket).get(Query().bucket == bucket), since)

    def record(
        self, txn: ShardTransaction, bucket: str, stamps: list[float], *, forget_before: float
    ) -> None:
        """Keep ``stamps`` as the bucket's failures; forget idle buckets of its shard."""
        table = self._table(txn, bucket)
        for doc in table.all():  # forget what has left the window, whoever it was
            if doc.get("bucket") != bucket and not _recent(doc, forget_before):
                table.remove(doc_ids=[doc.doc_id])
        table.upsert({"bucket": bucket, "at": stamps}, Query().bucket == bucket)

    def _tables(self, txn: ShardTransaction) -> list[Table]:
        folder = self.folder / ATTEMPTS
        shards = sorted(folder.glob("*.json")) if folder.is_dir() else []
        return [txn.table(ATTEMPTS, path.stem) for path in shards]

    def _table(self, txn: ShardTransaction, bucket: str) -> Table:
        (self.folder / ATTEMPTS).mkdir(mode=0o700, exist_ok=True)  # ledgers made before it
        return txn.table(ATTEMPTS, shard(bucket, self._width))


def _recent(doc: Any, horizon: float) -> list[float]:
    """The attempt times of an attempts document still inside the window, oldest first."""
    stamps = doc.get("at") if isinstance(doc, dict) else None
    if not isinstance(stamps, list):
        return []
    return sorted(t for t in stamps if isinstance(t, int | float) and t > horizon)
