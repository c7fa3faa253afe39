"""The ledger's ordered license index and its one audit log."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from pgsupport import LedgerSite
from support import PRODUCT, FakeClock, make_issuer, request_for

from issuer import Issuer, LedgerCorruptError
from issuer.records import LicenseQuery


def test_pages_run_newest_first_across_index_pages(iss: Issuer, clock: FakeClock) -> None:
    ids = []
    for i in range(300):  # more than one 256-entry index page
        ids.append(iss.create_license(PRODUCT if i % 3 else "other", customer=f"customer {i}", new_product=True).license_id)
    seen, cursor = [], None
    while True:
        page = iss.search(product=PRODUCT, cursor=cursor, limit=37)
        seen += [v.license_id for v in page.items]
        cursor = page.next_cursor
        if cursor is None:
            break
    assert seen == [lid for i, lid in reversed(list(enumerate(ids))) if i % 3]
    found = [v.license_id for v in iss.search(text="CUSTOMER 7", limit=200).items]
    assert found == [ids[i] for i in (79, 78, 77, 76, 75, 74, 73, 72, 71, 70, 7)]


def test_status_changes_reach_the_index(iss: Issuer, clock: FakeClock) -> None:
    used = iss.create_license(PRODUCT, days=10)
    revoked = iss.create_license(PRODUCT)
    lapsed = iss.create_license(PRODUCT, days=1)
    iss.redeem(request_for(used.activation_key, "alpha"), method="online")
    iss.revoke(revoked.license_id)
    clock.advance(days=2)
    def status(s: str) -> list[str]:
        return [v.license_id for v in iss.search(status=s).items]
    assert status("activated") == [used.license_id]
    assert status("revoked") == [revoked.license_id]
    assert status("expired") == [lapsed.license_id]
    assert status("issued") == []
    row = iss.search(text=used.license_id).items[0].to_dict()
    assert row["activated_hostname"] == "alpha" and row["activation_key"] == used.activation_key


def test_a_ledger_from_before_the_index_is_indexed_on_first_use(tmp_path: Path, clock: FakeClock) -> None:
    iss = make_issuer(tmp_path, clock)
    made = []
    for i in range(5):  # old ledgers are put in order by creation time
        clock.advance(seconds=1)
        made.append(iss.create_license(PRODUCT, customer=f"c{i}"))
    clock.advance(seconds=1)
    iss.regenerate(made[0].license_id)
    ledger = tmp_path / "ledger"
    shutil.rmtree(ledger / "index")
    shutil.rmtree(ledger / "events")
    again = Issuer(ledger, tmp_path / "keys", clock=clock)
    assert [v.license_id for v in again.search().items] == [m.license_id for m in reversed(made)]
    events = again.events().items
    assert [(e.event.action, e.license_id) for e in events] == [("created", m.license_id) for m in made] + [("regenerated", made[0].license_id)]
    again.update_license(made[1].license_id, customer="after the upgrade")
    assert again.events(after=str(events[-1].cursor)).items[0].event.changes["customer"]["after"] == "after the upgrade"


def test_a_damaged_index_page_is_refused_not_read_as_empty(iss: Issuer, tmp_path: Path, site: LedgerSite) -> None:
    if site.kind == "postgres":
        pytest.skip("a PostgreSQL ledger orders its licenses by a column, not index files")
    iss.create_license(PRODUCT)
    (tmp_path / "ledger" / "index" / "000000.json").write_text("{")
    with pytest.raises(LedgerCorruptError):
        iss.search()
    (tmp_path / "ledger" / "index" / "000000.json").write_text('{"index": {}}')
    with pytest.raises(LedgerCorruptError, match="index entry 0"):
        iss.search()


def test_query_rules() -> None:
    from support import T0

    from issuer.records import LicenseSummary

    row = LicenseSummary("LIC-ABC", PRODUCT, "Acme <GmbH>", "203.0.113.1", "issued", T0, None, 1, None)
    assert LicenseQuery(now=T0, text="acme <g").matches(row)
    assert LicenseQuery(now=T0, text="113.1").matches(row)
    assert not LicenseQuery(now=T0, text="zzz").matches(row)
    assert not LicenseQuery(now=T0, product="other").matches(row)
    assert LicenseQuery(now=T0, status="issued", product=PRODUCT).matches(row)


def test_a_whole_id_or_ip_is_looked_up_directly(iss: Issuer, clock: FakeClock) -> None:
    one = iss.create_license(PRODUCT, ip="203.0.113.5")
    clock.advance(seconds=1)
    two = iss.create_license(PRODUCT, ip="203.0.113.5")
    iss.revoke(two.license_id)
    iss.create_license(PRODUCT, customer="mentions 203.0.113.55")

    def ids(**query: str) -> list[str]:
        return [v.license_id for v in iss.search(**query).items]  # type: ignore[arg-type]

    assert ids(text=one.license_id.lower()) == [one.license_id]
    assert ids(text="LIC-0000000000") == []
    assert ids(text="203.0.113.5") == [two.license_id, one.license_id]
    assert ids(text="203.0.113.5", status="revoked") == [two.license_id]
    assert ids(text=" 203.0.113.5 ") == [two.license_id, one.license_id]
    assert len(ids(text="203.0.113")) == 3  # partial text searches the index
    iss.update_license(one.license_id, ip="198.51.100.1")
    assert ids(text="203.0.113.5") == [two.license_id] and ids(text="198.51.100.1") == [one.license_id]


def test_text_search_finds_the_same_whether_or_not_page_bytes_are_prechecked(iss: Issuer) -> None:
    names = ["Müller & Söhne", 'Say "hi"', "back\\slash", "ACME Straße", "plain ascii"]
    made = {name: iss.create_license(PRODUCT, customer=name).license_id for name in names}
    iss.create_licenses(300, PRODUCT)  # later pages without any of them
    for text, expected in [("müller", ["Müller & Söhne"]), ("ller & s", ["Müller & Söhne"]), ('"hi"', ['Say "hi"']),
                           ("k\\s", ["back\\slash"]), ("straße", ["ACME Straße"]), ("acme", ["ACME Straße"]),
                           ("PLAIN ASCII", ["plain ascii"]), ("nobody", [])]:
        assert [v.license_id for v in iss.search(text=text).items] == [made[n] for n in expected], text
