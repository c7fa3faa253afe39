"""The provider console's storage, on every ledger backend: the one audit log of every
change, console users and API tokens, sessions and failed logins. A second ``Issuer``
on the same ledger stands for another process or another node; what one does, the
other sees at once."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest
from pgsupport import LedgerSite, rows
from support import PRODUCT, FakeClock, make_issuer, one_hash_per_password, request_for

from issuer import Issuer
from issuer.errors import AccountExistsError, AccountNotFoundError, AuthenticationError
from issuer.records import Session
from verifier.errors import RateLimitedError

PASSWORD = "correct horse battery staple"


@pytest.fixture(autouse=True)
def _shared_password_hashes(monkeypatch: pytest.MonkeyPatch) -> None:
    one_hash_per_password(monkeypatch)

def other_door(iss: Issuer, site: LedgerSite, clock: FakeClock) -> Issuer:
    return Issuer(site.url, iss.keys, clock=clock)


def stored_logins(site: LedgerSite) -> object:
    """The stored login counters, read from the ledger's storage."""
    if site.kind == "postgres":
        return rows(site.url, ("login_failures",))
    return (Path(site.url) / "accounts" / "logins.json").read_bytes()


def walk(iss: Issuer, limit: int) -> list[tuple[int, str, str | None]]:
    """The whole audit log read a page at a time, as the admin API's billing sync reads it."""
    seen, cursor = [], None
    while page := iss.events(after=cursor, limit=limit).items:
        seen += [(e.cursor, e.event.action, e.license_id) for e in page]
        cursor = str(page[-1].cursor)
    return seen


def test_the_audit_log_holds_every_change_in_order_whichever_door_made_it(iss: Issuer, clock: FakeClock, site: LedgerSite) -> None:
    other = other_door(iss, site, clock)
    first = iss.create_license(PRODUCT, customer="Acme")
    other.add_user("alice", PASSWORD)
    second = other.create_license(PRODUCT)
    iss.redeem(request_for(first.activation_key, "alpha"), method="online")
    other.update_license(first.license_id, customer="Acme GmbH")
    iss.create_token("billing", "read")
    other.revoke_token("billing")
    iss.remove_user("alice")
    other.revoke(second.license_id)
    a, b = first.license_id, second.license_id
    expected = [("created", a), ("user-added", None), ("created", b), ("activated", a), ("updated", a),
                ("token-created", None), ("token-revoked", None), ("user-removed", None), ("revoked", b)]
    for door in (iss, other):
        assert [(action, lid) for _, action, lid in walk(door, limit=2)] == expected
        assert walk(door, limit=2) == walk(door, limit=100)  # pages never skip or repeat
    cursors = [cursor for cursor, _, _ in walk(iss, limit=100)]
    assert cursors == sorted(set(cursors))
    # A license's events in the log are its history, actor and changes included.
    for lid in (a, b):
        logged = [e.event for e in iss.events(limit=100).items if e.license_id == lid]
        assert logged == list(other.ledger.get(lid).history)
    assert iss.events(limit=100).items[5].event.actor == iss.actor
    assert iss.events(after=str(cursors[-1])).items == []


def test_a_user_logged_out_or_removed_on_one_door_is_out_on_every_door(iss: Issuer, clock: FakeClock, site: LedgerSite) -> None:
    other = other_door(iss, site, clock)
    iss.add_user("alice", PASSWORD)
    before = site.snapshot()
    with pytest.raises(AccountExistsError):
        other.add_user("alice", "another long password")
    assert site.snapshot() == before  # a refusal writes nothing, not even an event
    assert [u.name for u in other.accounts.users()] == ["alice"]
    key = other.login("alice", PASSWORD, address="198.51.100.1")
    assert iss.session(key).actor == "console:alice"
    iss.accounts.logout(key)
    with pytest.raises(AuthenticationError):
        other.session(key)
    key = iss.login("alice", PASSWORD, address="198.51.100.1")
    other.remove_user("alice")
    with pytest.raises(AuthenticationError):
        iss.session(key)
    with pytest.raises(AuthenticationError):
        iss.login("alice", PASSWORD, address="198.51.100.1")
    # A log-in that checked the password just before the removal opens no session.
    now = clock()
    with pytest.raises(AccountNotFoundError):
        iss.ledger.open_session(Session("ab" * 32, "alice", now, now), drop_unused_since=now)
    assert other.ledger.session("ab" * 32) is None
    with pytest.raises(AccountNotFoundError):
        iss.remove_user("alice")


def test_an_api_token_works_on_every_door_until_one_revokes_it(iss: Issuer, clock: FakeClock, site: LedgerSite) -> None:
    other = other_door(iss, site, clock)
    _, token = iss.create_token("billing", "write")
    _, reader = other.create_token("reports", "read")
    assert other.authenticate_token(token, write=True).actor == "api:billing"
    assert iss.authenticate_token(reader, write=False).actor == "api:reports"
    with pytest.raises(AccountExistsError):
        other.create_token("billing", "read")
    assert [(t.name, t.scope) for t in iss.accounts.tokens()] == [("billing", "write"), ("reports", "read")]
    assert site.raw().find(token.encode()) == -1  # only its hash is stored
    other.revoke_token("billing")
    for door in (iss, other):
        with pytest.raises(AuthenticationError):
            door.authenticate_token(token, write=False)
    assert iss.authenticate_token(reader, write=False).actor == "api:reports"
    with pytest.raises(AccountNotFoundError):
        iss.revoke_token("billing")


def test_failed_logins_on_every_door_count_against_one_limit(iss: Issuer, clock: FakeClock, site: LedgerSite) -> None:
    other = other_door(iss, site, clock)
    iss.add_user("alice", PASSWORD)
    for door in (iss, other, iss, other, iss):  # five failures of one name from one address: the limit
        with pytest.raises(AuthenticationError):
            door.login("alice", "a wrong guess, surely", address="198.51.100.1")
    for door in (iss, other):
        with pytest.raises(RateLimitedError):
            door.login("alice", PASSWORD, address="198.51.100.1")
    key = other.login("alice", PASSWORD, address="203.0.113.9")  # from elsewhere: not locked out
    assert iss.session(key).actor == "console:alice"
    clock.advance(minutes=16)
    key = iss.login("alice", PASSWORD, address="198.51.100.1")
    assert other.session(key).actor == "console:alice"
    # A success clears the name's count from that address for every door, and takes
    # back its own provisional count from the address.
    since = clock() - dt.timedelta(days=1)
    assert other.ledger.login_failures(["user:alice from 198.51.100.1", "address:198.51.100.1"], since) == 0


def test_login_counters_are_reserved_judged_and_taken_back_on_every_door(iss: Issuer, clock: FakeClock, site: LedgerSite) -> None:
    from issuer.policy.ratelimit import LoginAttempt

    ledger, other = iss.ledger, other_door(iss, site, clock).ledger

    def attempt(user: str, bucket: str = "198.51.100.1") -> LoginAttempt:
        return LoginAttempt(user, bucket, clock(), dt.timedelta(minutes=15), user_limit=2, address_limit=3)

    first = attempt("alice")
    ledger.reserve_login(first)
    clock.advance(minutes=1)
    other.reserve_login(attempt("alice"))
    before = stored_logins(site)
    for door in (ledger, other):
        with pytest.raises(RateLimitedError, match="for this user name from this address — try again in 14 minutes") as refused:
            door.reserve_login(attempt("alice"))
        assert refused.value.retry_after == 14 * 60
    assert stored_logins(site) == before  # a refusal counts nothing
    other.reserve_login(attempt("bob"))
    with pytest.raises(RateLimitedError, match="from this address — try again in 14 minutes"):
        ledger.reserve_login(attempt("carol"))
    ledger.reserve_login(attempt("carol", bucket="198.51.100.2"))
    since = clock() - dt.timedelta(days=1)
    assert ledger.login_failures(["address:198.51.100.1"], since) == 3
    other.release_login(first)  # a log-in that was never checked: its count is taken back
    assert ledger.login_failures(["user:alice from 198.51.100.1"], since) == 1
    assert ledger.login_failures(["address:198.51.100.1"], since) == 2
    other.release_login(first)  # taking back twice takes back nothing more
    assert ledger.login_failures(["address:198.51.100.1"], since) == 2
    success = attempt("alice")
    ledger.reserve_login(success)
    other.release_login(success, forget=(success.pair,))  # a right password: the pair is cleared
    assert ledger.login_failures(["user:alice from 198.51.100.1"], since) == 0
    assert ledger.login_failures(["address:198.51.100.1"], since) == 2
    clock.advance(minutes=15)  # the window passes: stale counters go when the next is counted
    other.reserve_login(attempt("dave", bucket="198.51.100.3"))
    assert ledger.login_failures(["address:198.51.100.1", "user:bob from 198.51.100.1"], since) == 0
    assert ledger.login_failures(["address:198.51.100.3"], since) == 1


def _reserve(url: str, user: str, at: str, barrier: Any, results: Any) -> None:
    from issuer.ledger import open_ledger
    from issuer.policy.ratelimit import LoginAttempt

    ledger = open_ledger(url)
    attempt = LoginAttempt(user, "198.51.100.1", dt.datetime.fromisoformat(at), dt.timedelta(minutes=15), 3, 5)
    barrier.wait(timeout=60)
    try:
        ledger.reserve_login(attempt)
        results.put((user, "counted"))
    except RateLimitedError:
        results.put((user, "refused"))


def test_concurrent_reservations_from_many_processes_never_pass_a_limit(iss: Issuer, clock: FakeClock, site: LedgerSite) -> None:
    from racing import run_all

    at = clock().isoformat()
    out = run_all(_reserve, [(site.url, "alice", at)] * 8 + [(site.url, f"guess{i}", at) for i in range(4)])
    counted = [user for user, what in out if what == "counted"]
    assert counted.count("alice") <= 3 and len(counted) == 5, out  # the name's limit, the address's limit
    since = clock() - dt.timedelta(days=1)
    assert iss.ledger.login_failures(["user:alice from 198.51.100.1"], since) == counted.count("alice")
    assert iss.ledger.login_failures(["address:198.51.100.1"], since) == 5


def test_a_flood_of_counters_keeps_the_most_recent_ones(iss: Issuer, clock: FakeClock) -> None:
    from issuer.policy.ratelimit import LoginAttempt

    for i in range(6):
        clock.advance(seconds=1)
        iss.ledger.reserve_login(LoginAttempt("x", f"198.51.100.{i}", clock(), dt.timedelta(minutes=15), 5, 100, max_subjects=4))
    since = clock() - dt.timedelta(days=1)
    kept = [i for i in range(6) if iss.ledger.login_failures([f"address:198.51.100.{i}"], since)]
    assert kept == [4, 5]  # two counters per log-in: the last two log-ins' four


def test_sessions_unused_for_the_idle_time_are_dropped_when_the_next_opens(iss: Issuer, clock: FakeClock, site: LedgerSite) -> None:
    iss.add_user("alice", PASSWORD)
    ledger, other = iss.ledger, other_door(iss, site, clock).ledger
    start = clock()
    ledger.open_session(Session("01" * 32, "alice", start, start), drop_unused_since=start)
    clock.advance(minutes=20)
    ledger.open_session(Session("02" * 32, "alice", clock(), clock()), drop_unused_since=start)
    other.save_session(Session("02" * 32, "alice", start + dt.timedelta(minutes=20), clock() + dt.timedelta(minutes=1)))
    clock.advance(minutes=20)
    now = clock()
    other.open_session(Session("03" * 32, "alice", now, now), drop_unused_since=now - dt.timedelta(minutes=30))
    assert ledger.session("01" * 32) is None  # unused for 40 minutes
    kept = ledger.session("02" * 32)
    assert kept is not None and kept.last_seen == start + dt.timedelta(minutes=21)
    other.end_session("02" * 32)
    ledger.save_session(kept)  # a last use recorded after the end does not bring it back
    assert other.session("02" * 32) is None
    other.end_session("02" * 32)  # ending it again is no error
    assert ledger.session("03" * 32) == Session("03" * 32, "alice", now, now)


def test_a_copy_of_a_ledger_with_a_console_to_each_backend_and_back_keeps_it_working(
    tmp_path: Path, clock: FakeClock, pg_url: str
) -> None:
    from issuer.ledger import open_ledger
    from issuer.ledger.copy import copy_ledger, summarize

    source = make_issuer(tmp_path, clock)
    view = source.create_license(PRODUCT, customer="Acme")
    source.redeem(request_for(view.activation_key, "alpha"), method="online")
    source.add_user("alice", PASSWORD)
    _, token = source.create_token("billing", "write")
    source.create_token("gone", "read")
    source.revoke_token("gone")
    key = source.login("alice", PASSWORD, address="198.51.100.1")
    with pytest.raises(AuthenticationError):
        source.login("alice", "a wrong guess, surely", address="198.51.100.2")
    original = summarize(source.ledger)
    assert (original.users, original.tokens, original.events) == (1, 1, 6)
    back = str(tmp_path / "back")
    copies = []
    for origin, destination in ((str(tmp_path / "ledger"), pg_url), (pg_url, back)):  # TinyDB -> PostgreSQL -> TinyDB
        assert copy_ledger(origin, destination) == original
        assert summarize(open_ledger(destination)) == original
        copy = Issuer(destination, tmp_path / "keys", clock=clock)
        copies.append(copy)
        assert [(e.cursor, e.event, e.license_id) for e in copy.events(limit=100).items] == [
            (e.cursor, e.event, e.license_id) for e in source.events(limit=100).items]
        assert copy.authenticate_token(token, write=True).actor == "api:billing"
        with pytest.raises(AuthenticationError):  # sessions are not copied: log in again
            copy.session(key)
        assert copy.session(copy.login("alice", PASSWORD, address="198.51.100.1")).actor == "console:alice"
        assert copy.ledger.login_failures(["address:198.51.100.2"], clock() - dt.timedelta(days=1)) == 0
    last = source.events(limit=100).items[-1].cursor
    for copy in copies:  # each copy's log goes on after the source's last cursor
        copy.update_license(view.license_id, customer="Acme GmbH")
        assert [e.event.action for e in copy.events(after=str(last)).items] == ["updated"]


def test_the_upgrade_to_the_console_schema_fills_the_audit_log_from_the_histories(tmp_path: Path, clock: FakeClock, pg_url: str) -> None:
    import psycopg

    from issuer.errors import LedgerVersionError
    from issuer.ledger import open_ledger
    from issuer.ledger.postgres import SCHEMA_VERSION, upgrade_schema

    iss = make_issuer(tmp_path, clock, ledger=pg_url)
    a = iss.create_license(PRODUCT)
    b = iss.create_license(PRODUCT)  # the same instant: the order they were added in decides
    clock.advance(seconds=5)
    iss.redeem(request_for(b.activation_key, "beta"), method="online")
    clock.advance(seconds=5)
    iss.redeem(request_for(a.activation_key, "alpha"), method="online")
    iss.update_license(a.license_id, customer="Acme")  # the same instant: the history's order decides
    expected = [(e.event, e.license_id) for e in iss.events(limit=100).items]
    assert [(e.action, lid) for e, lid in expected] == [
        ("created", a.license_id), ("created", b.license_id), ("activated", b.license_id),
        ("activated", a.license_id), ("updated", a.license_id)]
    iss.ledger.close()
    with psycopg.connect(pg_url, autocommit=True) as conn:  # as the ledger was at version 5
        conn.execute("DROP TABLE licet.webhook_deliveries, licet.webhook_senders, licet.webhook_endpoints")
        conn.execute("DROP TABLE licet.events, licet.sessions, licet.login_failures, licet.accounts")
        conn.execute("UPDATE licet.meta SET schema_version = 5")
    with pytest.raises(LedgerVersionError, match="schema version 5"):
        open_ledger(pg_url)
    assert upgrade_schema(pg_url) == (5, SCHEMA_VERSION)
    upgraded = Issuer(pg_url, tmp_path / "keys", clock=clock)
    logged = upgraded.events(limit=100).items
    assert [(e.event, e.license_id) for e in logged] == expected
    assert [e.cursor for e in logged] == [1, 2, 3, 4, 5]
    upgraded.revoke(b.license_id)
    upgraded.add_user("alice", PASSWORD)
    assert [(e.cursor, e.event.action) for e in upgraded.events(after="5").items] == [(6, "revoked"), (7, "user-added")]


def test_the_feed_waits_for_an_event_still_being_written_instead_of_passing_it(tmp_path: Path, clock: FakeClock, pg_url: str) -> None:
    import threading
    import time

    import psycopg
    from psycopg.types.json import Jsonb

    from issuer.records import Event, LoggedEvent

    iss = make_issuer(tmp_path, clock, ledger=pg_url)
    iss.create_license(PRODUCT)
    start = iss.events().items[-1].cursor
    # A node in the middle of a change: its event has a cursor but is not committed yet.
    slow = psycopg.connect(pg_url)
    slow.execute("INSERT INTO licet.events (license_id, doc) VALUES (NULL, %s)",
                 (Jsonb(Event(at=clock(), action="token-created", actor="cli:slow", detail="slow").to_doc()),))
    other = Issuer(pg_url, tmp_path / "keys", clock=clock)
    later = other.create_license(PRODUCT)  # commits an event with a higher cursor meanwhile
    read: list[list[LoggedEvent]] = []
    reader = threading.Thread(target=lambda: read.append(iss.ledger.events(after=start)))
    reader.start()
    try:
        with psycopg.connect(pg_url, autocommit=True) as watch:
            deadline = time.monotonic() + 10
            while not watch.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                " AND wait_event_type = 'Lock' AND query LIKE 'LOCK TABLE licet.events%'"
            ).fetchone()[0]:  # type: ignore[index]
                assert time.monotonic() < deadline, "the feed did not wait for the open transaction"
                time.sleep(0.02)
    finally:
        slow.commit()
        slow.close()
        reader.join(timeout=30)
    assert [(e.event.actor, e.license_id) for e in read[0]] == [("cli:slow", None), (other.actor, later.license_id)]
