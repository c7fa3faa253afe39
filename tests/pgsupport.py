"""A real PostgreSQL server for the tests: one fresh database per test module.

The server comes from ``LICET_TEST_POSTGRES_URL`` (default: the local trust-auth
server). Without a reachable server the PostgreSQL tests are skipped with a
reason pytest prints in its summary — except under ``CI=true``, where a skip
would hide a missing backend and the test fails instead.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

SERVER_URL = os.environ.get("LICET_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
TABLES = ("meta", "licenses", "license_keys", "license_ips", "revocations", "products", "events", "accounts", "sessions")


def _reachable() -> str | None:
    """``None`` when the server answers, else why not."""
    try:
        import psycopg

        with psycopg.connect(SERVER_URL, connect_timeout=3) as conn:
            conn.execute("SELECT 1")
    except Exception as err:  # any reason at all means: no server for these tests
        return str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
    return None


def require_postgres() -> None:
    """Skip (or, under CI=true, fail) when no PostgreSQL server is reachable."""
    why = _reachable()
    if why is None:
        return
    message = f"PostgreSQL ledger tests need a server at LICET_TEST_POSTGRES_URL ({why})"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(message + " — CI=true, so they may not be skipped", pytrace=False)
    pytest.skip(message)


def database_url(name: str) -> str:
    """The server URL with another database name."""
    from psycopg.conninfo import conninfo_to_dict, make_conninfo

    params = conninfo_to_dict(SERVER_URL)
    params["dbname"] = name
    user = params.get("user") or ""
    host = params.get("host") or "127.0.0.1"
    port = params.get("port") or "5432"
    if set(params) - {"dbname", "user", "host", "port"}:
        return make_conninfo(**params)  # a key=value string is a URL as far as psycopg goes
    return f"postgresql://{user + '@' if user else ''}{host}:{port}/{name}"


def _admin(sql: str) -> None:
    import psycopg

    with psycopg.connect(SERVER_URL, autocommit=True, connect_timeout=5) as conn:
        conn.execute(sql.encode())


@contextmanager
def fresh_database() -> Iterator[str]:
    """A new, empty database; dropped (with any connection still open) afterwards."""
    require_postgres()
    name = f"licet_test_{secrets.token_hex(6)}"
    _admin(f"CREATE DATABASE {name}")
    try:
        yield database_url(name)
    finally:
        _admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def drop_ledger(url: str) -> None:
    """Remove the ledger schema, so the next test in the module starts without one."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("DROP SCHEMA IF EXISTS licet CASCADE")


def rows(url: str, tables: tuple[str, ...] = TABLES) -> dict[str, list[Any]]:
    """Every row of the ledger's tables, in a stable order."""
    import psycopg

    with psycopg.connect(url) as conn:
        return {t: conn.execute(f"SELECT * FROM licet.{t} ORDER BY 1").fetchall() for t in tables}


@dataclass(frozen=True)
class LedgerSite:
    """Where a test's ledger lives: a folder (TinyDB) or a database (PostgreSQL)."""

    kind: str
    url: str
    shard_width: int = 3

    def snapshot(self) -> object:
        """Everything stored (rate-limit counters aside), to prove a refusal changed nothing."""
        from support import ledger_bytes

        if self.kind == "postgres":
            return rows(self.url)
        return ledger_bytes(Path(self.url))

    def raw(self) -> bytes:
        """Every stored byte, to prove a secret is not among them."""
        snap = self.snapshot()
        if isinstance(snap, dict) and all(isinstance(v, bytes) for v in snap.values()):
            return b"".join(snap.values())
        return repr(snap).encode()


def terminate_sessions(url: str) -> int:
    """End every session on ``url``'s database but the caller's, as an administrator would.

    Waits (up to 5 s each) until each server process has exited, so its
    connection is closed by the time this returns. Returns how many ended.
    """
    import psycopg
    from psycopg.conninfo import conninfo_to_dict

    with psycopg.connect(SERVER_URL, autocommit=True, connect_timeout=5) as conn:
        row = conn.execute(
            "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid, 5000)) FROM pg_stat_activity"
            " WHERE datname = %s AND pid <> pg_backend_pid()",
            (conninfo_to_dict(url)["dbname"],),
        ).fetchone()
    return int(row[0]) if row else 0


def sessions(url: str) -> int:
    """How many sessions ``url``'s database has (the caller's own not counted)."""
    import psycopg
    from psycopg.conninfo import conninfo_to_dict

    with psycopg.connect(SERVER_URL, autocommit=True, connect_timeout=5) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
            (conninfo_to_dict(url)["dbname"],),
        ).fetchone()
    return int(row[0]) if row else 0


class Relay:
    """A TCP relay on 127.0.0.1 in front of the PostgreSQL server.

    A ledger URL through it (:meth:`url`) reaches the real database; after
    :meth:`close` its port refuses connections and every relayed one is cut
    — the database as a server sees it when its host goes away. ``port``
    reopens a relay on a closed one's port (the database is back).
    """

    def __init__(self, port: int = 0) -> None:
        from psycopg.conninfo import conninfo_to_dict

        server = conninfo_to_dict(SERVER_URL)
        self._upstream = (str(server.get("host") or "127.0.0.1"), int(server.get("port") or 5432))
        self._listener = socket.create_server(("127.0.0.1", port))
        self.port = int(self._listener.getsockname()[1])
        self._open: list[socket.socket] = []
        self._lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def url(self, database_url: str) -> str:
        """``database_url`` (of the test server) through this relay."""
        from psycopg.conninfo import conninfo_to_dict

        params = conninfo_to_dict(database_url)
        user = params.get("user") or ""
        return f"postgresql://{user + '@' if user else ''}127.0.0.1:{self.port}/{params['dbname']}"

    def close(self) -> None:
        """Refuse new connections and cut every relayed one."""
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)  # wakes the accepting thread
        self._listener.close()
        with self._lock:
            for sock in self._open:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                sock.close()
            self._open.clear()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(self._upstream, timeout=5)
            upstream.settimeout(None)
            with self._lock:
                self._open += [client, upstream]
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=_pump, args=(source, sink), daemon=True).start()


def _pump(source: socket.socket, sink: socket.socket) -> None:
    """Copy bytes one way until either side ends; then end both."""
    with contextlib.suppress(OSError):
        while data := source.recv(65536):
            sink.sendall(data)
    for sock in (source, sink):
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)
