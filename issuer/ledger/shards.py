"""The folder ledger's files: strict reads, and multi-shard transactions under a journal.

A TinyDB shard lives for one transaction (:class:`ShardStorage`): read once
under the ledger's lock, written only when the transaction commits. A commit
that touches several files first writes them all to ``journal.json`` (a
header line naming each file and its length, then their bytes as they are);
the next transaction replays it (:func:`replay_journal`) if a process died half
way, so the indexes and the licenses always agree. A missing, empty,
truncated or oversized file is damage, never an empty ledger.

Example:
    >>> txn = ShardTransaction(Path("ledger"))  # doctest: +SKIP
    >>> txn.table("licenses", "a3f").all()  # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path
from typing import Any

from tinydb import TinyDB
from tinydb.storages import Storage
from tinydb.table import Table

from issuer.errors import LedgerCorruptError, LedgerWriteError
from verifier.fileio import atomic_write, fsync_dir, os_error_words

__all__ = [
    "JOURNAL_FILE",
    "JOURNAL_MAGIC",
    "MAX_FILE",
    "ShardStorage",
    "ShardTransaction",
    "journal_bytes",
    "journal_files",
    "parse",
    "parse_shard",
    "read_json",
    "read_raw",
    "replay_journal",
    "table_docs",
]

JOURNAL_FILE = "journal.json"
MAX_FILE = 64 * 1024 * 1024


def read_raw(path: Path, what: str) -> bytes | None:
    """Read a ledger file: ``None`` if absent; empty or oversized is damage."""
    try:
        with open(path, "rb") as handle:
            # A read of MAX_FILE + 1 bytes would reserve that much at every read (64 MiB).
            size = os.fstat(handle.fileno()).st_size
            data = handle.read(min(size, MAX_FILE) + 1)
    except FileNotFoundError:
        return None
    except OSError as err:
        raise LedgerCorruptError(
            f"cannot read ledger {what} {path}: {os_error_words(err)}"
        ) from err
    if not data.strip():
        raise LedgerCorruptError(f"ledger {what} {path} is empty — restore it from a backup")
    if len(data) > MAX_FILE:
        raise LedgerCorruptError(f"ledger {what} {path} is too large")
    return data


def parse(data: bytes, path: Path, what: str) -> Any:
    """Parse a ledger file read with :func:`read_raw`; anything but JSON is damage."""
    try:
        return json.loads(data)
    except ValueError as err:
        raise LedgerCorruptError(
            f"ledger {what} {path} is truncated or not JSON — restore it from a backup"
        ) from err


def parse_shard(data: bytes | None, path: Path) -> dict[str, Any] | None:
    """Parse a shard read with :func:`read_raw` (``None``: no file); not tables is damage."""
    parsed = None if data is None else parse(data, path, "shard")
    if parsed is not None and not (
        isinstance(parsed, dict) and all(isinstance(t, dict) for t in parsed.values())
    ):
        raise LedgerCorruptError(f"ledger shard {path} is not a TinyDB document")
    return parsed


def table_docs(data: bytes | None, path: Path, table: str) -> list[Any]:
    """The documents of one table of a shard read as bytes (none: no file, no table)."""
    found = (parse_shard(data, path) or {}).get(table, {})
    if not all(isinstance(d, dict) for d in found.values()):
        raise LedgerCorruptError(f"ledger shard {path} is not a TinyDB document")
    return list(found.values())


def read_json(path: Path, what: str) -> Any:
    """Read and parse a ledger file: ``None`` if absent; damage of any kind is an error."""
    data = read_raw(path, what)
    return None if data is None else parse(data, path, what)


#: The first line of a journal; what follows is a JSON line of ``[file, length]``
#: pairs, then the files' bytes, one after the other.
JOURNAL_MAGIC = b"licet-journal 2\n"
_DAMAGED_JOURNAL = "ledger journal is damaged — restore the ledger from a backup"


def journal_bytes(files: list[tuple[str, bytes]]) -> bytes:
    """A journal of ``(file, bytes)`` pairs, the files relative to the ledger.

    The bytes are kept as they are, not as JSON text: a change's journal
    copies every file it writes, the audit-log page included, and as text
    every quote in them was escaped once more (a third of a change's JSON work).
    """
    header = json.dumps([[rel, len(content)] for rel, content in files]).encode()
    return b"".join([JOURNAL_MAGIC, header, b"\n", *(content for _, content in files)])


def journal_files(data: bytes, path: Path) -> list[tuple[str, bytes]]:
    """The ``(file, bytes)`` pairs of a journal read with :func:`read_raw`.

    A journal written before the bytes were kept as they are (JSON,
    ``{"files": {file: text}}``) is read too: it may wait in a ledger
    whose process died before an upgrade.

    Raises:
        LedgerCorruptError: the journal is damaged.
    """
    if not data.startswith(JOURNAL_MAGIC):
        old = parse(data, path, "journal")
        files = old.get("files") if isinstance(old, dict) else None
        if not isinstance(files, dict) or not all(isinstance(v, str) for v in files.values()):
            raise LedgerCorruptError(_DAMAGED_JOURNAL)
        return [(rel, text.encode()) for rel, text in files.items()]
    header, newline, rest = data[len(JOURNAL_MAGIC) :].partition(b"\n")
    try:
        entries = json.loads(header)
    except ValueError:
        entries = None
    if not (
        newline
        and isinstance(entries, list)
        and all(
            isinstance(e, list)
            and len(e) == 2
            and isinstance(e[0], str)
            and type(e[1]) is int
            and e[1] >= 0
            for e in entries
        )
        and sum(e[1] for e in entries) == len(rest)
    ):
        raise LedgerCorruptError(_DAMAGED_JOURNAL)
    files, at = [], 0
    for rel, size in entries:
        files.append((rel, rest[at : at + size]))
        at += size
    return files


class ShardStorage(Storage):
    """TinyDB storage for one shard within one transaction.

    Reads the file once; writes stay in memory until the transaction commits
    them all together.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.dirty = False
        self.original: bytes | None = None  # the bytes on disk before this transaction
        self._data: dict[str, Any] | None = None
        self._loaded = False

    def read(self) -> dict[str, Any] | None:  # noqa: D102 - TinyDB's Storage
        if not self._loaded:
            self.original = read_raw(self.path, "shard")
            self._data, self._loaded = parse_shard(self.original, self.path), True
        return self._data

    def write(self, data: dict[str, Any]) -> None:  # noqa: D102 - TinyDB's Storage
        self._data, self.dirty = data, True

    def serialized(self) -> bytes:
        """The shard as it will be written."""
        return json.dumps(self._data, separators=(",", ":"), sort_keys=True).encode()

    def close(self) -> None:  # noqa: D102 - TinyDB's Storage
        pass


class ShardTransaction:
    """The shards one locked operation reads and writes, committed together."""

    def __init__(self, root: Path, journal: str = JOURNAL_FILE) -> None:
        self.root = root
        self._journal = journal  # relative to root: a second lock keeps a journal of its own
        self._dbs: dict[str, TinyDB] = {}

    def table(self, kind: str, shard: str, name: str | None = None) -> Table:
        """The TinyDB table of one shard (``name``: another table of its file, default ``kind``).

        Each file is read at most once per transaction.
        """
        rel = f"{kind}/{shard}.json"
        db = self._dbs.get(rel)
        if db is None:
            db = self._dbs[rel] = TinyDB(self.root / rel, storage=ShardStorage)
        return db.table(name or kind)

    def commit(self, journal: bool = True) -> None:
        """Write every changed shard; on any failure, put the previous bytes back.

        Raises:
            OSError: the write failed and was undone: the ledger is as before.
            LedgerWriteError: the write failed and could not be undone either.
        """
        dirty = [
            db.storage
            for db in self._dbs.values()
            if isinstance(db.storage, ShardStorage) and db.storage.dirty
        ]
        journal = journal and len(dirty) > 1
        data = [s.serialized() for s in dirty]  # once each: encoding is most of a commit's CPU
        if journal:
            files = [
                (str(s.path.relative_to(self.root)), b) for s, b in zip(dirty, data, strict=True)
            ]
            try:
                atomic_write(self.root / self._journal, journal_bytes(files))
            except OSError:
                # A failed folder fsync can follow a successful rename: never leave
                # behind a journal that the next operation would replay.
                with contextlib.suppress(OSError):
                    os.unlink(self.root / self._journal)
                raise
        touched: list[ShardStorage] = []
        try:
            for storage, blob in zip(dirty, data, strict=True):
                touched.append(storage)  # before the write: a failed fsync may follow a rename
                atomic_write(storage.path, blob, sync_dir=False)
            # Each folder once, after all its renames: the change is durable only now.
            for folder in dict.fromkeys(s.path.parent for s in dirty):
                fsync_dir(folder)
        except OSError:
            self._undo(touched, journal)
            raise
        # On disk now: a later commit of this transaction skips them.
        for storage, blob in zip(dirty, data, strict=True):
            storage.original, storage.dirty = blob, False
        if journal:
            # Every file is durably in place: the change has happened. Removing the
            # journal is housekeeping; if it fails, a replay rewrites the same bytes.
            with contextlib.suppress(OSError):
                os.unlink(self.root / self._journal)
                fsync_dir((self.root / self._journal).parent)

    def _undo(self, touched: list[ShardStorage], journal: bool) -> None:
        try:
            for storage in touched:
                if storage.original is None:
                    with contextlib.suppress(FileNotFoundError):
                        os.unlink(storage.path)
                else:
                    atomic_write(storage.path, storage.original)
        except OSError as err:
            raise LedgerWriteError(
                f"could not write the ledger {self.root} and could not undo the partial write "
                f"({os_error_words(err, writing=True)}); "
                + (
                    "the journal will complete the change at the next operation"
                    if journal
                    else "check the disk before going on"
                )
            ) from err
        if journal:  # only once every file is back may the journal go
            with contextlib.suppress(OSError):
                os.unlink(self.root / self._journal)
                fsync_dir((self.root / self._journal).parent)


def replay_journal(folder: Path, journal_file: str = JOURNAL_FILE) -> None:
    """Complete a multi-file change a dead process left half-applied.

    Raises:
        LedgerWriteError: the replay cannot write (the journal stays for the next try).
    """
    path = folder / journal_file
    journal = read_raw(path, "journal")
    if journal is None:
        return
    targets = []
    for rel, content in journal_files(journal, path):
        target = (folder / rel).resolve()
        if folder.resolve() not in target.parents:
            raise LedgerCorruptError("ledger journal names a file outside the ledger")
        targets.append((target, content))
    try:
        for target, content in targets:
            atomic_write(target, content)
        os.unlink(path)
        fsync_dir(path.parent)
    except OSError as err:
        raise LedgerWriteError(
            f"cannot complete an interrupted change of the ledger {folder}: "
            f"{os_error_words(err, writing=True)}; nothing else was changed, "
            "and the next operation tries again"
        ) from err
