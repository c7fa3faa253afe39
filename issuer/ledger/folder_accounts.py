"""A ledger folder's console accounts: the :class:`~issuer.ledger.api.AccountStore` of a folder.

One concern: ``accounts/accounts.json`` (console users and API tokens, only
hashes of their secrets), ``accounts/sessions.json`` (sessions under the
SHA-256 of their cookie) and ``accounts/logins.json`` (recent failed log-ins
per counter). Each call runs in one transaction under the ledger's lock,
opened by the ledger that owns the folder, and an account change logs its
event to the same audit log as the licenses, in the same transaction.

Example:
    >>> store = Ledger("ledger").account_store  # doctest: +SKIP
    >>> [a.name for a in store.accounts("user")]  # doctest: +SKIP
    ['alice']
"""

from __future__ import annotations

import contextlib
import datetime as _dt
from collections.abc import Callable, Collection
from contextlib import AbstractContextManager
from typing import Any

from tinydb import Query
from tinydb.table import Table

from issuer.errors import AccountExistsError, AccountNotFoundError, LedgerExistsError
from issuer.ledger.api import LoginCount
from issuer.ledger.folder_layout import ACCOUNTS
from issuer.ledger.folder_log import log_event
from issuer.ledger.shards import ShardTransaction
from issuer.records import Account, Event, Session

__all__ = ["FolderAccounts", "restore_accounts"]


class FolderAccounts:
    """Console users, API tokens, sessions and log-in counters in one ledger folder.

    Args:
        transaction: opens one locked transaction of the ledger (the owner's lock,
            journal replay and all); what a block writes is kept only where the
            block commits it.
    """

    def __init__(self, transaction: Callable[[], AbstractContextManager[ShardTransaction]]) -> None:
        self._transaction = transaction

    def add_account(self, account: Account, event: Event) -> None:
        """Store a new console user or API token, and log ``event``.

        Raises:
            AccountExistsError: one of that kind and name exists.
        """
        with self._transaction() as txn:
            table = txn.table(ACCOUNTS, "accounts")
            if table.contains(_account_query(account.kind, account.name)):
                raise AccountExistsError(f"a {account.kind} named {account.name!r} exists already")
            table.insert(account.to_doc())
            log_event(txn, event)
            txn.commit()

    def remove_account(self, kind: str, name: str, event: Event) -> None:
        """Remove a user (ending their sessions) or revoke a token, and log ``event``.

        Raises:
            AccountNotFoundError: no such account.
        """
        with self._transaction() as txn:
            if not txn.table(ACCOUNTS, "accounts").remove(_account_query(kind, name)):
                raise AccountNotFoundError(f"no {kind} named {name!r}")
            if kind == "user":
                txn.table(ACCOUNTS, "sessions").remove(Query().user == name)
            log_event(txn, event)
            txn.commit()

    def accounts(self, kind: str) -> list[Account]:
        """Every account of a kind (``user`` or ``token``), by name."""
        with self._transaction() as txn:
            docs = txn.table(ACCOUNTS, "accounts").search(Query().kind == kind)
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
            doc = txn.table(ACCOUNTS, "accounts").get(cond)
        return None if doc is None else Account.from_doc(doc)

    def open_session(self, session: Session, *, drop_unused_since: _dt.datetime) -> None:
        """Store a new session; sessions unused since ``drop_unused_since`` are dropped.

        Raises:
            AccountNotFoundError: the user was removed meanwhile (by another process).
        """
        with self._transaction() as txn:
            if not txn.table(ACCOUNTS, "accounts").contains(_account_query("user", session.user)):
                raise AccountNotFoundError(f"no user named {session.user!r}")
            table = txn.table(ACCOUNTS, "sessions")
            table.remove(Query().last_seen < drop_unused_since.isoformat())
            table.insert(session.to_doc())
            txn.commit()

    def session(self, key_hash: str) -> Session | None:
        """The session stored under this hash, if any."""
        with self._transaction() as txn:
            doc = txn.table(ACCOUNTS, "sessions").get(Query().key_hash == key_hash)
        return None if doc is None else Session.from_doc(doc)

    def save_session(self, session: Session) -> None:
        """Record a session's new last use (a session ended meanwhile stays ended)."""
        with self._transaction() as txn:
            txn.table(ACCOUNTS, "sessions").update(
                session.to_doc(), Query().key_hash == session.key_hash
            )
            txn.commit()

    def end_session(self, key_hash: str) -> None:
        """Remove a session (logout, expiry); nothing happens if it is gone already."""
        with self._transaction() as txn:
            if txn.table(ACCOUNTS, "sessions").remove(Query().key_hash == key_hash):
                txn.commit()

    def login_failures(self, subjects: list[str], since: _dt.datetime) -> int:
        """The most failed logins since ``since`` among the counters of ``subjects``."""
        with self._transaction() as txn:
            table = txn.table(ACCOUNTS, "logins")
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
            table = txn.table(ACCOUNTS, "logins")
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
            table = txn.table(ACCOUNTS, "logins")
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


def restore_accounts(txn: ShardTransaction, accounts: list[Account]) -> None:
    """Give a new ledger copied accounts, in the caller's transaction.

    Raises:
        LedgerExistsError: the ledger has accounts already.
    """
    table = txn.table(ACCOUNTS, "accounts")
    if table.all():
        raise LedgerExistsError("the ledger has an event log or accounts already")
    table.insert_multiple(a.to_doc() for a in accounts)


def _account_query(kind: str, name: str) -> Any:
    return (Query().kind == kind) & (Query().name == name)


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
