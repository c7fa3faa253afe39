"""The activation ledger: TinyDB files that never lose a record.

Layout of a ledger folder (the files are the ledger's own business)::

    ledger.json        what this is: format, version, provider, key-secret check,
                       shard layout
    ledger.lock        the inter-process lock (flock)
    journal.json       present only while a multi-file change is being applied
    licenses/XYZ.json  TinyDB shard: licenses whose id hashes to XYZ
    keys/XYZ.json      TinyDB shard: key hash -> license id
    ips/XYZ.json       TinyDB shard: assigned IP -> license id
    index/head.json    how many licenses and audit events there are
    index/NNNNNN.json  license summaries in creation order, 256 per page
    events/NNNNNN.json the one audit log of every change, 256 events per page
    accounts/*.json    console users and API tokens (hashed), sessions, login failures
    revocations/list.json    the revocation list's entries
    revocations/serial.json  its serial alone: read without the lock before every
                             answer of the list (ledgers from before it kept the
                             serial in list.json; it moves at the next change)
    attempts/XYZ.json  TinyDB shard: rate-limit bucket -> times of its recent failures
    products/all.json  every product name the ledger has licensed (for typo checks)

Why pages in creation order: a list or search of licenses reads the pages it
shows (newest first), never every license; a page is rewritten only when one
of its licenses changes.

Why shards: TinyDB rewrites a whole file on every write, so one big file costs
O(ledger) per redemption. With 4096 shards a redemption rewrites one file of a
few dozen licenses whether the ledger holds a thousand licenses or a hundred
thousand.

The layout is the ledger's own record: ``shard_width`` in ``ledger.json`` is
the number of hex digits in a shard's name (3 → 16**3 = 4096 shards per kind,
the default; 1 → 16). The ledger reads it back on every open and never assumes
it, so a ledger keeps its layout whatever the default becomes; a ledger from
before the layout was recorded has the width every ledger then had (3).

Durability: every change runs under an exclusive ``flock`` on ``ledger.lock``,
re-reads its files under that lock (a TinyDB instance lives for one
transaction, so its query cache never answers with stale data), and writes
each file atomically (temporary file, fsync, rename, fsync of the folder).
A change that touches several files (creating a license, regenerating a key)
first writes them all to ``journal.json`` the same way; the journal is
replayed by the next transaction if the process died half-way, so the indexes
and the licenses always agree. A missing, empty, truncated or foreign ledger
is refused — never treated as empty, which would make used keys usable again.

The backend is one room per concern, and this module is its licenses:
:class:`Ledger` opens the folder, holds its lock and keeps licenses and their
key, IP and product indexes, and hands the rest to parts that share its lock
and transactions — :mod:`~issuer.ledger.folder_layout` (file names, shards,
``ledger.json``), :mod:`~issuer.ledger.folder_log` (index pages and the audit
log), :mod:`~issuer.ledger.folder_revocations`,
:mod:`~issuer.ledger.folder_attempts` (rate-limit counters) and
:mod:`~issuer.ledger.folder_accounts`, the folder's
:class:`~issuer.ledger.api.AccountStore` (:attr:`Ledger.account_store`).

Example:
    >>> ledger = Ledger("ledger")  # doctest: +SKIP
    >>> ledger.get("LIC-7K3QM9XW2D")  # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import os
from collections.abc import Callable, Iterator, MutableMapping, Sequence
from pathlib import Path
from typing import Any

from tinydb import Query

from issuer.errors import (
    LedgerBusyError,
    LedgerCorruptError,
    LedgerError,
    LedgerExistsError,
    LedgerMissingError,
    LedgerUnavailableError,
    LedgerWriteError,
)
from issuer.ledger.api import DEFAULT_LEASE_DAYS, DEFAULT_SHARD_WIDTH, FORMAT, LedgerBackend
from issuer.ledger.changes import plan
from issuer.ledger.folder_accounts import FolderAccounts, restore_accounts
from issuer.ledger.folder_attempts import FolderAttempts
from issuer.ledger.folder_layout import (
    ALL,
    HEAD,
    IPS,
    KEYS,
    KINDS,
    LOCK_FILE,
    META_FILE,
    POS,
    PRODUCTS,
    SHARD_WIDTHS,
    VERSION,
    check_creatable,
    create_files,
    key_shard,
    read_info,
)
from issuer.ledger.folder_layout import INDEX as _INDEX
from issuer.ledger.folder_layout import LICENSES as _LICENSES
from issuer.ledger.folder_layout import PAGE as _PAGE
from issuer.ledger.folder_layout import page_name as _page_name
from issuer.ledger.folder_layout import shard as _shard
from issuer.ledger.folder_log import (
    append_events,
    append_summary,
    build_index,
    log_event,
    may_contain,
    raw_needle,
    read_events,
    read_head,
    save_head,
)
from issuer.ledger.folder_revocations import FolderRevocations
from issuer.ledger.shards import ShardTransaction, replay_journal
from issuer.ledger.webhooks_folder import FolderWebhooks, read_endpoints
from issuer.ledger.webhooks_outbox import enqueue
from issuer.records import (
    Account,
    LicenseQuery,
    LicenseRecord,
    LicenseSummary,
    LoggedEvent,
    RevocationEntry,
)
from issuer.webhook_records import Delivery, Endpoint
from verifier.errors import BadInputError, LicenseNotFoundError
from verifier.fileio import LockTimeout, file_lock, os_error_words

__all__ = ["LOCK_FILE", "META_FILE", "Ledger"]

# The health check waits this long for the lock, and tells a balancer to look again after:
# a lock held longer than a second is a node that would keep its clients waiting.
_HEALTH_WAIT = 1.0
_HEALTH_RETRY = 2


Placement = tuple[str, str, dict[str, Any]]  # kind, shard, document


def _key_placement(record: LicenseRecord, width: int) -> Placement:
    return (
        KEYS,
        key_shard(record.key_hash, width),
        {"key_hash": record.key_hash, "license_id": record.license_id},
    )


def _ip_placement(ip: str, license_id: str, width: int) -> Placement:
    return (IPS, _shard(ip, width), {"ip": ip, "license_id": license_id})


def _placements(record: LicenseRecord, width: int, position: int) -> list[Placement]:
    """Where a new license and its index entries are stored."""
    doc = {**record.to_doc(), POS: position}
    placed = [(_LICENSES, _shard(record.license_id, width), doc), _key_placement(record, width)]
    if record.ip is not None:
        placed.append(_ip_placement(record.ip, record.license_id, width))
    return placed


class Ledger(LedgerBackend):
    """The provider's licenses and activations in one ledger folder.

    Args:
        folder: the ledger folder (made by :meth:`create`).
        lock_timeout: seconds to wait for another process before giving up.

    Raises:
        LedgerMissingError: no ledger in ``folder``.
        LedgerCorruptError: ``ledger.json`` is damaged or not a licet ledger.
    """

    def __init__(self, folder: str | os.PathLike[str], *, lock_timeout: float = 10.0) -> None:
        self.folder = Path(folder)
        self.location = str(folder)
        self._lock_timeout = lock_timeout
        self.info = read_info(self.folder)
        self.account_store = FolderAccounts(self._transaction)
        self._revocations = FolderRevocations(self.folder)
        self._attempts = FolderAttempts(self.folder, shard_width=self.info.shard_width)
        for kind in KINDS:  # ledgers made before the index, the audit log and accounts
            with contextlib.suppress(FileExistsError):
                (self.folder / kind).mkdir(mode=0o700)

    @classmethod
    def create(
        cls,
        folder: str | os.PathLike[str],
        *,
        provider: str,
        secret_check: str,
        now: _dt.datetime,
        shard_width: int = DEFAULT_SHARD_WIDTH,
        lease_days: int = DEFAULT_LEASE_DAYS,
        accept_machine_id: bool = True,
    ) -> Ledger:
        """Create a new, empty ledger; never overwrites one.

        Args:
            folder: where the ledger goes (a new or empty folder).
            provider: the provider name tokens are issued under.
            secret_check: identifies the activation-key secret.
            now: the creation time.
            shard_width: hex digits per shard name, 1-4 (16**width shards per
                kind); recorded in the ledger, which keeps it for good.
            lease_days: the provider's default lease, kept in the ledger.
            accept_machine_id: the default for licenses that do not say whether
                activations with a custom machine id are accepted.

        Raises:
            LedgerExistsError: ``folder`` already holds a ledger or other files.
            BadInputError: a shard width outside 1-4.
        """
        if type(shard_width) is not int or shard_width not in SHARD_WIDTHS:
            raise BadInputError(
                f"shard width must be a whole number from {SHARD_WIDTHS[0]} to {SHARD_WIDTHS[-1]}"
            )
        root = Path(folder)
        cls.check_creatable(root)
        meta = {
            "format": FORMAT,
            "version": VERSION,
            "provider": provider,
            "created_at": now.isoformat(),
            "secret_check": secret_check,
            "shard_width": shard_width,
            "lease_days": lease_days,
            "accept_machine_id": accept_machine_id,
        }
        create_files(root, meta)
        ledger = cls(root)
        with ledger._transaction():
            pass  # writes the (empty) index head
        return ledger

    def webhooks(self) -> FolderWebhooks:
        """The webhook endpoints and delivery queue (``webhooks/``)."""
        return FolderWebhooks(self.folder, self._transaction, log_event, self._lock_timeout)

    def protected_paths(self) -> tuple[Path, ...]:
        """The ledger folder: an output file never goes into it."""
        return (self.folder,)

    @staticmethod
    def check_creatable(folder: str | os.PathLike[str]) -> None:
        """Refuse, before anything is written, a folder :meth:`create` would refuse.

        Raises:
            LedgerExistsError: ``folder`` already holds a ledger or other files.
        """
        check_creatable(Path(folder))

    # -- reads ------------------------------------------------------------------

    def get(self, license_id: str) -> LicenseRecord:
        """The license with this id.

        Raises:
            LicenseNotFoundError: no such license.
        """
        with self._transaction() as txn:
            return self._load(txn, license_id)

    def licenses(self) -> list[LicenseRecord]:
        """Every license, oldest first."""
        with self._transaction() as txn:
            records: list[LicenseRecord] = []
            for path in sorted((self.folder / _LICENSES).glob("*.json")):
                records.extend(
                    LicenseRecord.from_doc(doc) for doc in txn.table(_LICENSES, path.stem).all()
                )
        return sorted(records, key=lambda r: (r.created_at, r.license_id))

    def licenses_for_ip(self, ip: str) -> list[LicenseRecord]:
        """The licenses assigned to ``ip`` (for automatic activation)."""
        with self._transaction() as txn:
            ids = [
                doc["license_id"]
                for doc in txn.table(IPS, self._shard(ip)).search(Query().ip == ip)
            ]
            return [r for r in (self._load(txn, i) for i in ids) if r.ip == ip]

    def products(self) -> frozenset[str]:
        """Every product name the ledger has a license for (or had: revoked ones count)."""
        with self._transaction() as txn:
            return self._products(txn)

    def failed_attempts(self, *, since: _dt.datetime) -> dict[str, list[float]]:
        """Rate-limit buckets with failures after ``since``: bucket -> times, oldest first."""
        with self._transaction() as txn:
            return self._attempts.recent(txn, since.timestamp())

    def revocations(self) -> tuple[int, list[RevocationEntry]]:
        """The revocation list's serial and its entries (expired ones included)."""
        with self._transaction() as txn:
            return self._revocations.listed(txn)

    def check_writable(self) -> None:
        """The folder is writable and its lock is taken within a second (then let go at once)."""
        if not os.access(self.folder, os.W_OK):
            raise LedgerUnavailableError(
                f"the ledger folder {self.folder} is not writable", retry_after=_HEALTH_RETRY
            )
        try:
            with file_lock(self.folder / LOCK_FILE, min(self._lock_timeout, _HEALTH_WAIT)):
                pass
        except LockTimeout:
            raise LedgerUnavailableError(
                f"the ledger's lock stayed taken for {_HEALTH_WAIT:g} s", retry_after=_HEALTH_RETRY
            ) from None
        except OSError as err:
            raise LedgerUnavailableError(
                f"cannot use the ledger {self.folder}: {os_error_words(err, writing=True)}",
                retry_after=_HEALTH_RETRY,
            ) from err

    def revocation_serial(self) -> int | None:
        """The revocation list's serial from ``serial.json``, read without the lock.

        ``None`` for a ledger from before that file, until :meth:`revocations` adds it.
        """
        return self._revocations.serial()

    # -- changes ----------------------------------------------------------------

    def restore_revocations(self, serial: int, entries: list[RevocationEntry]) -> None:
        """Give a new, empty ledger a copied revocation list (serial and entries).

        Raises:
            LedgerExistsError: the ledger has a revocation list already.
        """
        with self._transaction() as txn:
            self._revocations.restore(txn, serial, entries)

    def forget_attempts(self, matches: Callable[[str], bool]) -> list[str]:
        """Forget the failures of every rate-limit bucket ``matches`` accepts.

        Returns:
            The buckets forgotten (their clients are no longer limited).
        """
        with self._transaction() as txn:
            forgotten = self._attempts.forget(txn, matches)
            if forgotten:
                txn.commit()
            return forgotten

    def add_many(self, records: list[LicenseRecord], *, log_history: bool = True) -> None:
        """Bulk import into a new ledger: one lock, each touched file written once.

        With ``log_history`` the licenses' histories are appended to the audit
        log, license by license; a copy leaves that to :meth:`restore_console`.

        Every file is still replaced atomically, but the import as a whole is
        not journaled (a journal of a large import would be as large as the
        ledger): run it on a fresh ledger and re-run it if it is interrupted.
        License shards are written before the indexes, so an interrupted
        import leaves unindexed licenses, never index entries without one.
        """
        with self._transaction() as txn:
            head = read_head(txn)
            self._index_products(txn, self._products(txn), records)
            by_kind: dict[tuple[str, str], list[dict[str, Any]]] = {}
            for record in records:
                position = append_summary(txn, head, LicenseSummary.of(record))
                for kind, shard, doc in _placements(record, self.info.shard_width, position):
                    by_kind.setdefault((kind, shard), []).append(doc)
                if log_history:
                    history = [(e, record.license_id) for e in record.history]
                    append_events(txn, head, history)
            for (kind, shard), docs in sorted(
                by_kind.items(), key=lambda item: item[0][0] != _LICENSES
            ):
                txn.table(kind, shard).insert_multiple(docs)
            save_head(txn, head)
            txn.commit(journal=False)

    # -- the license index and the audit log --------------------------------------

    def page(
        self, query: LicenseQuery, *, before: int | None = None, limit: int = 50
    ) -> tuple[list[LicenseSummary], int | None]:
        """Licenses matching ``query``, newest first, one page at a time.

        Reads the index pages from ``before`` backwards until ``limit`` matches
        (and one more, to know whether there is a next page) are found.

        Args:
            query: the conditions.
            before: the cursor a previous page returned (``None``: start at the newest).
            limit: the most licenses to return.

        Returns:
            The summaries, and the cursor of the next page (``None`` on the last one).
        """
        found: list[tuple[int, LicenseSummary]] = []
        needle = raw_needle(query.needle)
        with self._transaction() as txn:
            total = self._head(txn)["licenses"]
            start = total if before is None else min(before, total)
            position = start - 1
            while position >= 0 and len(found) <= limit:
                floor = position - position % _PAGE
                if needle is not None and not may_contain(
                    self.folder / _INDEX / f"{_page_name(position)}.json", needle
                ):
                    position = floor - 1  # no entry of this page can match: not parsed
                    continue
                page = txn.table(_INDEX, _page_name(position))
                docs = {doc.doc_id - 1: doc for doc in page.all()}
                for here in range(position, floor - 1, -1):
                    doc = docs.get(here)
                    if doc is None:
                        raise LedgerCorruptError(
                            f"ledger is damaged: index entry {here} is missing"
                        )
                    summary = LicenseSummary.from_doc(doc)
                    if query.matches(summary):
                        found.append((here, summary))
                        if len(found) > limit:
                            break
                position = floor - 1
        more = len(found) > limit
        items = found[:limit]
        return [s for _, s in items], (items[-1][0] if more and items else None)

    def events(self, *, after: int = 0, limit: int = 100) -> list[LoggedEvent]:
        """Audit events in the order they happened, from the one after cursor ``after``."""
        with self._transaction() as txn:
            return read_events(txn, after=after, limit=limit)

    def restore_console(self, accounts: list[Account], events: list[LoggedEvent]) -> None:
        """Give a new ledger a copied audit log and console accounts.

        The events keep their order and are numbered 1, 2, 3, ... (a folder's
        log has no gaps; a database's may, where a transaction was undone).

        Raises:
            LedgerExistsError: the ledger has events or accounts already.
        """
        with self._transaction() as txn:
            head = read_head(txn)
            if head["events"]:
                raise LedgerExistsError("the ledger has an event log or accounts already")
            restore_accounts(txn, accounts)
            append_events(txn, head, [(e.event, e.license_id) for e in events])
            save_head(txn, head)
            txn.commit(journal=False)

    # -- internals ----------------------------------------------------------------

    @contextlib.contextmanager
    def transaction(self) -> Iterator[FolderTransaction]:
        """One transaction under the folder's ``flock``: committed (journaled) when the block ends.

        Raises:
            LedgerBusyError: another process held the lock too long.
            LedgerWriteError: a write failed (and was undone).
            LedgerError: the ledger cannot be used.
        """
        with self._transaction() as txn:
            tx = FolderTransaction(self, txn)
            yield tx
            txn.commit()

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[ShardTransaction]:
        with contextlib.ExitStack() as stack:
            try:
                stack.enter_context(file_lock(self.folder / LOCK_FILE, self._lock_timeout))
            except LockTimeout:
                raise LedgerBusyError(
                    f"ledger is busy: another process held the lock for {self._lock_timeout:g} s"
                ) from None
            except FileNotFoundError:
                raise LedgerMissingError(
                    f"the ledger folder {self.folder} is gone (moved or removed?)"
                ) from None
            except OSError as err:  # the lock file cannot be opened for writing
                raise LedgerError(
                    f"cannot use the ledger {self.folder}: {os_error_words(err, writing=True)}"
                ) from err
            read_info(self.folder)  # the ledger may have been removed since we opened it
            replay_journal(self.folder)
            if not (self.folder / _INDEX / f"{HEAD}.json").exists():
                build_index(self.folder)
            try:
                yield ShardTransaction(self.folder)
            except OSError as err:
                raise LedgerWriteError(
                    f"could not write the ledger {self.folder}: "
                    f"{os_error_words(err, writing=True)}; nothing was changed"
                ) from err

    def _shard(self, value: str) -> str:
        return _shard(value, self.info.shard_width)

    def _load(self, txn: ShardTransaction, license_id: str) -> LicenseRecord:
        doc = txn.table(_LICENSES, self._shard(license_id)).get(Query().license_id == license_id)
        if doc is None:
            raise LicenseNotFoundError(f"no license {license_id!r}")
        return LicenseRecord.from_doc(doc)

    def _products(self, txn: ShardTransaction) -> frozenset[str]:
        if not (self.folder / PRODUCTS / f"{ALL}.json").exists():
            # No license yet, or a ledger older than the index: derive it from the
            # licenses (the next new license writes it).
            return frozenset(
                str(doc["product"])
                for path in (self.folder / _LICENSES).glob("*.json")
                for doc in txn.table(_LICENSES, path.stem).all()
            )
        return frozenset(str(doc["name"]) for doc in txn.table(PRODUCTS, ALL).all())

    def _index_products(
        self, txn: ShardTransaction, known: frozenset[str], records: list[LicenseRecord]
    ) -> None:
        new = {r.product for r in records} - known
        if not new:
            return
        if not (self.folder / PRODUCTS / f"{ALL}.json").exists():
            (self.folder / PRODUCTS).mkdir(mode=0o700, exist_ok=True)
            new |= known
        txn.table(PRODUCTS, ALL).insert_multiple({"name": name} for name in sorted(new))

    _head = staticmethod(read_head)  # the name the listing reads the index head by


class FolderTransaction:
    """The transaction verbs over one locked set of shards (see :class:`LedgerTransaction`).

    The whole folder is locked, so every read here is a locked read.
    """

    def __init__(self, ledger: Ledger, txn: ShardTransaction) -> None:
        self._ledger = ledger
        self._txn = txn
        self._known: frozenset[str] | None = None
        self._cursors: list[int] = []  # of the events the last add or replace logged
        self._first: int | None = None  # the first enqueue's first cursor: the outbox's "at"

    def license(
        self, *, license_id: str | None = None, key_hash: str | None = None
    ) -> LicenseRecord | None:
        """The license with this id, or the one ``key_hash`` was ever indexed to."""
        if key_hash is not None:
            return self._record_for_key(key_hash)
        if license_id is None:
            return None
        try:
            return self._ledger._load(self._txn, license_id)
        except LicenseNotFoundError:
            return None

    def products(self) -> frozenset[str]:
        """Every product name the ledger has licensed."""
        if self._known is None:
            self._known = self._ledger._products(self._txn)
        return self._known

    def failures(self, bucket: str, *, since: float, lock: bool) -> list[float]:
        """The bucket's failure times after ``since``, oldest first (the folder is locked whole)."""
        return self._ledger._attempts.failures(self._txn, bucket, since)

    def record_failure(self, bucket: str, stamps: list[float], *, forget_before: float) -> None:
        """Keep ``stamps`` as the bucket's failures; forget idle buckets of its shard."""
        self._ledger._attempts.record(self._txn, bucket, stamps, forget_before=forget_before)

    def add(self, record: LicenseRecord) -> None:
        """Store a new license, its index entries and product, and log its history.

        Raises:
            LedgerExistsError: a license with this id exists (ids are random; retry).
        """
        ledger, txn = self._ledger, self._txn
        table = txn.table(_LICENSES, ledger._shard(record.license_id))
        if table.contains(Query().license_id == record.license_id):
            raise LedgerExistsError(f"license {record.license_id} exists already")
        known = self.products()
        ledger._index_products(txn, known, [record])
        self._known = known | {record.product}
        head = read_head(txn)
        self._cursors = [head["events"] + 1 + i for i in range(len(record.history))]
        position = append_summary(txn, head, LicenseSummary.of(record))
        for kind, shard, doc in _placements(record, ledger.info.shard_width, position):
            txn.table(kind, shard).insert(doc)
        append_events(txn, head, [(e, record.license_id) for e in record.history])
        save_head(txn, head)

    def replace(
        self,
        before: LicenseRecord,
        after: LicenseRecord,
        *,
        revoked: Sequence[RevocationEntry] | None,
    ) -> None:
        """Store ``after`` for ``before``, with all :func:`~issuer.ledger.changes.plan` implies.

        The license, its key and IP entries, its summary, its events and the
        revocation list, in this transaction.
        """
        ledger, txn = self._ledger, self._txn
        change = plan(before, after, revoked=revoked)
        new = change.record
        table = txn.table(_LICENSES, ledger._shard(change.license_id))
        stored = table.get(Query().license_id == change.license_id)
        position = None if stored is None else stored.get(POS)
        if type(position) is not int:
            raise LedgerCorruptError(
                f"ledger is damaged: license {change.license_id} is not indexed"
            )
        if change.new_key_hash is not None:
            kind, shard, doc = _key_placement(new, ledger.info.shard_width)
            txn.table(kind, shard).insert(doc)
        if change.revocations is not None:
            ledger._revocations.revoke(
                txn, list(change.revocations.added), change.revocations.drop_until
            )
        if change.ip_moved:
            if change.old_ip is not None:
                txn.table(IPS, ledger._shard(change.old_ip)).remove(
                    (Query().ip == change.old_ip) & (Query().license_id == change.license_id)
                )
            if change.new_ip is not None:
                kind, shard, doc = _ip_placement(
                    change.new_ip, new.license_id, ledger.info.shard_width
                )
                txn.table(kind, shard).insert(doc)
        table.update(
            _replace_with({**new.to_doc(), POS: position}),
            Query().license_id == change.license_id,
        )
        if change.summary is not None:
            txn.table(_INDEX, _page_name(position)).update(
                change.summary.to_doc(), doc_ids=[position + 1]
            )
        if change.events:
            head = read_head(txn)
            self._cursors = [head["events"] + 1 + i for i in range(len(change.events))]
            append_events(txn, head, [(e, new.license_id) for e in change.events])
            save_head(txn, head)

    def webhook_endpoints(self) -> list[Endpoint]:
        """Every webhook endpoint, read under the lock."""
        return read_endpoints(self._ledger.folder)

    def enqueue(self, deliveries: Sequence[Delivery]) -> None:
        """Queue deliveries with this transaction (their events' cursors from its last change)."""
        if not deliveries:
            return
        if self._first is None:
            self._first = self._cursors[0]
        enqueue(self._txn, deliveries, self._cursors, first=self._first)

    def _record_for_key(self, key_hash: str) -> LicenseRecord | None:
        """The license ``key_hash`` was ever indexed to (whether it is current is not asked)."""
        doc = self._txn.table(KEYS, key_shard(key_hash, self._ledger.info.shard_width)).get(
            Query().key_hash == key_hash
        )
        if doc is None:
            return None
        license_id = doc.get("license_id")
        if not isinstance(license_id, str):
            raise LedgerCorruptError("ledger is damaged: a key index entry is malformed")
        try:
            return self._ledger._load(self._txn, license_id)
        except LicenseNotFoundError:
            # Index and licenses are written in one journaled step, so this is damage.
            raise LedgerCorruptError(
                f"ledger is damaged: license {license_id} is indexed but missing"
            ) from None

    def commit(self) -> None:
        """Write what was changed so far, now (journaled when it spans several files)."""
        self._txn.commit()


def _replace_with(doc: dict[str, Any]) -> Callable[[MutableMapping[Any, Any]], None]:
    def transform(stored: MutableMapping[Any, Any]) -> None:
        stored.clear()
        stored.update(doc)

    return transform
