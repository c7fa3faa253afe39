"""Connections to a PostgreSQL ledger: a pool per process that never hands out a dead one.

:class:`Database` keeps a few connections open for the ledger's
transactions. When the database ends them — a restart, a failover, an
administrator terminating sessions — the server tells each idle connection
so and closes it; a connection taken from the pool is therefore looked at
first (one poll of its socket, no round trip) and, if the server has spoken
or closed it, discarded for a fresh one. The request that takes it never
notices.

When the database cannot be reached at all, a request is answered at once
with :class:`~verifier.errors.LedgerUnavailableError` (``Retry-After``),
not after a long wait: the pool's connection attempts are watched, and once
one has failed a request waits only a moment for the next. Nothing is ever
retried after a statement was sent: a connection lost in the middle of a
transaction, or during its commit (whose fate the client cannot know), is
the same 503, and its client asks again.

Example:
    >>> db = Database("postgresql://licet@db.example/licet", lock_timeout=10.0)  # doctest: +SKIP
    >>> with db.transaction() as conn:  # doctest: +SKIP
    ...     conn.execute("SELECT 1")
"""

from __future__ import annotations

import contextlib
import select
import threading
import time
from collections.abc import Iterator
from typing import Any, Self

import psycopg
from psycopg import errors as pg_errors
from psycopg.conninfo import conninfo_to_dict
from psycopg_pool import ConnectionPool, PoolTimeout

from issuer.errors import (
    LedgerBusyError,
    LedgerError,
    LedgerMissingError,
    LedgerUnavailableError,
)
from verifier.errors import BadInputError

__all__ = ["CONNECT_TIMEOUT", "RETRY_AFTER", "Database", "redact_url", "unreachable"]

_POOL_SIZE = 8
#: Seconds one connection attempt may take, per host the URL names (unless the URL
#: sets ``connect_timeout``). A database on the network answers in milliseconds; one
#: silent for 2 s is down or failing over, and the request is better answered 503
#: with Retry-After now than held. 2 s is also the least libpq and psycopg accept.
CONNECT_TIMEOUT = 2
#: Seconds a client is told to wait (Retry-After) when the database cannot be
#: reached: by then this node has tried to connect again.
RETRY_AFTER = 2
# Most a request waits for a pooled connection while the database answers: only a
# request queued behind busy connections waits that long (then: ledger-busy).
_CONNECTION_WAIT = 3.0
# How often a waiting request looks whether the pool's connection attempt failed,
# and all it waits once one has: a connection to a database that has just come back
# is made within it, and while the database is away the answer comes at once.
_RECHECK = 0.1
# The pool retries a lost connection for this long (after 1 s, then 2 s), then lets
# the next request start a new attempt: service resumes within seconds of the
# database's return, never after an ever longer back-off.
_RECONNECT = 2.0
# Server errors that mean the database is going away or turning connections away:
# administrator or crash shutdown, cannot connect now (starting, stopping, in
# recovery), too many connections.
_GONE = frozenset({"57P01", "57P02", "57P03", "53300"})


def redact_url(url: str) -> str:
    """The URL fit to print: user, hosts and ports, and database, never a password.

    A URL naming a primary and its standby (``postgresql://u@h1:5432,h2:5432/db``)
    shows both.

    Raises:
        BadInputError: not a PostgreSQL URL (the message does not repeat it).
    """
    params = _params(url)
    user = params.get("user")
    hosts = (params.get("host") or "localhost").split(",")
    ports = (params.get("port") or "5432").split(",")
    if len(ports) == 1:  # one port for every host, as libpq reads it
        ports *= len(hosts)
    places = ",".join(
        f"{host or 'localhost'}:{port or '5432'}" for host, port in zip(hosts, ports, strict=False)
    )
    dbname = params.get("dbname") or user or ""
    return f"postgresql://{user + '@' if user else ''}{places}/{dbname}"


def unreachable(err: psycopg.Error) -> bool:
    """Whether ``err`` says the database cannot be reached, rather than that it refused the work.

    psycopg gives no SQLSTATE when it could not connect or lost the connection;
    otherwise the server said so itself (class 08, or one of :data:`_GONE`).
    """
    if not isinstance(err, psycopg.OperationalError):
        return False
    state = err.sqlstate
    return state is None or state.startswith("08") or state in _GONE


class Database:
    """The ledger database's connections in this process.

    Args:
        url: ``postgresql://...``; its password is used to connect and never shown.
        lock_timeout: seconds to wait for a row lock; a free pooled connection is
            waited for at most this long too (and at most 3 s).
    """

    def __init__(self, url: str, *, lock_timeout: float) -> None:
        self.location = redact_url(url)
        self.lock_timeout = lock_timeout
        self._url = url
        params = _params(url)
        self._secret_words = [params["password"]] if params.get("password") else []
        # The URL's own connect_timeout, if it sets one, wins (a slow link).
        self._connect_kwargs: dict[str, Any] = (
            {} if "connect_timeout" in params else {"connect_timeout": CONNECT_TIMEOUT}
        )
        self._wait = min(lock_timeout, _CONNECTION_WAIT)
        self._reach = _Reach()
        self._pool: ConnectionPool[psycopg.Connection[Any]] | None = None
        self._pool_lock = threading.Lock()  # a server's threads open one pool, not one each

    @contextlib.contextmanager
    def direct(self) -> Iterator[psycopg.Connection[Any]]:
        """A connection of its own (opening, creating, upgrading), errors translated.

        In autocommit mode, so each ``conn.transaction()`` block is a whole
        transaction that commits at its end — never a savepoint of an
        implicit transaction that closing the connection would roll back.
        """
        with self.translated():
            conn = psycopg.connect(self._url, autocommit=True, **self._connect_kwargs)
            try:
                yield conn
            finally:
                conn.close()

    @contextlib.contextmanager
    def transaction(self) -> Iterator[psycopg.Connection[Any]]:
        """One transaction on a pooled connection: committed on success, else rolled back.

        Raises:
            LedgerUnavailableError: the database cannot be reached, or the
                connection was lost during the transaction (its commit included).
            LedgerBusyError: no connection came free, or a row stayed locked.
        """
        with self.translated():
            pool = self._open_pool()
            conn = self._checkout(pool)
            try:
                with conn:  # commits at its end, rolls back on an error
                    yield conn
            finally:
                pool.putconn(conn)  # a broken one is discarded and replaced

    def close(self) -> None:
        """Close the connection pool (a later transaction opens a new one)."""
        with self._pool_lock:
            if self._pool is not None:
                self._pool.close()
                self._pool = None

    @contextlib.contextmanager
    def translated(self) -> Iterator[None]:
        """Database errors become one-line ledger errors that never show the password."""
        try:
            yield
        except (pg_errors.LockNotAvailable, pg_errors.QueryCanceled) as err:
            raise LedgerBusyError(
                f"ledger is busy: a license stayed locked for {self.lock_timeout:g} s"
            ) from err
        except pg_errors.UndefinedTable as err:
            raise LedgerMissingError(
                f"no ledger in {self.location} — run 'issuer init --ledger URL' first"
            ) from err
        except pg_errors.InsufficientPrivilege as err:
            raise LedgerError(
                f"the database role may not use the ledger in {self.location}: {self._words(err)}"
            ) from err
        except psycopg.Error as err:
            if unreachable(err):
                raise self._unavailable(self._words(err)) from err
            raise LedgerError(
                f"the ledger database {self.location} failed: {self._words(err)}"
            ) from err

    def _open_pool(self) -> ConnectionPool[psycopg.Connection[Any]]:
        """The connection pool, opened at first use: a server's workers each open their own."""
        with self._pool_lock:
            if self._pool is None:
                self._pool = ConnectionPool(
                    self._url,
                    connection_class=_watched(self._reach),
                    min_size=1,
                    max_size=_POOL_SIZE,
                    kwargs=self._connect_kwargs,
                    configure=lambda conn: _configure(conn, self.lock_timeout),
                    # No check by the pool: it would cost a round trip per transaction,
                    # and the pool sleeps a second after each dead connection it finds
                    # (a few dead ones outlast the wait). _checkout polls instead.
                    check=None,
                    timeout=self._wait,
                    reconnect_timeout=_RECONNECT,
                    open=True,
                )
            return self._pool

    def _checkout(self, pool: ConnectionPool[psycopg.Connection[Any]]) -> psycopg.Connection[Any]:
        """A pooled connection the server has not closed.

        Dead ones are closed and given back — the pool opens new ones in
        their place — until a live one comes. The wait is cut into short
        slices so that a failed connection attempt ends it at once.

        Raises:
            LedgerUnavailableError: the pool's latest attempt to connect failed.
            LedgerBusyError: every connection stayed in use for the whole wait.
        """
        deadline = time.monotonic() + self._wait
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise self._no_connection()
            try:
                conn = pool.getconn(timeout=min(_RECHECK, left))
            except PoolTimeout:
                if self._reach.down:
                    raise self._no_connection() from None
                continue
            if not _dropped(conn):
                return conn
            conn.close()
            pool.putconn(conn)

    def _no_connection(self) -> LedgerError:
        if self._reach.down:
            return self._unavailable(self._mask(self._reach.why))
        return LedgerBusyError(
            f"ledger is busy: no database connection came free within {self._wait:g} s"
        )

    def _unavailable(self, why: str) -> LedgerUnavailableError:
        return LedgerUnavailableError(
            f"cannot reach the ledger database {self.location}: {why}", retry_after=RETRY_AFTER
        )

    def _words(self, err: Exception) -> str:
        """The first line of a driver message, with any secret of the URL masked."""
        return self._mask((str(err).strip().splitlines() or [type(err).__name__])[0])

    def _mask(self, text: str) -> str:
        for word in self._secret_words:
            text = text.replace(word, "***")
        return text


class _Reach:
    """What the pool's latest attempt to open a connection found.

    Written by the pool's worker threads, read by requests; each field is one
    assignment, and a stale read only costs one request's wait or one 503.
    """

    def __init__(self) -> None:
        self.down = False
        self.why = ""


def _watched(reach: _Reach) -> type[psycopg.Connection[Any]]:
    """A connection class that records in ``reach`` whether each attempt to connect worked."""

    class WatchedConnection(psycopg.Connection[Any]):
        @classmethod
        def connect(cls, conninfo: str = "", **kwargs: Any) -> Self:
            try:
                conn = super().connect(conninfo, **kwargs)
            except psycopg.Error as err:
                reach.why = (str(err).strip().splitlines() or [type(err).__name__])[0]
                reach.down = True
                raise
            reach.down = False
            return conn

    return WatchedConnection


def _dropped(conn: psycopg.Connection[Any]) -> bool:
    """Whether the server has closed a connection that sat idle in the pool.

    An idle connection has nothing to read: the server speaks unasked only to
    say it is ending the session (a terminate, a shutdown) and then closes
    it. A readable socket is a dead connection — learnt with one poll, no
    round trip (urllib3 checks its idle HTTP connections the same way).
    """
    if conn.closed:
        return True
    try:
        fd = conn.fileno()
    except psycopg.Error:
        return True
    if hasattr(select, "poll"):
        poller = select.poll()
        poller.register(fd, select.POLLIN)
        return bool(poller.poll(0))
    return bool(select.select([fd], [], [], 0)[0])  # no poll() on Windows


def _configure(conn: psycopg.Connection[Any], lock_timeout: float) -> None:
    # A row held longer than the lock timeout is a busy ledger (retry), not a hang.
    conn.execute("SELECT set_config('lock_timeout', %s, false)", (f"{int(lock_timeout * 1000)}",))
    conn.commit()


def _params(url: str) -> dict[str, str]:
    try:
        return {k: str(v) for k, v in conninfo_to_dict(url).items() if v is not None}
    except psycopg.Error:
        raise BadInputError("the ledger URL is not a valid postgresql:// URL") from None
