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

Example:
    >>> ledger = Ledger("ledger")  # doctest: +SKIP
    >>> ledger.get("LIC-7K3QM9XW2D")  # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import hashlib
import json
import os
from collections.abc import Callable, Collection, Iterator, MutableMapping, Sequence
from pathlib import Path
from typing import Any

from tinydb import Query
from tinydb.table import Document, Table

from issuer.errors import (
    AccountExistsError,
    AccountNotFoundError,
    LedgerBusyError,
    LedgerCorruptError,
    LedgerError,
    LedgerExistsError,
    LedgerMissingError,
    LedgerUnavailableError,
    LedgerWriteError,
)
from issuer.ledger.api import (
    DEFAULT_LEASE_DAYS,
    DEFAULT_SHARD_WIDTH,
    FORMAT,
    LedgerBackend,
    LedgerInfo,
    LoginCount,
)
from issuer.ledger.changes import Change, plan
from issuer.ledger.shards import (
    ShardTransaction,
    read_json,
    read_raw,
    replay_journal,
)
from issuer.ledger.webhooks_folder import FolderWebhooks, enqueue, read_endpoints
from issuer.records import (
    Account,
    Event,
    LicenseQuery,
    LicenseRecord,
    LicenseSummary,
    LoggedEvent,
    RevocationEntry,
    Session,
)
from issuer.webhook_records import Delivery, Endpoint
from verifier.errors import BadInputError, LicenseNotFoundError
from verifier.fileio import (
    LockTimeout,
    create_exclusive,
    file_lock,
    os_error_words,
    private_dir,
)

__all__ = ["LOCK_FILE", "META_FILE", "Ledger"]

VERSION = 1
META_FILE = "ledger.json"
LOCK_FILE = "ledger.lock"
_LICENSES, _KEYS, _IPS, _ATTEMPTS = "licenses", "keys", "ips", "attempts"
_PRODUCTS, _ALL = "products", "all"  # the products index is one small file
_REVOCATIONS, _REVOCATIONS_SHARD, _SERIAL_SHARD = "revocations", "list", "serial"
_INDEX, _EVENTS, _ACCOUNTS = "index", "events", "accounts"
_KINDS = (_LICENSES, _KEYS, _IPS, _ATTEMPTS, _REVOCATIONS, _INDEX, _EVENTS, _ACCOUNTS)
_HEAD = "head"  # index/head.json: {"licenses": count, "events": count}
_PAGE = 256  # summaries or events per page file
_POS = "index_pos"  # a license document's place in the index (not part of the record)
SHARD_WIDTHS = range(1, 5)


# The health check waits this long for the lock, and tells a balancer to look again after:
# a lock held longer than a second is a node that would keep its clients waiting.
_HEALTH_WAIT = 1.0
_HEALTH_RETRY = 2


def _shard(value: str, width: int) -> str:
    return hashlib.sha256(value.encode()).hexdigest()[:width]


def _key_shard(key_hash: str, width: int) -> str:
    return key_hash[:width]  # already a SHA-256


Placement = tuple[str, str, dict[str, Any]]  # kind, shard, document


def _key_placement(record: LicenseRecord, width: int) -> Placement:
    return (
        _KEYS,
        _key_shard(record.key_hash, width),
        {"key_hash": record.key_hash, "license_id": record.license_id},
    )


def _ip_placement(ip: str, license_id: str, width: int) -> Placement:
    return (_IPS, _shard(ip, width), {"ip": ip, "license_id": license_id})


def _placements(record: LicenseRecord, width: int, position: int) -> list[Placement]:
    """Where a new license and its index entries are stored."""
    doc = {**record.to_doc(), _POS: position}
    placed = [(_LICENSES, _shard(record.license_id, width), doc), _key_placement(record, width)]
    if record.ip is not None:
        placed.append(_ip_placement(record.ip, record.license_id, width))
    return placed


def _page_name(position: int) -> str:
    return f"{position // _PAGE:06d}"


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
        self.info = self._read_info()
        for kind in _KINDS:  # ledgers made before the index, the audit log and accounts
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
        made: list[Path] = []
        try:
            private_dir(root)  # an existing empty folder others could write to is made private
            for kind in _KINDS:
                (root / kind).mkdir(mode=0o700)
                made.append(root / kind)
        except OSError as err:
            for folder in made:  # empty, and in the way of a retry
                with contextlib.suppress(OSError):
                    folder.rmdir()
            raise LedgerWriteError(
                f"cannot create the ledger in {root}: {os_error_words(err, writing=True)}"
            ) from err
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
        try:
            create_exclusive(root / META_FILE, json.dumps(meta, indent=2).encode())
        except FileExistsError:
            raise LedgerExistsError(f"a ledger exists in {root} already") from None
        except OSError as err:
            for folder in made:
                with contextlib.suppress(OSError):
                    folder.rmdir()
            raise LedgerWriteError(
                f"cannot create the ledger in {root}: {os_error_words(err, writing=True)}"
            ) from err
        ledger = cls(root)
        with ledger._transaction():
            pass  # writes the (empty) index head
        return ledger

    def webhooks(self) -> FolderWebhooks:
        """The webhook endpoints and delivery queue (``webhooks/``)."""
        return FolderWebhooks(self.folder, self._transaction, self._log)

    def protected_paths(self) -> tuple[Path, ...]:
        """The ledger folder: an output file never goes into it."""
        return (self.folder,)

    @staticmethod
    def check_creatable(folder: str | os.PathLike[str]) -> None:
        """Refuse, before anything is written, a folder :meth:`create` would refuse.

        Raises:
            LedgerExistsError: ``folder`` already holds a ledger or other files.
        """
        root = Path(folder)
        if (root / META_FILE).exists():
            raise LedgerExistsError(
                f"a ledger exists in {root.resolve()} already; it is never overwritten"
            )
        if root.exists() and any(p.name != LOCK_FILE for p in root.iterdir()):
            raise LedgerExistsError(
                f"{root.resolve()} is not empty; give a new folder for the ledger"
            )

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
                for doc in txn.table(_IPS, self._shard(ip)).search(Query().ip == ip)
            ]
            return [r for r in (self._load(txn, i) for i in ids) if r.ip == ip]

    def products(self) -> frozenset[str]:
        """Every product name the ledger has a license for (or had: revoked ones count)."""
        with self._transaction() as txn:
            return self._products(txn)

    def failed_attempts(self, *, since: _dt.datetime) -> dict[str, list[float]]:
        """Rate-limit buckets with failures after ``since``: bucket -> times, oldest first."""
        with self._transaction() as txn:
            found: dict[str, list[float]] = {}
            for table in self._attempt_tables(txn):
                for doc in table.all():
                    recent = _recent(doc, since.timestamp())
                    if recent and isinstance(doc.get("bucket"), str):
                        found[doc["bucket"]] = recent
            return found

    def revocations(self) -> tuple[int, list[RevocationEntry]]:
        """The revocation list's serial and its entries (expired ones included)."""
        with self._transaction() as txn:
            serial = self._revocation_serial(txn)
            entries = [
                RevocationEntry.from_doc(doc)
                for doc in txn.table(_REVOCATIONS, _REVOCATIONS_SHARD).all()
                if doc.get("kind") != "serial"
            ]
            if serial and not self._serial_path().exists():
                # A ledger from before serial.json: give it one, so that the
                # next answers of the list are told the serial without the lock.
                self._save_serial(txn, serial)
                txn.commit()
        return serial, entries

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

        Every change writes that small file by an atomic rename, so a reader
        sees the serial before or after a change, never a torn one. ``None``
        for a ledger from before the file, until :meth:`revocations` adds it.
        """
        doc = read_json(self._serial_path(), "file")
        if doc is None:
            list_file = self.folder / _REVOCATIONS / f"{_REVOCATIONS_SHARD}.json"
            return None if list_file.exists() else 0  # nothing was ever revoked
        rows = doc.get(_REVOCATIONS) if isinstance(doc, dict) else None
        if not isinstance(rows, dict) or len(rows) != 1:
            raise LedgerCorruptError(f"ledger file {self._serial_path()} is damaged")
        return _serial_of(next(iter(rows.values())))

    # -- changes ----------------------------------------------------------------

    def restore_revocations(self, serial: int, entries: list[RevocationEntry]) -> None:
        """Give a new, empty ledger a copied revocation list (serial and entries).

        Raises:
            LedgerExistsError: the ledger has a revocation list already.
        """
        with self._transaction() as txn:
            (self.folder / _REVOCATIONS).mkdir(mode=0o700, exist_ok=True)
            table = txn.table(_REVOCATIONS, _REVOCATIONS_SHARD)
            if table.all() or self._revocation_serial(txn):
                raise LedgerExistsError("the ledger has a revocation list already")
            table.insert_multiple([e.to_doc() for e in entries])
            self._save_serial(txn, serial)
            txn.commit()

    def forget_attempts(self, matches: Callable[[str], bool]) -> list[str]:
        """Forget the failures of every rate-limit bucket ``matches`` accepts.

        Returns:
            The buckets forgotten (their clients are no longer limited).
        """
        with self._transaction() as txn:
            forgotten: list[str] = []
            for table in self._attempt_tables(txn):
                for doc in table.all():
                    bucket = doc.get("bucket")
                    if isinstance(bucket, str) and matches(bucket):
                        table.remove(doc_ids=[doc.doc_id])
                        forgotten.append(bucket)
            if forgotten:
                txn.commit()
            return sorted(forgotten)

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
            head = self._head(txn)
            self._index_products(txn, self._products(txn), records)
            by_kind: dict[tuple[str, str], list[dict[str, Any]]] = {}
            for record in records:
                position = self._append_summary(txn, head, LicenseSummary.of(record))
                for kind, shard, doc in _placements(record, self.info.shard_width, position):
                    by_kind.setdefault((kind, shard), []).append(doc)
                if log_history:
                    history = [(e, record.license_id) for e in record.history]
                    self._append_events(txn, head, history)
            for (kind, shard), docs in sorted(
                by_kind.items(), key=lambda item: item[0][0] != _LICENSES
            ):
                txn.table(kind, shard).insert_multiple(docs)
            self._save_head(txn, head)
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
        needle = _raw_needle(query.needle)
        with self._transaction() as txn:
            total = self._head(txn)["licenses"]
            start = total if before is None else min(before, total)
            position = start - 1
            while position >= 0 and len(found) <= limit:
                floor = position - position % _PAGE
                if needle is not None and not _may_contain(
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
        logged: list[LoggedEvent] = []
        with self._transaction() as txn:
            total = self._head(txn)["events"]
            cursor = max(after, 0) + 1
            while cursor <= total and len(logged) < limit:
                page = txn.table(_EVENTS, _page_name(cursor - 1))
                docs = {doc.doc_id: doc for doc in page.all()}
                last = min(total, cursor - (cursor - 1) % _PAGE + _PAGE - 1)
                for here in range(cursor, last + 1):
                    doc = docs.get(here)
                    if doc is None:
                        raise LedgerCorruptError(
                            f"ledger is damaged: audit event {here} is missing"
                        )
                    logged.append(_logged(here, doc))
                    if len(logged) >= limit:
                        break
                cursor = last + 1
        return logged

    def restore_console(self, accounts: list[Account], events: list[LoggedEvent]) -> None:
        """Give a new ledger a copied audit log and console accounts.

        The events keep their order and are numbered 1, 2, 3, ... (a folder's
        log has no gaps; a database's may, where a transaction was undone).

        Raises:
            LedgerExistsError: the ledger has events or accounts already.
        """
        with self._transaction() as txn:
            head = self._head(txn)
            table = txn.table(_ACCOUNTS, "accounts")
            if head["events"] or table.all():
                raise LedgerExistsError("the ledger has an event log or accounts already")
            self._append_events(txn, head, [(e.event, e.license_id) for e in events])
            table.insert_multiple(a.to_doc() for a in accounts)
            self._save_head(txn, head)
            txn.commit(journal=False)

    # -- accounts, sessions, login failures ---------------------------------------

    def add_account(self, account: Account, event: Event) -> None:
        """Store a new console user or API token, and log ``event``.

        Raises:
            AccountExistsError: one of that kind and name exists.
        """
        with self._transaction() as txn:
            table = txn.table(_ACCOUNTS, "accounts")
            if table.contains(_account_query(account.kind, account.name)):
                raise AccountExistsError(f"a {account.kind} named {account.name!r} exists already")
            table.insert(account.to_doc())
            self._log(txn, event)
            txn.commit()

    def remove_account(self, kind: str, name: str, event: Event) -> None:
        """Remove a user (ending their sessions) or revoke a token, and log ``event``.

        Raises:
            AccountNotFoundError: no such account.
        """
        with self._transaction() as txn:
            if not txn.table(_ACCOUNTS, "accounts").remove(_account_query(kind, name)):
                raise AccountNotFoundError(f"no {kind} named {name!r}")
            if kind == "user":
                txn.table(_ACCOUNTS, "sessions").remove(Query().user == name)
            self._log(txn, event)
            txn.commit()

    def accounts(self, kind: str) -> list[Account]:
        """Every account of a kind (``user`` or ``token``), by name."""
        with self._transaction() as txn:
            docs = txn.table(_ACCOUNTS, "accounts").search(Query().kind == kind)
        return sorted((Account.from_doc(d) for d in docs), key=lambda a: a.name)

    def find_account(
        self, kind: str, *, name: str | None = None, secret_hash: str | None = None
    ) -> Account | None:
        """The account of a kind with this name, or with this secret hash (tokens)."""
        if name is not None:
            cond = _account_query(kind, name)
        elif secret_hash is not None:
            cond = (Query().kind == kind) & (Query().secret_hash == secret_hash)
        else:
            return None
        with self._transaction() as txn:
            doc = txn.table(_ACCOUNTS, "accounts").get(cond)
        return None if doc is None else Account.from_doc(doc)

    def open_session(self, session: Session, *, drop_unused_since: _dt.datetime) -> None:
        """Store a new session; sessions unused since ``drop_unused_since`` are dropped.

        Raises:
            AccountNotFoundError: the user was removed meanwhile (by another process).
        """
        with self._transaction() as txn:
            if not txn.table(_ACCOUNTS, "accounts").contains(_account_query("user", session.user)):
                raise AccountNotFoundError(f"no user named {session.user!r}")
            table = txn.table(_ACCOUNTS, "sessions")
            table.remove(Query().last_seen < drop_unused_since.isoformat())
            table.insert(session.to_doc())
            txn.commit()

    def session(self, key_hash: str) -> Session | None:
        """The session stored under this hash, if any."""
        with self._transaction() as txn:
            doc = txn.table(_ACCOUNTS, "sessions").get(Query().key_hash == key_hash)
        return None if doc is None else Session.from_doc(doc)

    def save_session(self, session: Session) -> None:
        """Record a session's new last use (a session ended meanwhile stays ended)."""
        with self._transaction() as txn:
            txn.table(_ACCOUNTS, "sessions").update(
                session.to_doc(), Query().key_hash == session.key_hash
            )
            txn.commit()

    def end_session(self, key_hash: str) -> None:
        """Remove a session (logout, expiry); nothing happens if it is gone already."""
        with self._transaction() as txn:
            if txn.table(_ACCOUNTS, "sessions").remove(Query().key_hash == key_hash):
                txn.commit()

    def login_failures(self, subjects: list[str], since: _dt.datetime) -> int:
        """The most failed logins since ``since`` among the counters of ``subjects``."""
        with self._transaction() as txn:
            table = txn.table(_ACCOUNTS, "logins")
            counts = [
                sum(
                    1
                    for t in (doc.get("times") or [])
                    if isinstance(t, str) and t >= since.isoformat()
                )
                for doc in table.search(Query().subject.one_of(subjects))
            ]
        return max(counts, default=0)

    def reserve_login(self, attempt: LoginCount) -> None:
        """Count a log-in as a failure before its password is checked, unless a limit refuses it.

        Under the ledger's lock: the attempt's counters are read, ``attempt``
        judges them (a refusal writes nothing), and the attempt is counted
        against each; counters with no failure in the window are forgotten.

        Raises:
            RateLimitedError: a limit is reached (nothing is counted).
        """
        with self._transaction() as txn:
            table = txn.table(_ACCOUNTS, "logins")
            docs = {s: table.get(Query().subject == s) for s in attempt.subjects}
            recent = {s: _login_times(doc, attempt.horizon) for s, doc in docs.items()}
            attempt.check(recent)
            for subject, doc in docs.items():
                times = [t.isoformat() for t in recent[subject]] + [attempt.now.isoformat()]
                if doc is None:
                    table.insert({"subject": subject, "times": times})
                else:
                    table.update({"times": times}, doc_ids=[doc.doc_id])
            _forget_stale_logins(table, attempt)
            txn.commit()

    def release_login(self, attempt: LoginCount, *, forget: Collection[str] = ()) -> None:
        """Take back the failure :meth:`reserve_login` counted for ``attempt``.

        Args:
            attempt: the reserved log-in.
            forget: subjects whose every failure goes too (a successful log-in's pair).
        """
        stamp = attempt.now.isoformat()
        with self._transaction() as txn:
            table = txn.table(_ACCOUNTS, "logins")
            changed = False
            for subject in attempt.subjects:
                doc = table.get(Query().subject == subject)
                if doc is None:
                    continue
                times = list(doc.get("times") or [])
                if subject in forget or times == [stamp]:
                    table.remove(doc_ids=[doc.doc_id])
                elif stamp in times:
                    times.remove(stamp)  # one failure: another log-in may share the instant
                    table.update({"times": times}, doc_ids=[doc.doc_id])
                else:
                    continue
                changed = True
            if changed:
                txn.commit()

    # -- internals ----------------------------------------------------------------

    def _read_info(self) -> LedgerInfo:
        meta = read_json(self.folder / META_FILE, "file")
        if meta is None:
            raise LedgerMissingError(
                f"no ledger in {self.folder.resolve()} — point --ledger (or LICET_LEDGER) at the "
                "provider's ledger; 'issuer init' there would start a second, empty one"
            )
        if not isinstance(meta, dict) or meta.get("format") != FORMAT:
            raise LedgerCorruptError(f"{self.folder / META_FILE} is not a licet ledger")
        if meta.get("version") != VERSION:
            raise LedgerCorruptError(f"ledger version {meta.get('version')!r} is not supported")
        # Ledgers made before the layout was recorded all have the default width.
        width = meta.get("shard_width", DEFAULT_SHARD_WIDTH)
        if type(width) is not int or width not in SHARD_WIDTHS:
            raise LedgerCorruptError(
                f"{self.folder / META_FILE} records an unknown shard layout ({width!r})"
            )
        try:
            return LedgerInfo(
                provider=str(meta["provider"]),
                created_at=_dt.datetime.fromisoformat(str(meta["created_at"])),
                secret_check=str(meta["secret_check"]),
                shard_width=width,
                lease_days=_lease_days(meta.get("lease_days", DEFAULT_LEASE_DAYS)),
                accept_machine_id=_flag(meta.get("accept_machine_id", True)),
            )
        except (KeyError, ValueError) as err:
            raise LedgerCorruptError(f"{self.folder / META_FILE} is damaged ({err})") from err

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
            self._read_info()  # the ledger may have been removed since we opened it
            replay_journal(self.folder)
            if not (self.folder / _INDEX / f"{_HEAD}.json").exists():
                self._build_index()
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

    def _record_for_key(self, txn: ShardTransaction, key_hash: str) -> LicenseRecord | None:
        """The license ``key_hash`` was ever indexed to (whether it is current is not asked)."""
        doc = txn.table(_KEYS, _key_shard(key_hash, self.info.shard_width)).get(
            Query().key_hash == key_hash
        )
        if doc is None:
            return None
        license_id = doc.get("license_id")
        if not isinstance(license_id, str):
            raise LedgerCorruptError("ledger is damaged: a key index entry is malformed")
        try:
            return self._load(txn, license_id)
        except LicenseNotFoundError:
            # Index and licenses are written in one journaled step, so this is damage.
            raise LedgerCorruptError(
                f"ledger is damaged: license {license_id} is indexed but missing"
            ) from None

    def _revoke(
        self, txn: ShardTransaction, entries: list[RevocationEntry], now: _dt.datetime
    ) -> None:
        """Move the revocation list to its next serial, add ``entries``, drop harmless ones."""
        (self.folder / _REVOCATIONS).mkdir(mode=0o700, exist_ok=True)  # ledgers made before it
        serial = self._revocation_serial(txn)
        table = txn.table(_REVOCATIONS, _REVOCATIONS_SHARD)
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
        return self.folder / _REVOCATIONS / f"{_SERIAL_SHARD}.json"

    def _revocation_serial(self, txn: ShardTransaction) -> int:
        """The serial under the lock: ``serial.json``, else where older ledgers kept it."""
        for shard in (_SERIAL_SHARD, _REVOCATIONS_SHARD):
            for doc in txn.table(_REVOCATIONS, shard).all():
                if doc.get("kind") == "serial":
                    return _serial_of(doc)
        return 0

    def _save_serial(self, txn: ShardTransaction, serial: int) -> None:
        table = txn.table(_REVOCATIONS, _SERIAL_SHARD)
        table.truncate()
        table.insert({"kind": "serial", "serial": serial})

    def _attempt_tables(self, txn: ShardTransaction) -> list[Table]:
        folder = self.folder / _ATTEMPTS
        shards = sorted(folder.glob("*.json")) if folder.is_dir() else []
        return [txn.table(_ATTEMPTS, path.stem) for path in shards]

    def _attempts(self, txn: ShardTransaction, bucket: str) -> Table:
        (self.folder / _ATTEMPTS).mkdir(mode=0o700, exist_ok=True)  # ledgers made before it
        return txn.table(_ATTEMPTS, self._shard(bucket))

    def _products(self, txn: ShardTransaction) -> frozenset[str]:
        if not (self.folder / _PRODUCTS / f"{_ALL}.json").exists():
            # No license yet, or a ledger older than the index: derive it from the
            # licenses (the next new license writes it).
            return frozenset(
                str(doc["product"])
                for path in (self.folder / _LICENSES).glob("*.json")
                for doc in txn.table(_LICENSES, path.stem).all()
            )
        return frozenset(str(doc["name"]) for doc in txn.table(_PRODUCTS, _ALL).all())

    def _index_products(
        self, txn: ShardTransaction, known: frozenset[str], records: list[LicenseRecord]
    ) -> None:
        new = {r.product for r in records} - known
        if not new:
            return
        if not (self.folder / _PRODUCTS / f"{_ALL}.json").exists():
            (self.folder / _PRODUCTS).mkdir(mode=0o700, exist_ok=True)
            new |= known
        txn.table(_PRODUCTS, _ALL).insert_multiple({"name": name} for name in sorted(new))

    def _head(self, txn: ShardTransaction) -> dict[str, int]:
        doc = txn.table(_INDEX, _HEAD).get(doc_id=1)
        if doc is None:
            return {"licenses": 0, "events": 0}
        counts = {k: doc.get(k) for k in ("licenses", "events")}
        if not all(type(v) is int and v >= 0 for v in counts.values()):
            raise LedgerCorruptError("ledger is damaged: the index head is malformed")
        return counts  # type: ignore[return-value]  # checked just above

    def _save_head(self, txn: ShardTransaction, head: dict[str, int]) -> None:
        table = txn.table(_INDEX, _HEAD)
        if table.contains(doc_id=1):
            table.update(dict(head), doc_ids=[1])
        else:
            table.insert(Document(dict(head), doc_id=1))

    def _append_summary(
        self, txn: ShardTransaction, head: dict[str, int], summary: LicenseSummary
    ) -> int:
        position = head["licenses"]
        txn.table(_INDEX, _page_name(position)).insert(
            Document(summary.to_doc(), doc_id=position + 1)
        )
        head["licenses"] = position + 1
        return position

    def _append_events(
        self,
        txn: ShardTransaction,
        head: dict[str, int],
        events: Sequence[tuple[Event, str | None]],
    ) -> None:
        for event, license_id in events:
            cursor = head["events"] + 1
            doc = {"license_id": license_id, **event.to_doc()}
            txn.table(_EVENTS, _page_name(cursor - 1)).insert(Document(doc, doc_id=cursor))
            head["events"] = cursor

    def _log(self, txn: ShardTransaction, event: Event, license_id: str | None = None) -> None:
        head = self._head(txn)
        self._append_events(txn, head, [(event, license_id)])
        self._save_head(txn, head)

    def _store_change(self, txn: ShardTransaction, change: Change) -> None:
        """Write a changed license, its key and IP entries, summary, events and revocations."""
        new = change.record
        table = txn.table(_LICENSES, self._shard(change.license_id))
        stored = table.get(Query().license_id == change.license_id)
        position = None if stored is None else stored.get(_POS)
        if type(position) is not int:
            raise LedgerCorruptError(
                f"ledger is damaged: license {change.license_id} is not indexed"
            )
        if change.new_key_hash is not None:
            kind, shard, doc = _key_placement(new, self.info.shard_width)
            txn.table(kind, shard).insert(doc)
        if change.revocations is not None:
            self._revoke(txn, list(change.revocations.added), change.revocations.drop_until)
        if change.ip_moved:
            if change.old_ip is not None:
                txn.table(_IPS, self._shard(change.old_ip)).remove(
                    (Query().ip == change.old_ip) & (Query().license_id == change.license_id)
                )
            if change.new_ip is not None:
                kind, shard, doc = _ip_placement(
                    change.new_ip, new.license_id, self.info.shard_width
                )
                txn.table(kind, shard).insert(doc)
        table.update(
            _replace_with({**new.to_doc(), _POS: position}),
            Query().license_id == change.license_id,
        )
        if change.summary is not None:
            txn.table(_INDEX, _page_name(position)).update(
                change.summary.to_doc(), doc_ids=[position + 1]
            )
        if change.events:
            head = self._head(txn)
            self._append_events(txn, head, [(e, new.license_id) for e in change.events])
            self._save_head(txn, head)

    def _build_index(self) -> None:
        """Index a ledger written before the index and the audit log existed.

        Licenses get places in creation order and their histories become the
        audit log, in time order. The head is written last: an interrupted
        build is simply done again.
        """
        txn = ShardTransaction(self.folder)
        records: list[tuple[LicenseRecord, Table]] = []
        for path in sorted((self.folder / _LICENSES).glob("*.json")):
            table = txn.table(_LICENSES, path.stem)
            records.extend((LicenseRecord.from_doc(doc), table) for doc in table.all())
        records.sort(key=lambda item: (item[0].created_at, item[0].license_id))
        for path in (self.folder / _INDEX).glob("*.json"):
            txn.table(_INDEX, path.stem).truncate()
        for path in (self.folder / _EVENTS).glob("*.json"):
            txn.table(_EVENTS, path.stem).truncate()
        head = {"licenses": 0, "events": 0}
        for record, table in records:
            position = self._append_summary(txn, head, LicenseSummary.of(record))
            table.update({_POS: position}, Query().license_id == record.license_id)
        history = sorted(
            ((e, r.license_id) for r, _ in records for e in r.history), key=lambda item: item[0].at
        )
        self._append_events(txn, head, history)
        self._save_head(txn, head)  # last: its file is the mark of a finished build
        txn.commit(journal=False)


class FolderTransaction:
    """The transaction verbs over one locked set of shards (see :class:`LedgerTransaction`).

    The whole folder is locked, so every read here is a locked read.
    """

    def __init__(self, ledger: Ledger, txn: ShardTransaction) -> None:
        self._ledger = ledger
        self._txn = txn
        self._known: frozenset[str] | None = None
        self._cursors: list[int] = []  # of the events the last add or replace logged

    def license(
        self, *, license_id: str | None = None, key_hash: str | None = None
    ) -> LicenseRecord | None:
        """The license with this id, or the one ``key_hash`` was ever indexed to."""
        if key_hash is not None:
            return self._ledger._record_for_key(self._txn, key_hash)
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
        table = self._ledger._attempts(self._txn, bucket)
        return _recent(table.get(Query().bucket == bucket), since)

    def record_failure(self, bucket: str, stamps: list[float], *, forget_before: float) -> None:
        """Keep ``stamps`` as the bucket's failures; forget idle buckets of its shard."""
        table = self._ledger._attempts(self._txn, bucket)
        for doc in table.all():  # forget what has left the window, whoever it was
            if doc.get("bucket") != bucket and not _recent(doc, forget_before):
                table.remove(doc_ids=[doc.doc_id])
        table.upsert({"bucket": bucket, "at": stamps}, Query().bucket == bucket)

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
        head = ledger._head(txn)
        self._cursors = [head["events"] + 1 + i for i in range(len(record.history))]
        position = ledger._append_summary(txn, head, LicenseSummary.of(record))
        for kind, shard, doc in _placements(record, ledger.info.shard_width, position):
            txn.table(kind, shard).insert(doc)
        ledger._append_events(txn, head, [(e, record.license_id) for e in record.history])
        ledger._save_head(txn, head)

    def replace(
        self,
        before: LicenseRecord,
        after: LicenseRecord,
        *,
        revoked: Sequence[RevocationEntry] | None,
    ) -> None:
        """Store ``after`` for ``before``, with all :func:`~issuer.ledger.changes.plan` implies."""
        change = plan(before, after, revoked=revoked)
        first = self._ledger._head(self._txn)["events"] + 1
        self._cursors = [first + i for i in range(len(change.events))]
        self._ledger._store_change(self._txn, change)

    def webhook_endpoints(self) -> list[Endpoint]:
        """Every webhook endpoint, read under the lock."""
        return read_endpoints(self._txn, self._ledger.folder)

    def enqueue(self, deliveries: Sequence[Delivery], *, logged: bool) -> None:
        """Queue deliveries with this transaction (their events' cursors from its last change)."""
        enqueue(self._txn, self._ledger.folder, deliveries, self._cursors if logged else [])

    def commit(self) -> None:
        """Write what was changed so far, now (journaled when it spans several files)."""
        self._txn.commit()


def _serial_of(doc: Any) -> int:
    serial = doc.get("serial")
    if type(serial) is not int or serial < 0:
        raise LedgerCorruptError("ledger is damaged: the revocation serial is malformed")
    return serial


def _lease_days(value: object) -> int:
    if type(value) is not int or value < 0:
        raise ValueError("lease_days must be a whole number ≥ 0")
    return value


def _flag(value: Any) -> bool:
    if type(value) is not bool:
        raise ValueError("accept_machine_id must be true or false")
    return value


def _recent(doc: Any, horizon: float) -> list[float]:
    """The attempt times of an attempts document still inside the window, oldest first."""
    stamps = doc.get("at") if isinstance(doc, dict) else None
    if not isinstance(stamps, list):
        return []
    return sorted(t for t in stamps if isinstance(t, int | float) and t > horizon)


def _login_times(doc: Any, horizon: _dt.datetime) -> list[_dt.datetime]:
    """The failed log-ins of a logins document after ``horizon``, oldest first."""
    times = doc.get("times") if isinstance(doc, dict) else None
    found = []
    for text in times if isinstance(times, list) else []:
        with contextlib.suppress(TypeError, ValueError):
            when = _dt.datetime.fromisoformat(text)
            if when.tzinfo is not None and when > horizon:
                found.append(when)
    return sorted(found)


def _forget_stale_logins(table: Table, attempt: LoginCount) -> None:
    """Forget counters with no failure in the window; keep at most the most recent ones."""
    stale = [doc.doc_id for doc in table.all() if not _login_times(doc, attempt.horizon)]
    table.remove(doc_ids=stale)
    docs = table.all()
    if len(docs) > attempt.max_subjects:
        docs.sort(key=lambda doc: _login_times(doc, attempt.horizon)[-1])
        table.remove(doc_ids=[doc.doc_id for doc in docs[: len(docs) - attempt.max_subjects]])


def _replace_with(doc: dict[str, Any]) -> Callable[[MutableMapping[Any, Any]], None]:
    def transform(stored: MutableMapping[Any, Any]) -> None:
        stored.clear()
        stored.update(doc)

    return transform


def _account_query(kind: str, name: str) -> Any:
    return (Query().kind == kind) & (Query().name == name)


def _logged(cursor: int, doc: Any) -> LoggedEvent:
    try:
        license_id = doc["license_id"]
        if license_id is not None and not isinstance(license_id, str):
            raise TypeError("license_id is not text")
        return LoggedEvent(cursor=cursor, event=Event.from_doc(doc), license_id=license_id)
    except (KeyError, TypeError, ValueError) as err:
        raise LedgerCorruptError(f"ledger is damaged: audit event {cursor} is malformed") from err


def _raw_needle(text: str | None) -> bytes | None:
    """Search text as it appears in a page file's bytes, when that can be known.

    Pages are JSON with non-ASCII escaped, so only plain printable ASCII text
    (without quotes or backslashes) is found verbatim in them.
    """
    if not text or not all(32 <= ord(c) < 127 and c not in '"\\' for c in text):
        return None
    return text.lower().encode()


def _may_contain(path: Path, needle: bytes) -> bool:
    """Whether an index page's bytes contain ``needle`` (case-insensitively): a cheap pre-check."""
    data = read_raw(path, "index page")
    return data is None or needle in data.lower()
