"""A PostgreSQL ledger's console accounts: its :class:`~issuer.ledger.api.AccountStore`.

One concern: ``licet.accounts`` (console users and admin API tokens, only
hashes of their secrets), ``licet.sessions`` (under the SHA-256 of their
cookie; a user's sessions go with the user by a cascading foreign key) and
``licet.login_failures`` (recent failed log-ins per counter). Each call is
one transaction on the ledger's pool; an account change logs its event to
the same audit log as the licenses, in the same transaction. Log-in counters
are counted under advisory locks, taken in one order on every node.

Example:
    >>> store = PostgresLedger(url).account_store  # doctest: +SKIP
    >>> [a.name for a in store.accounts("token")]  # doctest: +SKIP
    ['ci']
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import json
from collections.abc import Callable, Collection, Sequence
from typing import Any

import psycopg
from psycopg import errors as pg_errors
from psycopg.types.json import Jsonb

from issuer.errors import AccountExistsError, AccountNotFoundError, LedgerError
from issuer.ledger.api import LoginCount
from issuer.ledger.connections import Database
from issuer.records import Account, Event, Session

__all__ = ["PostgresAccounts", "copy_accounts"]

#: Appends events of one license (or of none) to the audit log, in the caller's transaction.
Log = Callable[[psycopg.Connection[Any], str | None, Sequence[Event]], None]

_LOCK_LOGINS = "SELECT pg_advisory_xact_lock(hashtextextended(%s, 7172))"


class PostgresAccounts:
    """Console users, API tokens, sessions and log-in counters in one PostgreSQL ledger.

    Args:
        db: the ledger's connections.
        log: appends events to the ledger's audit log (the ledger's own way).
    """

    def __init__(self, db: Database, *, log: Log) -> None:
        self._db = db
        self._log = log

    def _transaction(self) -> contextlib.AbstractContextManager[psycopg.Connection[Any]]:
        return self._db.transaction()

    def add_account(self, account: Account, event: Event) -> None:
        """Store a new console user or API token, and log ``event``.

        Raises:
            AccountExistsError: one of that kind and name exists.
        """
        try:
            with self._transaction() as conn:
                conn.execute(
                    "INSERT INTO licet.accounts (kind, name, secret_hash, doc)"
                    " VALUES (%s, %s, %s, %s)",
                    (account.kind, account.name, account.secret_hash, Jsonb(account.to_doc())),
                )
                self._log(conn, None, [event])
        except LedgerError as err:
            if isinstance(err.__cause__, pg_errors.UniqueViolation):
                raise AccountExistsError(
                    f"a {account.kind} named {account.name!r} exists already"
                ) from None
            raise

    def remove_account(self, kind: str, name: str, event: Event) -> None:
        """Remove a user (ending their sessions on every node) or a token, and log ``event``.

        Raises:
            AccountNotFoundError: no such account.
        """
        with self._transaction() as conn:
            # The user's sessions go with the account (a cascading foreign key).
            gone = conn.execute(
                "DELETE FROM licet.accounts WHERE kind = %s AND name = %s RETURNING name",
                (kind, name),
            ).fetchone()
            if gone is None:
                raise AccountNotFoundError(f"no {kind} named {name!r}")
            self._log(conn, None, [event])

    def accounts(self, kind: str) -> list[Account]:
        """Every account of a kind (``user`` or ``token``), by name."""
        with self._transaction() as conn:
            rows = conn.execute("SELECT doc FROM licet.accounts WHERE kind = %s", (kind,))
            found = [Account.from_doc(row[0]) for row in rows.fetchall()]
        # Sorted here, not by the database's collation: the same order on every backend.
        return sorted(found, key=lambda a: a.name)

    def find_account(
        self, kind: str, *, name: str | None = None, secret_hash: str | None = None
    ) -> Account | None:
        """The account of a kind with this name, or with this secret hash (tokens)."""
        if name is not None:
            sql, value = "SELECT doc FROM licet.accounts WHERE kind = %s AND name = %s", name
        elif secret_hash is not None:
            sql = "SELECT doc FROM licet.accounts WHERE kind = %s AND secret_hash = %s"
            value = secret_hash
        else:
            return None
        with self._transaction() as conn:
            row = conn.execute(sql, (kind, value)).fetchone()
        return None if row is None else Account.from_doc(row[0])

    def open_session(self, session: Session, *, drop_unused_since: _dt.datetime) -> None:
        """Store a new session; sessions unused since ``drop_unused_since`` are dropped.

        Raises:
            AccountNotFoundError: the user was removed meanwhile (on any node).
        """
        try:
            with self._transaction() as conn:
                conn.execute(
                    "DELETE FROM licet.sessions WHERE key_hash IN (SELECT key_hash"
                    " FROM licet.sessions WHERE last_seen < %s FOR UPDATE SKIP LOCKED)",
                    (drop_unused_since,),
                )
                conn.execute(
                    "INSERT INTO licet.sessions (key_hash, user_name, created_at, last_seen)"
                    " VALUES (%s, %s, %s, %s)",
                    (session.key_hash, session.user, session.created_at, session.last_seen),
                )
        except LedgerError as err:
            if isinstance(err.__cause__, pg_errors.ForeignKeyViolation):
                raise AccountNotFoundError(f"no user named {session.user!r}") from None
            raise

    def session(self, key_hash: str) -> Session | None:
        """The session stored under this hash, if any."""
        with self._transaction() as conn:
            row = conn.execute(
                "SELECT key_hash, user_name, created_at, last_seen FROM licet.sessions"
                " WHERE key_hash = %s",
                (key_hash,),
            ).fetchone()
        if row is None:
            return None
        return Session(
            key_hash=row[0],
            user=row[1],
            created_at=row[2].astimezone(_dt.UTC),
            last_seen=row[3].astimezone(_dt.UTC),
        )

    def save_session(self, session: Session) -> None:
        """Record a session's new last use (a session ended meanwhile stays ended)."""
        with self._transaction() as conn:
            conn.execute(
                "UPDATE licet.sessions SET last_seen = %s WHERE key_hash = %s",
                (session.last_seen, session.key_hash),
            )

    def end_session(self, key_hash: str) -> None:
        """Remove a session (logout, expiry); nothing happens if it is gone already."""
        with self._transaction() as conn:
            conn.execute("DELETE FROM licet.sessions WHERE key_hash = %s", (key_hash,))

    def login_failures(self, subjects: list[str], since: _dt.datetime) -> int:
        """The most failed logins since ``since`` among the counters of ``subjects``."""
        with self._transaction() as conn:
            rows = conn.execute(
                "SELECT times FROM licet.login_failures WHERE subject = ANY(%s)", (subjects,)
            ).fetchall()
        return max((sum(1 for t in row[0] if t >= since) for row in rows), default=0)

    def reserve_login(self, attempt: LoginCount) -> None:
        """Count a log-in as a failure before its password is checked, unless a limit refuses it.

        The attempt's counters are locked (advisory locks, in one order on
        every node), read, judged by ``attempt`` and counted in one
        transaction: however many nodes race, no more log-ins pass than the
        limits allow. A refusal rolls back and writes nothing.

        Raises:
            RateLimitedError: a limit is reached (nothing is counted).
        """
        with self._transaction() as conn:
            recent = _locked_logins(conn, attempt)
            attempt.check(recent)
            for subject in attempt.subjects:
                conn.execute(
                    "INSERT INTO licet.login_failures (subject, times, last_at)"
                    " VALUES (%s, %s, %s) ON CONFLICT (subject) DO UPDATE"
                    " SET times = EXCLUDED.times, last_at = EXCLUDED.last_at",
                    (subject, [*recent.get(subject, []), attempt.now], attempt.now),
                )
            # Forget counters with no recent failure, and bound the table against a
            # flood of addresses by keeping the most recently failing ones; rows
            # another node is counting are left for the next time.
            conn.execute(
                "DELETE FROM licet.login_failures WHERE subject IN (SELECT subject"
                " FROM licet.login_failures WHERE last_at <= %s FOR UPDATE SKIP LOCKED)",
                (attempt.horizon,),
            )
            conn.execute(
                "DELETE FROM licet.login_failures WHERE subject IN (SELECT subject"
                " FROM licet.login_failures ORDER BY last_at DESC OFFSET %s"
                " FOR UPDATE SKIP LOCKED)",
                (attempt.max_subjects,),
            )

    def release_login(self, attempt: LoginCount, *, forget: Collection[str] = ()) -> None:
        """Take back the failure :meth:`reserve_login` counted for ``attempt``.

        Args:
            attempt: the reserved log-in.
            forget: subjects whose every failure goes too (a successful log-in's pair).
        """
        with self._transaction() as conn:
            recent = _locked_logins(conn, attempt)
            for subject, times in recent.items():
                if attempt.now in times:
                    times.remove(attempt.now)  # one failure: another log-in may share the instant
                elif subject not in forget:
                    continue
                if subject in forget or not times:
                    conn.execute("DELETE FROM licet.login_failures WHERE subject = %s", (subject,))
                else:
                    conn.execute(
                        "UPDATE licet.login_failures SET times = %s WHERE subject = %s",
                        (times, subject),
                    )


def copy_accounts(cur: psycopg.Cursor[Any], accounts: list[Account]) -> None:
    """Load copied accounts into a new ledger (``COPY``), in the caller's transaction."""
    with cur.copy("COPY licet.accounts (kind, name, secret_hash, doc) FROM STDIN") as copy:
        for a in accounts:
            copy.write_row((a.kind, a.name, a.secret_hash, json.dumps(a.to_doc())))


def _locked_logins(
    conn: psycopg.Connection[Any], attempt: LoginCount
) -> dict[str, list[_dt.datetime]]:
    """The attempt's counters, locked until the transaction ends: failures in the window."""
    for subject in attempt.subjects:  # sorted: two nodes never wait for each other in a circle
        conn.execute(_LOCK_LOGINS, (subject,))
    rows = conn.execute(
        "SELECT subject, times FROM licet.login_failures WHERE subject = ANY(%s)",
        (list(attempt.subjects),),
    ).fetchall()
    return {str(row[0]): sorted(t for t in row[1] if t > attempt.horizon) for row in rows}
