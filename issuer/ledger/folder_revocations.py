"""A ledger folder's revocation list: ``revocations/list.json`` and ``revocations/serial.json``.

One concern: keeping the list's entries and its serial as it is told.
``serial.json`` holds the serial alone, so that it can be read without the
ledger's lock before every answer of the list; ledgers from before that file
kept the serial in ``list.json``, and it moves at the next change. What a
change adds to the list and when an entry may go are decided above the
ledger (:mod:`issuer.policy.revocations`); the calls here that write run in
the caller's locked :class:`~issuer.ledger.shards.ShardTransaction`.

Example:
    >>> lists = FolderRevocations(Path("ledger"))  # doctest: +SKIP
    >>> lists.serial()  # doctest: +SKIP
    3
"""

from __future__ import annotations

import datetime as _dt
from pathlib import Path
from typing import Any

from issuer.errors import LedgerCorruptError, LedgerExistsError
from issuer.ledger.folder_layout import REVOCATIONS, REVOCATIONS_SHARD, SERIAL_SHARD
from issuer.ledger.shards import ShardTransaction, read_json
from issuer.records import RevocationEntry

__all__ = ["FolderRevocations"]


class FolderRevocations:
    """The revocation list of one ledger folder.

    Args:
        folder: the ledger folder.
    """

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def listed(self, txn: ShardTransaction) -> tuple[int, list[RevocationEntry]]:
        """The serial and the entries (expired ones included), read under the lock.

        A ledger from before ``serial.json`` is given one here (committed at
        once), so the next answers of the list learn the serial without the lock.
        """
        serial = self._locked_serial(txn)
        entries = [
            RevocationEntry.from_doc(doc)
            for doc in txn.table(REVOCATIONS, REVOCATIONS_SHARD).all()
            if doc.get("kind") != "serial"
        ]
        if serial and not self._serial_path().exists():
            self._save_serial(txn, serial)
            txn.commit()
        return serial, entries

    def serial(self) -> int | None:
        """The serial from ``serial.json``, read without the lock.

        Every change writes that small file by an atomic rename, so a reader
        sees the serial before or after a change, never a torn one. ``None``
        for a ledger from before the file, until :meth:`listed` adds it.

        Raises:
            LedgerCorruptError: the file is damaged.
        """
        doc = read_json(self._serial_path(), "file")
        if doc is None:
            list_file = self.folder / REVOCATIONS / f"{REVOCATIONS_SHARD}.json"
            return None if list_file.exists() else 0  # nothing was ever revoked
        rows = doc.get(REVOCATIONS) if isinstance(doc, dict) else None
        if not isinstance(rows, dict) or len(rows) != 1:
            raise LedgerCorruptError(f"ledger file {self._serial_path()} is damaged")
        return _serial_of(next(iter(rows.values())))

    def restore(self, txn: ShardTransaction, serial: int, entries: list[RevocationEntry]) -> None:
        """Give a new, empty ledger a copied list (committed at once).

        Raises:
            LedgerExistsError: the ledger has a revocation list already.
        """
        (self.folder / REVOCATIONS).mkdir(mode=0o700, exist_ok=True)
        table = txn.table(REVOCATIONS, REVOCATIONS_SHARD)
        if table.all() or self._locked_serial(txn):
            raise LedgerExistsError("the ledger has a revocation list already")
        table.insert_multiple([e.to_doc() for e in entries])
        self._save_serial(txn, serial)
        txn.commit()

    def revoke(
        self, txn: ShardTransaction, entries: list[RevocationEntry], now: _dt.datetime
    ) -> None:
        """Move the list to its next serial, add ``entries``, drop those that ended by ``now``."""
        (self.folder / REVOCATIONS).mkdir(mode=0o700, exist_ok=True)  # ledgers made before it
        serial = self._locked_serial(txn)
        table = txn.table(REVOCATIONS, REVOCATIONS_SHARD)
        kept = [
            dict(doc)
            for doc in table.all()
            if doc.get("kind") != "serial" and RevocationEntry.from_doc(doc).until > now
        ]
        kept.extend(e.to_doc() for e in entries)
        table.truncate()  # a serial kept here by older ledgers goes: serial.json holds it
        table.insert_multiple(kept)
        self._save_serial(txn, serial + 1)

    def _serial_path(self) -> Path:
        return self.folder / REVOCATIONS / f"{SERIAL_SHARD}.json"

    def _locked_serial(self, txn: ShardTransaction) -> int:
        """The serial under the lock: ``serial.json``, else where older ledgers kept it."""
        for shard in (SERIAL_SHARD, REVOCATIONS_SHARD):
            for doc in txn.table(REVOCATIONS, shard).all():
                if doc.get("kind") == "serial":
                    return _serial_of(doc)
        return 0

    def _save_serial(self, txn: ShardTransaction, serial: int) -> None:
        table = txn.table(REVOCATIONS, SERIAL_SHARD)
        table.truncate()
        table.insert({"kind": "serial", "serial": serial})


def _serial_of(doc: Any) -> int:
    serial = doc.get("serial")
    if type(serial) is not int or serial < 0:
        raise LedgerCorruptError("ledger is damaged: the revocation serial is malformed")
    return serial
