"""A PostgreSQL ledger when its database goes away and comes back.

Dead pooled connections are replaced without failing the operation that
finds them; a database that cannot be reached is answered at once with
``ledger-unavailable``; a connection lost once a transaction has sent
anything — during its commit included — is never retried, since whether a
lost commit took effect cannot be known.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from pathlib import Path
from typing import Any

import psycopg
import pytest
from pgsupport import SERVER_URL, Relay, rows, sessions, terminate_sessions
from psycopg import errors as pg_errors
from support import PRODUCT, TIMING, FakeClock, make_issuer

from issuer import Issuer, LedgerBusyError, LedgerError, LedgerUnavailableError
from issuer.ledger import open_ledger
from issuer.ledger.connections import CONNECT_TIMEOUT, RETRY_AFTER, unreachable
from issuer.records import LicenseRecord

pytestmark = TIMING


@pytest.fixture
def pg_issuer(tmp_path: Path, clock: FakeClock, pg_url: str) -> Issuer:
    iss = make_issuer(tmp_path, clock, ledger=pg_url)
    for _ in range(10):
        iss.create_license(PRODUCT)
    return iss


def update(ledger: Any, decide: Any, license_id: str) -> Any:
    """Change one license in one transaction, the way the capabilities do; ``decide`` gives the new record."""
    with ledger.transaction() as tx:
        record = tx.license(license_id=license_id)
        new_record, result = decide(record)
        if new_record is not None:
            tx.replace(record, new_record, revoked=None)
    return result


def hold_connections(ledger: Any, license_ids: list[str], release: threading.Event) -> list[threading.Thread]:
    """Have one transaction per license open at once (each on its own pooled connection) until ``release``."""
    inside = threading.Barrier(len(license_ids) + 1)

    def hold(license_id: str) -> None:
        def decide(record: LicenseRecord) -> tuple[None, None]:
            inside.wait(timeout=30)
            release.wait(timeout=30)
            return None, None

        update(ledger, decide, license_id)

    threads = [threading.Thread(target=hold, args=(i,)) for i in license_ids]
    for t in threads:
        t.start()
    inside.wait(timeout=30)
    return threads


def test_every_pooled_connection_killed_between_two_operations_the_next_ones_succeed_at_once(pg_issuer: Issuer, pg_url: str) -> None:
    ledger = pg_issuer.ledger
    ids = [lic.license_id for lic in pg_issuer.licenses()]
    release = threading.Event()
    threads = hold_connections(ledger, ids[:8], release)  # the pool grows to its full 8
    release.set()
    for t in threads:
        t.join(timeout=30)
    assert sessions(pg_url) >= 8
    assert terminate_sessions(pg_url) >= 8  # the database ends them all (a restart, a failover)
    for license_id in ids:  # each next operation takes one of the dead connections first
        started = time.monotonic()
        assert ledger.get(license_id).license_id == license_id
        # The pool used to check each connection with a round trip and sleep 1 s, then 2 s,
        # after each dead one: a few dead ones outlasted the 3 s wait (503).
        assert time.monotonic() - started < 2.0


def test_a_connection_lost_in_the_middle_of_a_change_fails_it_whole_and_it_is_not_retried(pg_issuer: Issuer, pg_url: str) -> None:
    ledger = pg_issuer.ledger
    license_id = pg_issuer.licenses()[0].license_id
    before = rows(pg_url)
    calls = []

    def decide(record: LicenseRecord) -> tuple[LicenseRecord, str]:
        calls.append(record.license_id)
        terminate_sessions(pg_url)  # this transaction's own connection among them
        return dataclasses.replace(record, customer="changed"), "done"

    with pytest.raises(LedgerUnavailableError) as caught:
        update(ledger, decide, license_id)
    assert calls == [license_id]  # decided once: the lost transaction is not run again
    assert caught.value.retry_after == RETRY_AFTER
    assert "terminating connection" in caught.value.message
    assert rows(pg_url) == before  # nothing half-written
    assert ledger.get(license_id).customer != "changed"  # and the next operation works


def test_a_connection_lost_during_commit_is_answered_unavailable_and_never_retried(pg_issuer: Issuer, pg_url: str) -> None:
    ledger = pg_issuer.ledger
    license_id = pg_issuer.licenses()[0].license_id
    with psycopg.connect(pg_url, autocommit=True) as admin:
        # A deferred constraint trigger runs at COMMIT, and nowhere else: there it ends
        # its own session, so the connection is lost while the commit is under way.
        admin.execute(
            "CREATE FUNCTION licet.end_session_at_commit() RETURNS trigger LANGUAGE plpgsql AS"
            " $$ BEGIN PERFORM pg_terminate_backend(pg_backend_pid()); PERFORM pg_sleep(5); RETURN NULL; END $$"
        )
        admin.execute(
            "CREATE CONSTRAINT TRIGGER end_session_at_commit AFTER UPDATE ON licet.licenses"
            " DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION licet.end_session_at_commit()"
        )
    calls = []

    def decide(record: LicenseRecord) -> tuple[LicenseRecord, str]:
        calls.append(record.license_id)
        return dataclasses.replace(record, customer="changed at commit"), "done"

    with pytest.raises(LedgerUnavailableError) as caught:
        update(ledger, decide, license_id)
    assert isinstance(caught.value.__cause__, pg_errors.AdminShutdown)
    assert calls == [license_id]  # a commit whose fate is unknown is never sent again
    with psycopg.connect(pg_url, autocommit=True) as admin:
        admin.execute("DROP TRIGGER end_session_at_commit ON licet.licenses")
    assert ledger.get(license_id).customer != "changed at commit"  # the server rolled it back


def test_a_database_that_cannot_be_reached_is_answered_unavailable_at_once(pg_issuer: Issuer, pg_url: str) -> None:
    relay = Relay()
    try:
        ledger = open_ledger(relay.url(pg_url))
        license_id = pg_issuer.licenses()[0].license_id
        assert ledger.get(license_id).license_id == license_id
        relay.close()  # the database's host is gone: connections cut, its port refuses
        for _ in range(5):
            started = time.monotonic()
            with pytest.raises(LedgerUnavailableError) as caught:
                ledger.get(license_id)
            assert time.monotonic() - started < 1.0  # not the 3 s a request used to wait
            assert caught.value.retry_after == RETRY_AFTER and 1 <= RETRY_AFTER <= 10
            assert "cannot reach the ledger database" in caught.value.message
        relay = Relay(relay.port)  # the database is back on the same address

        def served() -> bool:
            try:
                return ledger.get(license_id).license_id == license_id
            except LedgerUnavailableError:
                return False

        deadline = time.monotonic() + 15
        while not served():  # the ledger reconnects by itself, within a few seconds
            assert time.monotonic() < deadline, "the ledger did not reconnect within 15 s"
            time.sleep(0.05)
    finally:
        relay.close()
    with pytest.raises(LedgerUnavailableError):  # and opening one there is the same refusal
        open_ledger(relay.url(pg_url))


def test_every_connection_busy_is_a_busy_ledger_not_an_unreachable_one(pg_issuer: Issuer, pg_url: str) -> None:
    ledger = open_ledger(pg_url, lock_timeout=0.5)  # the wait for a free connection follows it
    ids = [lic.license_id for lic in pg_issuer.licenses()]
    release = threading.Event()
    threads = hold_connections(ledger, ids[:8], release)
    try:
        with pytest.raises(LedgerBusyError, match="no database connection came free"):
            ledger.get(ids[9])
    finally:
        release.set()
        for t in threads:
            t.join(timeout=30)
    assert ledger.get(ids[9]).license_id == ids[9]


def _raised(action: Any) -> psycopg.Error:
    try:
        action()
    except psycopg.Error as err:
        return err
    raise AssertionError("no error")


def test_which_real_database_errors_mean_unreachable(pg_url: str) -> None:
    """The classification, on errors a real server and driver raise."""
    from psycopg.conninfo import conninfo_to_dict

    refusing = conninfo_to_dict(pg_url)["dbname"] + "_refusing"
    with psycopg.connect(SERVER_URL, autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {refusing} ALLOW_CONNECTIONS false".encode())
    ended, closed, live = (psycopg.connect(pg_url, autocommit=True) for _ in range(3))
    try:
        terminate_sessions(pg_url)
        live = psycopg.connect(pg_url, autocommit=True)
        closed.close()
        live.execute("CREATE TEMP TABLE t (k int PRIMARY KEY)")
        live.execute("INSERT INTO t VALUES (1)")
        cases = {
            "a terminated session": (_raised(lambda: ended.execute("SELECT 1")), True),
            "a closed connection": (_raised(lambda: closed.execute("SELECT 1")), True),
            "a closed port": (_raised(lambda: psycopg.connect("postgresql://postgres@127.0.0.1:1/x", connect_timeout=CONNECT_TIMEOUT)), True),
            "a database refusing connections": (
                _raised(lambda: psycopg.connect(pg_url.rsplit("/", 1)[0] + "/" + refusing, connect_timeout=CONNECT_TIMEOUT)),
                True,
            ),
            "a duplicate key": (_raised(lambda: live.execute("INSERT INTO t VALUES (1)")), False),
            "bad SQL": (_raised(lambda: live.execute("SELEC 1")), False),
            "a division by zero": (_raised(lambda: live.execute("SELECT 1 / 0")), False),
        }
    finally:
        for conn in (ended, closed, live):
            conn.close()
        with psycopg.connect(SERVER_URL, autocommit=True) as admin:
            admin.execute(f"DROP DATABASE {refusing}".encode())
    assert isinstance(cases["a terminated session"][0], pg_errors.AdminShutdown)
    assert {name: unreachable(err) for name, (err, _) in cases.items()} == {name: want for name, (_, want) in cases.items()}
    assert issubclass(LedgerUnavailableError, LedgerError)  # a client that knows only ledger-error still retries
