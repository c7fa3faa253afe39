"""The ledger in PostgreSQL, shared by any number of license-server nodes.

Layout: the ``licet`` schema of the database the URL names (see
``issuer/ledger/schema/*.sql``, one file per schema version)::

    licet.meta          the ledger's identity and schema version (one row)
    licet.licenses      one row per license: its record as a JSON document, its position
    licet.license_keys  key hash -> license (every generation; only the current opens it)
    licet.license_ips   assigned IP -> license
    licet.attempts      rate-limit bucket -> times of its recent failures
    licet.revocations   the revocation list's entries (its serial is in licet.meta)
    licet.products      every product name the ledger has licensed (for typo checks)
    licet.events        the one audit log of every change; its position is the feed's cursor
    licet.accounts      console users and admin API tokens (only hashes of their secrets)
    licet.sessions      console sessions, under the SHA-256 of their cookie
    licet.login_failures  recent failed console log-ins per user name and address, and per address

Guarantees come from the database, not from a process lock: every change to
a license locks its row (``SELECT ... FOR UPDATE``) and re-reads it under that
lock, so of two nodes redeeming one key at once the second sees the first's
activation; a client's failed attempts are counted under a transaction-scoped
advisory lock on its bucket, so every node shares one count. A transaction
either commits whole or not at all: an error at any point — the database
restarting included — leaves nothing half-written, and an activation is
acknowledged only after its commit.

The password in a URL is used to connect and nowhere else: messages and
:attr:`PostgresLedger.location` show the URL without it, and the metadata
never records where the ledger is. The activation-key secret stays in the
keys folder; the database holds only its check value.

The audit log is read in cursor order, and a cursor is handed out when an
event is inserted, not when it commits: the feed therefore waits, under a
table lock that new events queue behind, for the transactions that are
inserting events to end, so it never skips an event that commits after a
later one.

The backend is one room per concern, and this module is its licenses:
:class:`PostgresLedger` keeps licenses, their key, IP and product look-ups,
the rate-limit counters and the audit log, and hands the rest to parts that
use its connections — :mod:`~issuer.ledger.postgres_schema` (versions and
migrations), :mod:`~issuer.ledger.postgres_revocations` and
:mod:`~issuer.ledger.postgres_accounts`, the database's
:class:`~issuer.ledger.api.AccountStore` (:attr:`PostgresLedger.account_store`).

Example:
    >>> ledger = PostgresLedger("postgresql://licet@db.example/licet")  # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import json
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from issuer.errors import (
    LedgerCorruptError,
    LedgerError,
    LedgerExistsError,
    LedgerMissingError,
    LedgerUnavailableError,
)
from issuer.ledger.api import FORMAT, LedgerBackend, LedgerInfo
from issuer.ledger.changes import plan
from issuer.records import (
    Account,
    Event,
    LicenseQuery,
    LicenseRecord,
    LicenseSummary,
    LoggedEvent,
    RevocationEntry,
)
from issuer.webhook_records import Delivery, Endpoint
from verifier.errors import BadInputError, LicenseNotFoundError

try:
    import psycopg
    from psycopg import errors as pg_errors
    from psycopg.types.json import Jsonb

    from issuer.ledger import postgres_revocations as revocation_list
    from issuer.ledger.connections import RETRY_AFTER, Database, redact_url
    from issuer.ledger.postgres_accounts import PostgresAccounts, copy_accounts
    from issuer.ledger.postgres_schema import (
        LEASES_VERSION,
        SCHEMA_VERSION,
        check_version,
        drop_schema,
        migrate,
        upgrade_schema,
    )
    from issuer.ledger.webhooks_pg import PostgresWebhooks, enqueue, read_endpoints
except ImportError as err:  # pragma: no cover - depends on the installed extras
    raise BadInputError(
        "a PostgreSQL ledger needs the 'postgres' extra: "
        "pip install '.[postgres]' (in the checkout)"
    ) from err

__all__ = ["SCHEMA_VERSION", "PostgresLedger", "drop_schema", "redact_url", "upgrade_schema"]


class PostgresLedger(LedgerBackend):
    """The provider's licenses and activations in a PostgreSQL database.

    Args:
        url: ``postgresql://user[:password]@host[:port]/database``; a password
            may also come from ``PGPASSWORD`` or ``PGPASSFILE``.
        lock_timeout: seconds to wait for a row lock or a free connection.

    Raises:
        LedgerMissingError: the database holds no licet ledger.
        LedgerVersionError: the ledger's schema is of another version.
        LedgerError: the database cannot be reached or used.
    """

    def __init__(self, url: str, *, lock_timeout: float = 10.0) -> None:
        self._setup(url, lock_timeout)
        with self._direct() as conn:
            self.info = self._read_info(conn)

    def _setup(self, url: str, lock_timeout: float) -> None:
        self._db = Database(url, lock_timeout=lock_timeout)
        self.location = self._db.location
        self.account_store = PostgresAccounts(self._db, log=_log)

    @classmethod
    def _unopened(cls, url: str) -> PostgresLedger:
        """A handle for creating or upgrading the schema, before there is a ledger to read."""
        probe = cls.__new__(cls)
        probe._setup(url, 10.0)
        return probe

    @classmethod
    def create(
        cls,
        url: str,
        *,
        provider: str,
        secret_check: str,
        now: _dt.datetime,
        lease_days: int = 30,
        accept_machine_id: bool = True,
        version: int = SCHEMA_VERSION,
    ) -> PostgresLedger:
        """Create the ledger's schema in one transaction; never touches an existing one.

        Args:
            url: the database.
            provider: the provider name tokens are issued under.
            secret_check: identifies the activation-key secret.
            now: the creation time.
            lease_days: the provider's default lease, kept in the ledger.
            accept_machine_id: the default for licenses that do not say.
            version: the schema version to create (older ones only to test upgrades).

        Raises:
            LedgerExistsError: the database has a licet schema already.
            LedgerError: unreachable, or the role may not create a schema.
        """
        probe = cls._unopened(url)
        with probe._direct() as conn:
            try:
                with conn.transaction():
                    migrate(conn, 0, version)
                    conn.execute(
                        "INSERT INTO licet.meta (format, schema_version, provider, created_at,"
                        " secret_check, accept_machine_id) VALUES (%s, %s, %s, %s, %s, %s)",
                        (FORMAT, version, provider, now, secret_check, accept_machine_id),
                    )
                    if version >= LEASES_VERSION:
                        conn.execute("UPDATE licet.meta SET lease_days = %s", (lease_days,))
            except pg_errors.DuplicateSchema:
                raise LedgerExistsError(
                    f"a ledger exists in {probe.location} already; it is never overwritten"
                ) from None
        if version != SCHEMA_VERSION:
            return probe  # an old schema, for upgrade tests; not usable as a ledger
        return cls(url)

    @classmethod
    def check_creatable(cls, url: str) -> None:
        """Refuse, before anything is written, a database :meth:`create` would refuse.

        Raises:
            LedgerExistsError: the database has a licet schema already.
            LedgerError: the database cannot be reached.
        """
        probe = cls._unopened(url)
        with probe._direct() as conn:
            row = conn.execute(
                "SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = 'licet')"
            ).fetchone()
        if row is not None and row[0]:
            raise LedgerExistsError(
                f"a ledger exists in {probe.location} already; it is never overwritten"
            )

    def webhooks(self) -> PostgresWebhooks:
        """The webhook endpoints and delivery queue (``licet.webhook_*``)."""
        return PostgresWebhooks(self._transaction)

    # -- reads ------------------------------------------------------------------

    def get(self, license_id: str) -> LicenseRecord:
        """The license with this id.

        Raises:
            LicenseNotFoundError: no such license.
        """
        with self._transaction() as conn:
            row = conn.execute(
                "SELECT doc FROM licet.licenses WHERE license_id = %s", (license_id,)
            ).fetchone()
        if row is None:
            raise LicenseNotFoundError(f"no license {license_id!r}")
        return _record(row[0])

    def licenses(self) -> list[LicenseRecord]:
        """Every license, in the order they were added."""
        with self._transaction() as conn:
            rows = conn.execute("SELECT doc FROM licet.licenses ORDER BY position").fetchall()
        return [_record(row[0]) for row in rows]

    def page(
        self, query: LicenseQuery, *, before: int | None = None, limit: int = 50
    ) -> tuple[list[LicenseSummary], int | None]:
        """Licenses matching ``query``, newest first, one page at a time.

        The cursor is a license's position in the order licenses were added;
        rows are read newest first in batches until ``limit`` matches (and
        one more, to know whether there is a next page) are found.

        Args:
            query: the conditions.
            before: the cursor a previous page returned (``None``: start at the newest).
            limit: the most licenses to return.

        Returns:
            The summaries, and the cursor of the next page (``None`` on the last one).
        """
        found: list[tuple[int, LicenseSummary]] = []
        with self._transaction() as conn, conn.cursor(name="licet_page") as cur:
            cur.itersize = 512
            cur.execute(
                "SELECT position, doc FROM licet.licenses WHERE position < %s"
                " ORDER BY position DESC",
                (_NO_CURSOR if before is None else before,),
            )
            for position, doc in cur:
                summary = LicenseSummary.of(_record(doc))
                if query.matches(summary):
                    found.append((int(position), summary))
                    if len(found) > limit:
                        break
        more = len(found) > limit
        items = found[:limit]
        return [s for _, s in items], (items[-1][0] if more and items else None)

    def license_by_key(self, key_hash: str) -> LicenseRecord | None:
        """The license ``key_hash`` was ever indexed to: two primary-key look-ups, no row lock."""
        with self._transaction() as conn:
            row = conn.execute(
                "SELECT doc FROM licet.licenses WHERE license_id ="
                " (SELECT license_id FROM licet.license_keys WHERE key_hash = %s)",
                (key_hash,),
            ).fetchone()
        return None if row is None else _record(row[0])

    def licenses_for_ip(self, ip: str) -> list[LicenseRecord]:
        """The licenses assigned to ``ip`` (for automatic activation)."""
        with self._transaction() as conn:
            rows = conn.execute(
                "SELECT l.doc FROM licet.license_ips i JOIN licet.licenses l USING (license_id)"
                " WHERE i.ip = %s ORDER BY l.created_at, l.license_id",
                (ip,),
            ).fetchall()
        return [r for r in (_record(row[0]) for row in rows) if r.ip == ip]

    def products(self) -> frozenset[str]:
        """Every product name the ledger has a license for (or had: revoked ones count)."""
        with self._transaction() as conn:
            rows = conn.execute("SELECT name FROM licet.products").fetchall()
        return frozenset(str(row[0]) for row in rows)

    def failed_attempts(self, *, since: _dt.datetime) -> dict[str, list[float]]:
        """Rate-limit buckets with failures after ``since``: bucket -> times, oldest first."""
        horizon = since.timestamp()
        with self._transaction() as conn:
            rows = conn.execute(
                "SELECT bucket, stamps FROM licet.attempts WHERE last_at > %s", (horizon,)
            ).fetchall()
        found: dict[str, list[float]] = {}
        for bucket, stamps in rows:
            recent = sorted(t for t in stamps if isinstance(t, float) and t > horizon)
            if recent:
                found[str(bucket)] = recent
        return found

    def revocations(self) -> tuple[int, list[RevocationEntry]]:
        """The revocation list's serial and its entries (expired ones included)."""
        with self._transaction() as conn:
            return revocation_list.listed(conn, self.location)

    def check_writable(self) -> None:
        """One round trip on a pooled connection: the database answers and is not a standby.

        A node whose URL names a primary and its standby with
        ``target_session_attrs=read-write`` only ever connects to the one that
        takes writes; this also catches a URL naming a standby alone.
        """
        with self._transaction() as conn:
            row = conn.execute("SELECT pg_is_in_recovery()").fetchone()
        if row is None or row[0]:
            raise LedgerUnavailableError(
                f"the ledger database {self.location} is a read-only standby",
                retry_after=RETRY_AFTER,
            )

    def revocation_serial(self) -> int | None:
        """The revocation list's serial: one small query, which no writer's lock delays."""
        with self._transaction() as conn:
            return revocation_list.serial(conn, self.location)

    # -- changes ----------------------------------------------------------------

    def restore_revocations(self, serial: int, entries: list[RevocationEntry]) -> None:
        """Give a new, empty ledger a copied revocation list (serial and entries).

        Raises:
            LedgerExistsError: the ledger has a revocation list already.
        """
        with self._transaction() as conn:
            revocation_list.restore(conn, serial, entries)

    def forget_attempts(self, matches: Callable[[str], bool]) -> list[str]:
        """Forget the failures of every rate-limit bucket ``matches`` accepts.

        Each bucket is deleted under the lock its failures are counted under,
        so a failure another node is counting at the same moment is either
        forgotten with the rest or counted after, never half of each.

        Returns:
            The buckets forgotten, sorted (their clients are no longer limited).
        """
        with self._transaction() as conn:
            buckets = [str(row[0]) for row in conn.execute("SELECT bucket FROM licet.attempts")]
            chosen = sorted(b for b in buckets if matches(b))
            for bucket in chosen:
                conn.execute(_LOCK_BUCKET, (bucket,))
            if not chosen:
                return []
            rows = conn.execute(
                "DELETE FROM licet.attempts WHERE bucket = ANY(%s) RETURNING bucket", (chosen,)
            ).fetchall()
        return sorted(str(row[0]) for row in rows)

    @contextlib.contextmanager
    def transaction(self) -> Iterator[PostgresTransaction]:
        """One database transaction on a pooled connection: committed when the block ends.

        Raises:
            LedgerExistsError: a license added in it exists already (ids are random; retry).
            LedgerUnavailableError: the database cannot be reached (or was lost mid-way).
            LedgerError: the database refused the work.
        """
        tx = None
        try:
            with self._transaction() as conn:
                tx = PostgresTransaction(conn)
                yield tx
        except LedgerError as err:
            if tx is not None and tx.added and isinstance(err.__cause__, pg_errors.UniqueViolation):
                raise LedgerExistsError(f"license {tx.added[-1]} exists already") from None
            raise

    def add_many(self, records: list[LicenseRecord], *, log_history: bool = True) -> None:
        """Bulk import in one transaction (``COPY``): all of it is stored, or none.

        With ``log_history`` the licenses' histories are appended to the event
        log, license by license; a copy leaves that to :meth:`restore_console`.
        """
        with self._transaction() as conn, conn.cursor() as cur:
            with cur.copy("COPY licet.licenses (license_id, created_at, doc) FROM STDIN") as copy:
                for r in records:
                    copy.write_row((r.license_id, r.created_at, json.dumps(r.to_doc())))
            with cur.copy("COPY licet.license_keys (key_hash, license_id) FROM STDIN") as copy:
                for r in records:
                    copy.write_row((r.key_hash, r.license_id))
            with cur.copy("COPY licet.license_ips (ip, license_id) FROM STDIN") as copy:
                for r in records:
                    if r.ip is not None:
                        copy.write_row((r.ip, r.license_id))
            cur.execute(_LOCK_PRODUCTS)
            _index_products(conn, records)
            if log_history:
                with cur.copy("COPY licet.events (license_id, doc) FROM STDIN") as copy:
                    for r in records:
                        for e in r.history:
                            copy.write_row((r.license_id, json.dumps(e.to_doc())))
            # Fresh statistics, so the planner sees the tables as they now are.
            cur.execute("ANALYZE licet.licenses, licet.license_keys, licet.license_ips")

    # -- the audit log -------------------------------------------------------------

    def events(self, *, after: int = 0, limit: int = 100) -> list[LoggedEvent]:
        """Audit events in the order they happened, from the one after cursor ``after``.

        Cursors are handed out when events are inserted, so a transaction can
        commit a lower one after another committed a higher one. The read
        first waits for every transaction inserting events to end (new ones
        wait meanwhile): what it returns has no hole that fills in later.
        """
        with self._transaction() as conn:
            conn.execute("LOCK TABLE licet.events IN SHARE MODE")
            rows = conn.execute(
                "SELECT position, license_id, doc FROM licet.events WHERE position > %s"
                " ORDER BY position LIMIT %s",
                (max(after, 0), limit),
            ).fetchall()
        return [_logged(int(row[0]), row[1], row[2]) for row in rows]

    def restore_console(self, accounts: list[Account], events: list[LoggedEvent]) -> None:
        """Give a new ledger a copied audit log (its cursors kept) and console accounts.

        Raises:
            LedgerExistsError: the ledger has events or accounts already.
        """
        with self._transaction() as conn:
            conn.execute("LOCK TABLE licet.events, licet.accounts IN EXCLUSIVE MODE")
            row = conn.execute(
                "SELECT EXISTS (SELECT 1 FROM licet.events)"
                " OR EXISTS (SELECT 1 FROM licet.accounts)"
            ).fetchone()
            if row is None or row[0]:
                raise LedgerExistsError("the ledger has an event log or accounts already")
            with conn.cursor() as cur:
                with cur.copy("COPY licet.events (position, license_id, doc) FROM STDIN") as copy:
                    for e in events:
                        copy.write_row((e.cursor, e.license_id, json.dumps(e.event.to_doc())))
                copy_accounts(cur, accounts)
                cur.execute(
                    "SELECT setval('licet.events_position_seq',"
                    " COALESCE((SELECT max(position) FROM licet.events), 0) + 1, false)"
                )

    def close(self) -> None:
        """Close the connection pool (a later operation opens a new one)."""
        self._db.close()

    # -- internals ----------------------------------------------------------------

    def _direct(self) -> contextlib.AbstractContextManager[psycopg.Connection[Any]]:
        """A connection of its own (opening, creating, upgrading): see :meth:`Database.direct`."""
        return self._db.direct()

    def _transaction(self) -> contextlib.AbstractContextManager[psycopg.Connection[Any]]:
        """One transaction on a pooled connection: see :meth:`Database.transaction`."""
        return self._db.transaction()

    def _read_info(self, conn: psycopg.Connection[Any]) -> LedgerInfo:
        row = conn.execute("SELECT to_regclass('licet.meta') IS NOT NULL").fetchone()
        if row is None or not row[0]:
            raise LedgerMissingError(
                f"no ledger in {self.location} — run 'issuer init --ledger URL' first"
            )
        head = conn.execute("SELECT format, schema_version FROM licet.meta").fetchone()
        if head is None or head[0] != FORMAT:
            raise LedgerCorruptError(f"{self.location} does not hold a licet ledger")
        check_version(head[1], self.location)
        meta = conn.execute(
            "SELECT provider, created_at, secret_check, accept_machine_id, lease_days"
            " FROM licet.meta"
        ).fetchone()
        if meta is None:
            raise LedgerCorruptError(f"{self.location} does not hold a licet ledger")
        return LedgerInfo(
            provider=meta[0],
            created_at=meta[1].astimezone(_dt.UTC),
            secret_check=meta[2],
            accept_machine_id=meta[3],
            lease_days=meta[4],
        )


def _record(doc: Any) -> LicenseRecord:
    if not isinstance(doc, dict):
        raise LedgerCorruptError("ledger is damaged: a license record is not a JSON object")
    return LicenseRecord.from_doc(doc)


def _insert(conn: psycopg.Connection[Any], record: LicenseRecord) -> None:
    conn.execute(
        "INSERT INTO licet.licenses (license_id, created_at, doc) VALUES (%s, %s, %s)",
        (record.license_id, record.created_at, Jsonb(record.to_doc())),
    )
    conn.execute(
        "INSERT INTO licet.license_keys (key_hash, license_id) VALUES (%s, %s)",
        (record.key_hash, record.license_id),
    )
    if record.ip is not None:
        conn.execute(
            "INSERT INTO licet.license_ips (ip, license_id) VALUES (%s, %s)",
            (record.ip, record.license_id),
        )


# Appends events of one license (or of none) in their order: the rows come in
# ordinality order and each takes its cursor (a nextval default) as it is inserted.
_APPEND = (
    "INSERT INTO licet.events (license_id, doc)"
    " SELECT %s, e FROM unnest(%s::jsonb[]) WITH ORDINALITY AS t (e, n) ORDER BY n"
    " RETURNING position"
)

# A changed license and its new events in one statement: one round trip on the path
# of every activation.
_CHANGE_AND_APPEND = (
    "WITH changed AS (UPDATE licet.licenses SET doc = %s WHERE license_id = %s)"
    " INSERT INTO licet.events (license_id, doc)"
    " SELECT %s, e FROM unnest(%s::jsonb[]) WITH ORDINALITY AS t (e, n) ORDER BY n"
    " RETURNING position"
)


def _append(
    conn: psycopg.Connection[Any], license_id: str | None, events: Sequence[Event]
) -> list[int]:
    """Append events to the audit log, in order; their cursors, in that order."""
    if not events:
        return []
    rows = conn.execute(_APPEND, (license_id, [Jsonb(e.to_doc()) for e in events])).fetchall()
    return sorted(int(row[0]) for row in rows)  # handed out in insertion order


def _log(conn: psycopg.Connection[Any], license_id: str | None, events: Sequence[Event]) -> None:
    """Append events to the audit log, in order."""
    _append(conn, license_id, events)


def _logged(cursor: int, license_id: Any, doc: Any) -> LoggedEvent:
    try:
        if license_id is not None and not isinstance(license_id, str):
            raise TypeError("license_id is not text")
        return LoggedEvent(cursor=cursor, event=Event.from_doc(doc), license_id=license_id)
    except (KeyError, TypeError, ValueError) as err:
        raise LedgerCorruptError(f"ledger is damaged: audit event {cursor} is malformed") from err


def _index_products(conn: psycopg.Connection[Any], records: list[LicenseRecord]) -> None:
    names = sorted({r.product for r in records})
    if names:
        conn.execute(
            "INSERT INTO licet.products (name) SELECT unnest(%s::text[]) ON CONFLICT DO NOTHING",
            (names,),
        )


_NO_CURSOR = 2**63 - 1  # above every position: start at the newest license
_LOCK_BUCKET = "SELECT pg_advisory_xact_lock(hashtextextended(%s, 7170))"
_LOCK_PRODUCTS = "SELECT pg_advisory_xact_lock(hashtextextended('licet.products', 7171))"


class PostgresTransaction:
    """The transaction verbs over one database transaction (see :class:`LedgerTransaction`).

    A license read here is locked (``FOR UPDATE``) until the transaction
    ends; rate-limit buckets and new products take advisory locks, so
    every node waits its turn for exactly what it touches.
    """

    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        self._conn = conn
        self.added: list[str] = []  # ids of the licenses added, for a refusal's message
        self._cursors: list[int] = []  # of the events the last add or replace logged

    def license(
        self, *, license_id: str | None = None, key_hash: str | None = None
    ) -> LicenseRecord | None:
        """The license with this id, or the one ``key_hash`` was ever indexed to; row-locked."""
        if key_hash is not None:
            # Two primary-key look-ups, whatever the planner's statistics say.
            row = self._conn.execute(
                "SELECT doc FROM licet.licenses WHERE license_id ="
                " (SELECT license_id FROM licet.license_keys WHERE key_hash = %s) FOR UPDATE",
                (key_hash,),
            ).fetchone()
        elif license_id is not None:
            row = self._conn.execute(
                "SELECT doc FROM licet.licenses WHERE license_id = %s FOR UPDATE", (license_id,)
            ).fetchone()
        else:
            return None
        return None if row is None else _record(row[0])

    def products(self) -> frozenset[str]:
        """Every product name licensed; new licenses of every other node wait meanwhile."""
        # New licenses take turns, so two nodes never both accept the case twins
        # of one new product name.
        self._conn.execute(_LOCK_PRODUCTS)
        rows = self._conn.execute("SELECT name FROM licet.products").fetchall()
        return frozenset(str(row[0]) for row in rows)

    def failures(self, bucket: str, *, since: float, lock: bool) -> list[float]:
        """The bucket's failure times after ``since``, oldest first (``lock``: nodes take turns)."""
        if lock:
            self._conn.execute(_LOCK_BUCKET, (bucket,))
        row = self._conn.execute(
            "SELECT stamps FROM licet.attempts WHERE bucket = %s", (bucket,)
        ).fetchone()
        stamps = row[0] if row is not None else []
        return sorted(t for t in stamps if isinstance(t, float) and t > since)

    def record_failure(self, bucket: str, stamps: list[float], *, forget_before: float) -> None:
        """Keep ``stamps`` as the bucket's failures; forget other idle buckets nobody holds."""
        # Skipping any row another transaction holds: two nodes pruning at once
        # never wait for (or deadlock on) each other.
        self._conn.execute(
            "DELETE FROM licet.attempts WHERE bucket IN (SELECT bucket FROM licet.attempts"
            " WHERE last_at <= %s AND bucket <> %s FOR UPDATE SKIP LOCKED)",
            (forget_before, bucket),
        )
        self._conn.execute(
            "INSERT INTO licet.attempts (bucket, stamps, last_at) VALUES (%s, %s, %s)"
            " ON CONFLICT (bucket) DO UPDATE SET stamps = EXCLUDED.stamps,"
            " last_at = EXCLUDED.last_at",
            (bucket, stamps, max(stamps)),
        )

    def add(self, record: LicenseRecord) -> None:
        """Store a new license, its key, IP and product, and log its history."""
        self.added.append(record.license_id)
        self._conn.execute(_LOCK_PRODUCTS)
        _insert(self._conn, record)
        _index_products(self._conn, [record])
        self._cursors = _append(self._conn, record.license_id, record.history)

    def replace(
        self,
        before: LicenseRecord,
        after: LicenseRecord,
        *,
        revoked: Sequence[RevocationEntry] | None,
    ) -> None:
        """Store ``after`` for ``before``, with all :func:`~issuer.ledger.changes.plan` implies."""
        change = plan(before, after, revoked=revoked)
        conn = self._conn
        if change.new_key_hash is not None:
            conn.execute(
                "INSERT INTO licet.license_keys (key_hash, license_id) VALUES (%s, %s)",
                (change.new_key_hash, change.license_id),
            )
        if change.ip_moved:  # an edited license: its IP look-up follows
            conn.execute(
                "DELETE FROM licet.license_ips WHERE license_id = %s", (change.license_id,)
            )
            if change.new_ip is not None:
                conn.execute(
                    "INSERT INTO licet.license_ips (ip, license_id) VALUES (%s, %s)",
                    (change.new_ip, change.license_id),
                )
        if change.revocations is not None:
            revocation_list.revoke(
                conn, list(change.revocations.added), change.revocations.drop_until
            )
        # Last, and in one round trip with the license: the feed waits for
        # transactions holding uncommitted events.
        rows = conn.execute(
            _CHANGE_AND_APPEND,
            (
                Jsonb(change.record.to_doc()),
                change.license_id,
                change.license_id,
                [Jsonb(e.to_doc()) for e in change.events],
            ),
        ).fetchall()
        self._cursors = sorted(int(row[0]) for row in rows)  # handed out in insertion order

    def webhook_endpoints(self) -> list[Endpoint]:
        """Every webhook endpoint."""
        return read_endpoints(self._conn)

    def enqueue(self, deliveries: Sequence[Delivery]) -> None:
        """Queue deliveries with this transaction (their events' cursors from its last change)."""
        enqueue(self._conn, deliveries, self._cursors)

    def commit(self) -> None:
        """Commit now: a counted failure stays although the refusal that follows rolls back."""
        self._conn.commit()
