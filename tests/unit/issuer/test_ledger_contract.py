"""What every ledger backend guarantees, run on TinyDB and PostgreSQL alike;
then what only a database ledger can get wrong (URLs, versions, privileges)."""

from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path

import pytest
from pgsupport import LedgerSite, rows
from support import PRODUCT, FakeClock, make_issuer, request_for

from issuer import (
    Issuer,
    IssuerConfig,
    LedgerError,
    LedgerExistsError,
    LedgerMissingError,
    RateLimit,
)
from issuer.errors import LedgerVersionError
from issuer.ledger import LedgerBackend, open_ledger
from issuer.records import LicenseQuery
from verifier import (
    AlreadyActivatedError,
    BadInputError,
    InvalidActivationKeyError,
    RateLimitedError,
)
from verifier.activation_key import key_from_bytes


def test_a_long_lived_issuer_never_redeems_what_another_redeemed(iss: Issuer, tmp_path: Path, site: LedgerSite) -> None:
    iss.create_license(PRODUCT)
    second = Issuer(site.url, tmp_path / "keys")  # opened before the redemption below, kept open
    key = iss.licenses()[0].activation_key
    assert second.licenses()[0].state == "issued"  # warm every cache it may have
    iss.redeem(request_for(key, "alpha"), method="air-gapped")
    with pytest.raises(AlreadyActivatedError):
        second.redeem(request_for(key, "beta"), method="air-gapped")
    iss.regenerate(iss.licenses()[0].license_id)
    with pytest.raises(InvalidActivationKeyError):
        second.redeem(request_for(key, "alpha"), method="air-gapped")


def test_failed_attempts_are_counted_per_client_and_forgotten_after_the_window(tmp_path: Path, clock: FakeClock, site: LedgerSite) -> None:
    config = IssuerConfig(rate_limit=RateLimit(limit=2, window=dt.timedelta(minutes=15)))
    iss = make_issuer(tmp_path, clock, ledger=site.url, config=config)
    other = Issuer(site.url, tmp_path / "keys", clock=clock, config=config)  # another process or node
    used = iss.create_license(PRODUCT).activation_key
    iss.redeem(request_for(used, "alpha"), method="online", client="198.51.100.1")
    wrong = request_for(key_from_bytes(b"\x02" * 15), "beta")
    for _ in range(3):  # refusals other than a wrong key do not count
        with pytest.raises(AlreadyActivatedError):
            iss.redeem(request_for(used, "beta"), method="online", client="198.51.100.1")
    with pytest.raises(InvalidActivationKeyError):
        iss.redeem(wrong, method="online", client="198.51.100.1")
    with pytest.raises(InvalidActivationKeyError):
        other.redeem(wrong, method="online", client="198.51.100.1")
    for door in (iss, other):  # the count is the ledger's, shared by every door onto it
        with pytest.raises(RateLimitedError, match="try again in 900 s"):
            door.redeem(wrong, method="online", client="198.51.100.1")
    with pytest.raises(InvalidActivationKeyError):  # another client has its own count
        iss.redeem(wrong, method="online", client="198.51.100.2")
    iss.redeem(request_for(used, "alpha"), method="air-gapped")  # doors without a client are not limited
    clock.advance(minutes=15, seconds=1)
    with pytest.raises(InvalidActivationKeyError):  # the window has passed
        iss.redeem(wrong, method="online", client="198.51.100.1")


def test_every_backend_is_a_ledger_backend(iss: Issuer, site: LedgerSite) -> None:
    assert isinstance(iss.ledger, LedgerBackend)
    assert isinstance(open_ledger(site.url), LedgerBackend)
    created = iss.create_license(PRODUCT, ip="203.0.113.9")
    assert [r.license_id for r in iss.ledger.licenses_for_ip("203.0.113.9")] == [created.license_id]
    assert iss.ledger.licenses_for_ip("203.0.113.10") == []


def test_the_product_index_is_the_ledgers_and_a_refused_check_writes_nothing(iss: Issuer, tmp_path: Path, site: LedgerSite) -> None:
    from issuer import UnknownProductError

    other_door = open_ledger(site.url)  # another process or node
    assert iss.ledger.products() == other_door.products() == frozenset()
    first = iss.create_license(PRODUCT)
    assert other_door.products() == {PRODUCT}
    record = iss.ledger.get(first.license_id)
    seen: list[frozenset[str]] = []

    def refuse(known: frozenset[str]) -> None:
        seen.append(known)
        raise UnknownProductError("refused under the lock")

    twin = dataclasses.replace(record, license_id="LIC-TWIN00000", product="otherpanel", key_hash="0" * 64)
    before = site.snapshot()
    with pytest.raises(UnknownProductError, match="refused under the lock"):
        other_door.add(twin, check_product=refuse)
    assert seen == [frozenset({PRODUCT})]
    assert site.snapshot() == before and other_door.products() == {PRODUCT}
    other_door.add(twin, check_product=lambda known: None)
    bulk = [dataclasses.replace(twin, license_id=f"LIC-BULK0000{i}", product=f"bulk{i % 2}", key_hash=f"{i + 1}" * 64) for i in range(4)]
    other_door.add_many(bulk)
    assert iss.ledger.products() == {PRODUCT, "otherpanel", "bulk0", "bulk1"}
    iss.revoke(first.license_id)
    assert PRODUCT in other_door.products()  # a revoked license still names its product


def test_rate_limit_buckets_are_listed_and_forgotten_on_every_door(tmp_path: Path, clock: FakeClock, site: LedgerSite) -> None:
    config = IssuerConfig(rate_limit=RateLimit(limit=2, window=dt.timedelta(minutes=15)))
    iss = make_issuer(tmp_path, clock, ledger=site.url, config=config)
    other = Issuer(site.url, tmp_path / "keys", clock=clock, config=config)  # another process or node
    wrong = request_for(key_from_bytes(b"\x04" * 15), "beta")
    for client in ("198.51.100.1", "198.51.100.1", "198.51.100.2", "2001:db8::5"):
        with pytest.raises(InvalidActivationKeyError):
            iss.redeem(wrong, method="online", client=client)
        clock.advance(seconds=10)
    start = clock.now - dt.timedelta(seconds=40)
    listed = other.ledger.failed_attempts(since=start - dt.timedelta(seconds=1))
    assert {b: len(t) for b, t in listed.items()} == {"198.51.100.1": 2, "198.51.100.2": 1, "2001:db8::/64": 1}
    assert listed["198.51.100.1"] == sorted(listed["198.51.100.1"])
    assert listed["198.51.100.1"][0] == pytest.approx(start.timestamp())
    # Only failures after `since` count: the first one of 198.51.100.1 is older.
    assert set(other.ledger.failed_attempts(since=start + dt.timedelta(seconds=5))) == {"198.51.100.1", "198.51.100.2", "2001:db8::/64"}
    assert len(other.ledger.failed_attempts(since=start + dt.timedelta(seconds=5))["198.51.100.1"]) == 1
    assert other.ledger.failed_attempts(since=clock.now) == {}
    with pytest.raises(RateLimitedError):
        iss.redeem(wrong, method="online", client="198.51.100.1")

    assert other.ledger.forget_attempts(lambda bucket: bucket.startswith("198.51.100.")) == ["198.51.100.1", "198.51.100.2"]
    assert other.ledger.forget_attempts(lambda bucket: bucket.startswith("198.51.100.")) == []
    assert set(iss.ledger.failed_attempts(since=start - dt.timedelta(seconds=1))) == {"2001:db8::/64"}
    with pytest.raises(InvalidActivationKeyError):  # freed on the other door too: refused, not limited
        iss.redeem(wrong, method="online", client="198.51.100.1")
    assert other.clear_rate_limit() == ["198.51.100.1", "2001:db8::/64"]
    assert iss.rate_limited() == []


def _found(iss: Issuer, text: str, **filters: str) -> list[str]:
    """Every license a search finds, a page of one at a time (so the ledger's pages are read too)."""
    seen: list[str] = []
    cursor = None
    while True:
        page = iss.search(text=text, cursor=cursor, limit=1, **filters)
        seen += [v.license_id for v in page.items]
        if (cursor := page.next_cursor) is None:
            return seen


def test_a_license_is_found_by_whatever_a_customer_quotes(iss: Issuer, clock: FakeClock, site: LedgerSite) -> None:
    lic = iss.create_license(PRODUCT, customer="Acme Hosting Ltd", ip="203.0.113.9")
    clock.advance(seconds=1)
    other = iss.create_license(PRODUCT, customer="Other GmbH", ip="198.51.100.7")
    clock.advance(seconds=1)
    iss.create_license(PRODUCT, customer="Third Ltd")
    old_key = lic.activation_key
    iss.regenerate(lic.license_id)  # the key the customer was first given is dead
    key = iss.show(lic.license_id).activation_key
    assert key is not None and old_key is not None
    activated = iss.redeem(request_for(key, "panel-7.acme.example"), method="air-gapped")
    lid = lic.license_id
    for text in (lid, lid.lower(), f"  {lid.swapcase()} ", "acme hosting", "ACME", "203.0.113.9", "0.113.9",
                 key, key.lower(), key.replace("-", ""), key.replace("-", "").lower(), f"{key[:9]} {key[10:]}",
                 "panel-7.acme.example", "PANEL-7", activated.activation_id, activated.activation_id.lower(),
                 activated.activation_id[4:10]):
        assert _found(iss, text) == [lid], text
    for text in (old_key, old_key.replace("-", "").lower(), "LIC-0000000000", "203.0.113.10", "nobody"):
        assert _found(iss, text) == [], text
    assert _found(iss, key, status="revoked") == [] and _found(iss, key, status="activated") == [lid]
    assert _found(iss, "198.51.100.7") == [other.license_id]
    assert _found(iss, "ltd") == [iss.licenses()[2].license_id, lid]  # newest first
    # Storage keeps what it is told: exact id, exact address, text in the listed fields.
    now = clock()
    def told(**query: str) -> list[str]:
        return [s.license_id for s in iss.ledger.page(LicenseQuery(now=now, **query), limit=10)[0]]
    assert told(license_id=lid) == [lid] and told(license_id=lid.lower()) == []
    assert told(ip="203.0.113.9") == [lid] and told(ip="203.0.113") == []
    assert told(text="PANEL-7.ACME") == [lid] and told(text=activated.activation_id) == [lid]
    assert told(text=key) == []  # keys are never stored: finding one is decided above the ledger
    from issuer.licensing.minting import key_hash
    from verifier.activation_key import normalize_key
    found = iss.ledger.license_by_key(key_hash(normalize_key(old_key)))
    assert found is not None and found.license_id == lid  # any generation: whether it is current is not the ledger's call


def test_init_on_a_taken_place_is_refused_before_a_secret_is_made(tmp_path: Path, clock: FakeClock, site: LedgerSite) -> None:
    from keytool import Keyring

    make_issuer(tmp_path / "first", clock, ledger=site.url)
    before = site.snapshot()
    Keyring(tmp_path / "fresh" / "keys", clock=clock).new()
    with pytest.raises(LedgerExistsError, match="never overwritten"):
        Issuer.init(site.url, tmp_path / "fresh" / "keys", name="again", clock=clock)
    assert not (tmp_path / "fresh" / "keys" / "activation-keys.secret").exists()
    assert site.snapshot() == before


def test_a_missing_ledger_is_refused_not_created(tmp_path: Path, site: LedgerSite) -> None:
    with pytest.raises(LedgerMissingError, match="issuer init"):
        open_ledger(site.url)


# --- what only a database ledger meets -------------------------------------------------------


def test_init_refuses_an_existing_schema_and_leaves_it_alone(tmp_path: Path, clock: FakeClock, pg_url: str) -> None:
    iss = make_issuer(tmp_path, clock, ledger=pg_url)
    iss.create_license(PRODUCT)
    before = rows(pg_url)
    with pytest.raises(LedgerExistsError, match="never overwritten"):
        Issuer.init(pg_url, tmp_path / "keys", name="again", clock=clock)
    assert rows(pg_url) == before


def test_an_older_schema_needs_an_explicit_upgrade(tmp_path: Path, clock: FakeClock, pg_url: str) -> None:
    from issuer.ledger.postgres import SCHEMA_VERSION, PostgresLedger, upgrade_schema

    iss = make_issuer(tmp_path / "tiny", clock)  # only for the keys and their secret check
    PostgresLedger.create(pg_url, provider="acme", secret_check=iss.ledger.info.secret_check, now=clock(), version=1)
    with pytest.raises(LedgerVersionError, match=r"schema version 1.*issuer ledger upgrade"):
        open_ledger(pg_url)
    assert upgrade_schema(pg_url) == (1, SCHEMA_VERSION)
    assert upgrade_schema(pg_url) == (SCHEMA_VERSION, SCHEMA_VERSION)  # nothing left to do
    upgraded = Issuer(pg_url, tmp_path / "tiny" / "keys", clock=clock)
    created = upgraded.create_license(PRODUCT)
    with pytest.raises(InvalidActivationKeyError):  # the table the upgrade added is in use
        upgraded.redeem(request_for(key_from_bytes(b"\x03" * 15), "x"), method="online", client="198.51.100.7")
    assert upgraded.redeem(request_for(created.activation_key, "alpha"), method="online", client="198.51.100.7").new


def test_the_upgrades_to_the_product_index_and_license_order_fill_them_from_the_licenses(tmp_path: Path, clock: FakeClock, pg_url: str) -> None:
    import psycopg

    from issuer import UnknownProductError
    from issuer.ledger.postgres import SCHEMA_VERSION, upgrade_schema

    iss = make_issuer(tmp_path, clock, ledger=pg_url)
    iss.create_license(PRODUCT)
    # A second later: licenses created in the same second have no order but their random ids.
    clock.advance(seconds=1)
    iss.create_license("dnsmanager", new_product=True)
    with psycopg.connect(pg_url, autocommit=True) as conn:  # as the ledger was before version 4
        conn.execute("DROP TABLE licet.webhook_deliveries, licet.webhook_senders, licet.webhook_endpoints")
        conn.execute("DROP TABLE licet.products, licet.events, licet.sessions, licet.login_failures, licet.accounts")
        conn.execute("ALTER TABLE licet.licenses DROP COLUMN position")  # its sequence goes with it
        conn.execute("UPDATE licet.meta SET schema_version = 3")
    with pytest.raises(LedgerVersionError, match="schema version 3"):
        open_ledger(pg_url)
    assert upgrade_schema(pg_url) == (3, SCHEMA_VERSION)
    upgraded = Issuer(pg_url, tmp_path / "keys", clock=clock)
    assert upgraded.ledger.products() == {PRODUCT, "dnsmanager"}
    # The licenses keep the order they were created in, and new ones come after them.
    newest = upgraded.create_license(PRODUCT)
    assert [v.summary.product for v in upgraded.search(limit=3).items] == [PRODUCT, "dnsmanager", PRODUCT]
    assert upgraded.search(limit=1).items[0].license_id == newest.license_id
    with pytest.raises(UnknownProductError, match="only in case"):
        upgraded.create_license("DNSmanager")


def test_a_newer_schema_is_refused(tmp_path: Path, clock: FakeClock, pg_url: str) -> None:
    import psycopg

    make_issuer(tmp_path, clock, ledger=pg_url)
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("UPDATE licet.meta SET schema_version = 99")
    with pytest.raises(LedgerVersionError, match="newer than this issuer"):
        open_ledger(pg_url)


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("postgresql://postgres:hunter2secret@127.0.0.1:1/licet", "cannot reach the ledger database"),
        ("postgresql://postgres:hunter2secret@127.0.0.1:5432/no_such_database_here", "does not exist"),
        ("postgresql://postgres:hunter2secret@[::1/x", "not a valid postgresql:// URL"),
    ],
)
def test_a_bad_url_is_one_clear_line_without_the_password(url: str, message: str) -> None:
    from pgsupport import require_postgres

    require_postgres()
    with pytest.raises((LedgerError, BadInputError)) as caught:
        open_ledger(url)
    assert message in caught.value.message
    assert "hunter2secret" not in caught.value.message
    assert "\n" not in caught.value.message


def test_a_role_without_privileges_is_told_so_and_nothing_is_created(tmp_path: Path, clock: FakeClock, pg_url: str) -> None:
    import psycopg
    from pgsupport import SERVER_URL, database_url
    from psycopg.conninfo import conninfo_to_dict

    dbname = conninfo_to_dict(pg_url)["dbname"]
    role = f"{dbname}_ro"
    with psycopg.connect(SERVER_URL, autocommit=True) as conn:
        conn.execute(f"DROP ROLE IF EXISTS {role}".encode())
        conn.execute(f"CREATE ROLE {role} LOGIN".encode())
        conn.execute(f"REVOKE CREATE ON DATABASE {dbname} FROM PUBLIC".encode())
    try:
        weak = database_url(dbname).replace("postgres@", f"{role}@", 1)
        make_issuer(tmp_path / "keys-only", clock)
        with pytest.raises(LedgerError, match="may not use the ledger"):
            Issuer.init(weak, tmp_path / "keys-only" / "keys", name="acme", clock=clock)
        with psycopg.connect(pg_url) as conn:
            assert conn.execute("SELECT to_regnamespace('licet')").fetchone() == (None,)
        make_issuer(tmp_path, clock, ledger=pg_url)  # made by the owner, used by the weak role
        with pytest.raises(LedgerError, match="may not use the ledger"):
            open_ledger(weak)
    finally:
        with psycopg.connect(SERVER_URL, autocommit=True) as conn:
            conn.execute(f"REVOKE ALL ON DATABASE {dbname} FROM {role}".encode())
            conn.execute(f"DROP ROLE IF EXISTS {role}".encode())


def test_a_copy_that_does_not_match_its_source_is_removed(tmp_path: Path, clock: FakeClock, site: LedgerSite, monkeypatch: pytest.MonkeyPatch) -> None:
    from issuer.ledger.copy import copy_ledger, summarize
    from issuer.ledger.folder import Ledger

    source = make_issuer(tmp_path / "src", clock)
    for _ in range(3):
        source.create_license(PRODUCT)
    if site.kind == "postgres":
        from issuer.ledger.postgres import PostgresLedger

        destination_class: type[LedgerBackend] = PostgresLedger
    else:
        destination_class = Ledger
    real_add_many = destination_class.add_many

    def lossy_add_many(self: LedgerBackend, records: list, **kwargs: bool) -> None:  # type: ignore[type-arg]
        real_add_many(self, records[:-1], **kwargs)  # a destination that silently drops a license

    monkeypatch.setattr(destination_class, "add_many", lossy_add_many)
    with pytest.raises(LedgerError, match="does not match its source"):
        copy_ledger(tmp_path / "src" / "ledger", site.url)
    with pytest.raises(LedgerMissingError):  # nothing of the bad copy remains
        open_ledger(site.url)
    monkeypatch.undo()
    summary = copy_ledger(tmp_path / "src" / "ledger", site.url)  # the place is free for a good copy
    assert summary == summarize(open_ledger(site.url)) == summarize(source.ledger)
    assert summary.licenses == 3
