"""The ledger's vocabulary and the interface every backend provides.

Both backends import this module and nothing of each other: the identity a
ledger records (:class:`LedgerInfo`), its format name and defaults,
:class:`LedgerBackend`, what the issuer asks of a ledger whatever holds it,
and :class:`AccountStore`, the narrower port of the console's accounts that
every backend provides beside its licenses.
Both keep the same records with the same guarantees: a redemption,
regeneration or revocation reads the license fresh in a
:class:`LedgerTransaction`, under a lock that every other process — on this
machine or another — respects, and the policy decides there, once for both
backends; so a key is used once and the monthly limit holds however many
nodes race.

Example:
    >>> from issuer.ledger import open_ledger
    >>> ledger: LedgerBackend = open_ledger("ledger")  # doctest: +SKIP
    >>> ledger.info.provider  # doctest: +SKIP
"""

from __future__ import annotations

import abc
import datetime as _dt
from collections.abc import Callable, Collection, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from issuer.ledger.webhook_api import SendClaim, WebhookRows, WebhookStorage
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

__all__ = [
    "AccountStore",
    "DEFAULT_LEASE_DAYS",
    "DEFAULT_SHARD_WIDTH",
    "FORMAT",
    "LedgerBackend",
    "LedgerInfo",
    "LedgerTransaction",
    "LoginCount",
    "SendClaim",
    "WebhookRows",
    "WebhookStorage",
]

FORMAT = "licet-ledger"  # what every ledger calls itself, in ledger.json or licet.meta
DEFAULT_LEASE_DAYS = 30
DEFAULT_SHARD_WIDTH = 3  # hex digits per shard name of a folder: 16**3 = 4096 shards per kind


@dataclass(frozen=True)
class LedgerInfo:
    """The ledger's identity, layout and defaults, as the ledger records them.

    Attributes:
        provider: the provider name tokens are issued under.
        created_at: when ``issuer init`` made the ledger.
        secret_check: identifies the activation-key secret that belongs to it.
        shard_width: hex digits in a folder's shard file names (16**width shards per kind).
        lease_days: the provider's default lease in days (0: no lease).
        accept_machine_id: the provider's default for licenses that do not say
            whether activations with a custom machine id are accepted.
    """

    provider: str
    created_at: _dt.datetime
    secret_check: str
    shard_width: int = DEFAULT_SHARD_WIDTH
    lease_days: int = DEFAULT_LEASE_DAYS
    accept_machine_id: bool = True


class LoginCount(Protocol):
    """What the ledger needs of a console log-in to count it (a ``LoginAttempt`` of the policy)."""

    @property
    def subjects(self) -> tuple[str, ...]:
        """The counters the log-in counts against, sorted."""

    @property
    def now(self) -> _dt.datetime:
        """When the log-in is made: its provisional failure carries this time."""

    @property
    def horizon(self) -> _dt.datetime:
        """Failures at or before this moment are forgotten."""

    @property
    def max_subjects(self) -> int:
        """Counters the ledger keeps at most (the most recently failing ones)."""

    def check(self, recent: Mapping[str, Sequence[_dt.datetime]]) -> None:
        """Refuse the log-in when a limit is reached (the rule is the caller's, not the ledger's).

        Raises:
            RateLimitedError: a limit is reached.
        """


class LedgerTransaction(Protocol):
    """The verbs of one ledger transaction; everything runs under the ledger's one lock.

    A backend keeps what it is told and decides nothing: which license a key
    opens, what a change revokes and whether a client is at its limit are
    decided above it (:mod:`issuer.policy`), once for both backends. The
    transaction commits when its block ends normally and writes nothing when
    a refusal leaves it, unless :meth:`commit` kept a counted failure first.
    """

    def license(
        self, *, license_id: str | None = None, key_hash: str | None = None
    ) -> LicenseRecord | None:
        """The license with this id, or the one this key hash was ever indexed to; locked.

        ``None`` when there is none (or neither is given). A key of an earlier
        generation finds its license too: whether it opens it is the policy's
        call (:func:`issuer.policy.lifecycle.current_key`).
        """

    def products(self) -> frozenset[str]:
        """Every product name the ledger has licensed; new licenses of other processes wait."""

    def failures(self, bucket: str, *, since: float, lock: bool) -> list[float]:
        """The times (epoch seconds, oldest first) of a bucket's failures after ``since``.

        Args:
            bucket: the client's bucket.
            since: failures at or before this moment are left out.
            lock: read under the bucket's own lock, so that counts of other
                nodes wait (a folder ledger is always locked whole).
        """

    def record_failure(self, bucket: str, stamps: list[float], *, forget_before: float) -> None:
        """Keep ``stamps`` as the bucket's failures; drop buckets idle since ``forget_before``."""

    def add(self, record: LicenseRecord) -> None:
        """Store a new license, indexing its key, IP and product, and log its history.

        Raises:
            LedgerExistsError: a license with this id exists (ids are random; retry).
        """

    def replace(
        self,
        before: LicenseRecord,
        after: LicenseRecord,
        *,
        revoked: Sequence[RevocationEntry] | None,
    ) -> None:
        """Store ``after`` for ``before``, with all :func:`issuer.ledger.changes.plan` implies.

        Args:
            before: the license as :meth:`license` read it in this transaction.
            after: the license to keep.
            revoked: the entries the change adds to the revocation list, as the
                policy decided them; ``None`` when the list stays as it is.
        """

    def commit(self) -> None:
        """Make what was written so far durable now: a counted failure, before its refusal."""

    def webhook_endpoints(self) -> list[Endpoint]:
        """Every webhook endpoint, read in the transaction (see :class:`WebhookRows`)."""

    def enqueue(self, deliveries: Sequence[Delivery]) -> None:
        """Queue webhook deliveries with the change (see :meth:`WebhookRows.enqueue`)."""


class AccountStore(Protocol):
    """Where a ledger keeps who may use the console and the admin API; decides nothing.

    Console users and API tokens (only hashes of their secrets), sessions, and
    the counters of failed log-ins. Each backend provides one beside its
    licenses (:attr:`LedgerBackend.account_store`), in the same folder or
    database and under the same lock; :class:`issuer.licensing.accounts.Accounts`
    needs nothing else of a ledger. The rules (who may log in, when a session
    ends, when a log-in is refused) are the caller's.
    """

    def add_account(self, account: Account, event: Event) -> None:
        """Store a new console user or API token, and log ``event``.

        Raises:
            AccountExistsError: one of that kind and name exists.
        """

    def remove_account(self, kind: str, name: str, event: Event) -> None:
        """Remove a user (ending their sessions) or revoke a token, and log ``event``.

        Raises:
            AccountNotFoundError: no such account.
        """

    def accounts(self, kind: str) -> list[Account]:
        """Every account of a kind (``user`` or ``token``), by name."""

    def find_account(
        self, kind: str, *, name: str | None = None, secret_hash: str | None = None
    ) -> Account | None:
        """The account of a kind with this name, or with this secret hash (tokens)."""

    def open_session(self, session: Session, *, drop_unused_since: _dt.datetime) -> None:
        """Store a new session; sessions unused since ``drop_unused_since`` are dropped.

        Raises:
            AccountNotFoundError: the session's user was removed meanwhile.
        """

    def session(self, key_hash: str) -> Session | None:
        """The session stored under this hash, if any."""

    def save_session(self, session: Session) -> None:
        """Record a session's new last use (a session ended meanwhile stays ended)."""

    def end_session(self, key_hash: str) -> None:
        """Remove a session (logout, expiry); nothing happens if it is gone already."""

    def login_failures(self, subjects: list[str], since: _dt.datetime) -> int:
        """The most failed logins since ``since`` among the counters of ``subjects``."""

    def reserve_login(self, attempt: LoginCount) -> None:
        """Count a log-in as a failure before its password is checked, unless a limit refuses it.

        In one step under a lock every process and node respects: the
        attempt's counters are read, :meth:`LoginCount.check` judges them
        (a refusal writes nothing), and the attempt is counted against each.
        Counters with no failure left in the window are forgotten, and at most
        ``attempt.max_subjects`` counters are kept (the most recent ones).

        Raises:
            RateLimitedError: a limit is reached (nothing is counted).
        """

    def release_login(self, attempt: LoginCount, *, forget: Collection[str] = ()) -> None:
        """Take back the failure :meth:`reserve_login` counted for ``attempt``.

        Args:
            attempt: the reserved log-in.
            forget: subjects whose every failure goes too (a successful log-in's pair).
        """


class LedgerBackend(abc.ABC):
    """What the issuer asks of a ledger, whatever holds it.

    Attributes:
        info: the ledger's identity and defaults (provider, secret check, ...).
        location: where the ledger is, fit to print (a URL never shows a password).
        account_store: the console's users, tokens, sessions and log-in
            counters, kept beside the licenses.
    """

    info: LedgerInfo
    location: str
    account_store: AccountStore

    @abc.abstractmethod
    def webhooks(self) -> WebhookStorage:
        """The ledger's webhook endpoints and delivery queue."""

    def protected_paths(self) -> tuple[Path, ...]:
        """Files and folders of the ledger that an output file must never replace."""
        return ()

    @abc.abstractmethod
    def get(self, license_id: str) -> LicenseRecord:
        """The license with this id.

        Raises:
            LicenseNotFoundError: no such license.
        """

    @abc.abstractmethod
    def licenses(self) -> list[LicenseRecord]:
        """Every license, oldest first."""

    def license_by_key(self, key_hash: str) -> LicenseRecord | None:
        """The license ``key_hash`` was ever indexed to (any generation), read without a change.

        Whether the key is the license's current one is the caller's to judge.
        """
        with self.transaction() as tx:
            return tx.license(key_hash=key_hash)

    @abc.abstractmethod
    def licenses_for_ip(self, ip: str) -> list[LicenseRecord]:
        """The licenses assigned to ``ip`` (for automatic activation)."""

    @abc.abstractmethod
    def products(self) -> frozenset[str]:
        """Every product name the ledger has a license for (or had: revoked ones count)."""

    @abc.abstractmethod
    def failed_attempts(self, *, since: _dt.datetime) -> dict[str, list[float]]:
        """Rate-limit buckets with failures after ``since``: bucket -> times, oldest first."""

    @abc.abstractmethod
    def forget_attempts(self, matches: Callable[[str], bool]) -> list[str]:
        """Forget the failures of every rate-limit bucket ``matches`` accepts.

        Returns:
            The buckets forgotten, sorted (their clients are no longer limited).
        """

    @abc.abstractmethod
    def revocations(self) -> tuple[int, list[RevocationEntry]]:
        """The revocation list's serial and its entries (expired ones included)."""

    @abc.abstractmethod
    def revocation_serial(self) -> int | None:
        """The revocation list's serial, read cheaply and without the ledger's lock.

        Asked before every answer of the list, so that an unchanged list is
        served from memory; ``None`` when only :meth:`revocations` can tell.
        """

    @abc.abstractmethod
    def restore_revocations(self, serial: int, entries: list[RevocationEntry]) -> None:
        """Give a new, empty ledger a copied revocation list (serial and entries).

        Raises:
            LedgerExistsError: the ledger has a revocation list already.
        """

    @abc.abstractmethod
    def transaction(self) -> AbstractContextManager[LedgerTransaction]:
        """One transaction under the ledger's one lock (a folder's ``flock``, a ``BEGIN``).

        It commits when the block ends normally; a refusal raised in it writes
        nothing (but what :meth:`LedgerTransaction.commit` kept before).

        Raises:
            LedgerBusyError: another process held the lock too long.
            LedgerError: the ledger cannot be read or written.
        """

    def add(
        self,
        record: LicenseRecord,
        *,
        check_product: Callable[[frozenset[str]], None] | None = None,
    ) -> None:
        """Store a new license and index its key (and IP, and product).

        Args:
            record: the new license.
            check_product: called under the ledger's lock with the known product
                names; a refusal it raises writes nothing.

        Raises:
            LedgerExistsError: a license with this id exists (ids are random; retry).
        """
        with self.transaction() as tx:
            if check_product is not None:
                check_product(tx.products())
            tx.add(record)

    @abc.abstractmethod
    def add_many(self, records: list[LicenseRecord], *, log_history: bool = True) -> None:
        """Store many new licenses at once (imports, copies, benchmarks).

        Args:
            records: the new licenses.
            log_history: append their histories to the audit log (``False``: a
                copy, which gives the log whole with :meth:`restore_console`).
        """

    @abc.abstractmethod
    def page(
        self, query: LicenseQuery, *, before: int | None = None, limit: int = 50
    ) -> tuple[list[LicenseSummary], int | None]:
        """Licenses matching ``query``, newest first, one page at a time.

        Args:
            query: the conditions.
            before: the cursor a previous page returned (``None``: start at the newest).
            limit: the most licenses to return.

        Returns:
            The summaries, and the cursor of the next page (``None`` on the last one).
        """

    # -- the provider console's storage -------------------------------------------------

    @abc.abstractmethod
    def events(self, *, after: int = 0, limit: int = 100) -> list[LoggedEvent]:
        """Audit events in the order they happened, from the one after cursor ``after``.

        Every change's events are appended in the transaction that makes the
        change, so an event the feed has passed never appears behind it later.
        """

    @abc.abstractmethod
    def restore_console(self, accounts: list[Account], events: list[LoggedEvent]) -> None:
        """Give a new ledger a copied audit log and console accounts.

        The events keep their order; their cursors are kept where the backend
        can number its log freely (a folder numbers it 1, 2, 3, ...).

        Raises:
            LedgerExistsError: the ledger has events or accounts already.
        """

    # The account verbs answered by :attr:`account_store`, so that a ledger stays
    # one handle for the tools and tests that hold one; the issuer's own code
    # (:mod:`issuer.licensing.accounts`) is given the store itself.

    def add_account(self, account: Account, event: Event) -> None:
        """:meth:`AccountStore.add_account` of :attr:`account_store`."""
        self.account_store.add_account(account, event)

    def remove_account(self, kind: str, name: str, event: Event) -> None:
        """:meth:`AccountStore.remove_account` of :attr:`account_store`."""
        self.account_store.remove_account(kind, name, event)

    def accounts(self, kind: str) -> list[Account]:
        """:meth:`AccountStore.accounts` of :attr:`account_store`."""
        return self.account_store.accounts(kind)

    def find_account(
        self, kind: str, *, name: str | None = None, secret_hash: str | None = None
    ) -> Account | None:
        """:meth:`AccountStore.find_account` of :attr:`account_store`."""
        return self.account_store.find_account(kind, name=name, secret_hash=secret_hash)

    def open_session(self, session: Session, *, drop_unused_since: _dt.datetime) -> None:
        """:meth:`AccountStore.open_session` of :attr:`account_store`."""
        self.account_store.open_session(session, drop_unused_since=drop_unused_since)

    def session(self, key_hash: str) -> Session | None:
        """:meth:`AccountStore.session` of :attr:`account_store`."""
        return self.account_store.session(key_hash)

    def save_session(self, session: Session) -> None:
        """:meth:`AccountStore.save_session` of :attr:`account_store`."""
        self.account_store.save_session(session)

    def end_session(self, key_hash: str) -> None:
        """:meth:`AccountStore.end_session` of :attr:`account_store`."""
        self.account_store.end_session(key_hash)

    def login_failures(self, subjects: list[str], since: _dt.datetime) -> int:
        """:meth:`AccountStore.login_failures` of :attr:`account_store`."""
        return self.account_store.login_failures(subjects, since)

    def reserve_login(self, attempt: LoginCount) -> None:
        """:meth:`AccountStore.reserve_login` of :attr:`account_store`."""
        self.account_store.reserve_login(attempt)

    def release_login(self, attempt: LoginCount, *, forget: Collection[str] = ()) -> None:
        """:meth:`AccountStore.release_login` of :attr:`account_store`."""
        self.account_store.release_login(attempt, forget=forget)

    @abc.abstractmethod
    def check_writable(self) -> None:
        """Find out, cheaply, whether this process can write the ledger now (the health check).

        Writes nothing: a folder ledger is writable and its lock can be taken
        at once; a database answers one query on a pooled connection and is
        not a read-only standby.

        Raises:
            LedgerUnavailableError: it cannot, and ``retry_after`` says when to look again.
        """

    def close(self) -> None:  # noqa: B027 - a file ledger holds nothing open
        """Release what the ledger holds open (a database's connections)."""
