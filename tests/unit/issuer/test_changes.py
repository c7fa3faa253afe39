"""What a change implies is worked out once (changes.plan), and both backends keep the same of it."""

from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path
from typing import Any

import pytest
from support import PRODUCT, FakeClock, make_issuer, request_for

from issuer import policy
from issuer.ledger import create_ledger
from issuer.ledger.changes import RevocationUpdate, plan
from issuer.policy.revocations import revocation_changes
from issuer.records import LicenseQuery, LicenseRecord, LicenseStatus, RevocationEntry


@pytest.fixture
def record(tmp_path: Path, clock: FakeClock) -> LicenseRecord:
    """An activated license with an IP, as the ledger keeps it."""
    iss = make_issuer(tmp_path / "source", clock)
    view = iss.create_license(PRODUCT, ip="203.0.113.7", customer="Acme")
    iss.redeem(request_for(view.activation_key, "alpha"), method="online")
    return iss.ledger.get(view.license_id)  # type: ignore[no-any-return]


def regenerated(record: LicenseRecord, clock: FakeClock) -> LicenseRecord:
    return policy.regenerate(record, new_key_hash="f" * 64, actor="cli:test", now=clock(), months=1)


# -- plan, a pure function ----------------------------------------------------------------


def test_an_unchanged_license_implies_nothing(record: LicenseRecord) -> None:
    change = plan(record, record, revoked=None)
    assert change.record == record and change.license_id == record.license_id
    assert change.new_key_hash is None and not change.ip_moved
    assert change.summary is None and change.events == () and change.revocations is None


def test_a_regeneration_indexes_the_new_key_and_moves_the_list_by_what_it_is_told(record: LicenseRecord, clock: FakeClock) -> None:
    clock.advance(days=1)
    after = regenerated(record, clock)
    entries = revocation_changes(record, after)
    assert entries  # the superseded activation
    change = plan(record, after, revoked=entries)
    assert change.new_key_hash == after.key_hash == "f" * 64
    assert change.events == after.history[len(record.history) :] and change.events
    assert change.revocations == RevocationUpdate(added=tuple(entries), drop_until=after.history[-1].at)
    assert change.summary is not None and change.summary.generation == record.generation + 1
    assert not change.ip_moved
    # The entries are the caller's decision: told none, the list stays.
    assert plan(record, after, revoked=None).revocations is None
    assert plan(record, after, revoked=[]).revocations == RevocationUpdate(added=(), drop_until=after.history[-1].at)


def test_an_edited_ip_moves_in_the_look_up(record: LicenseRecord, clock: FakeClock) -> None:
    moved = policy.amend(record, {"ip": "198.51.100.9"}, actor="cli:test", now=clock())
    assert moved is not None
    change = plan(record, moved, revoked=None)
    assert change.ip_moved and (change.old_ip, change.new_ip) == ("203.0.113.7", "198.51.100.9")
    assert change.summary is not None and change.summary.ip == "198.51.100.9"
    cleared = policy.amend(record, {"ip": None}, actor="cli:test", now=clock())
    assert cleared is not None
    assert (plan(record, cleared, revoked=None).old_ip, plan(record, cleared, revoked=None).new_ip) == ("203.0.113.7", None)


def test_a_renewal_logs_its_event_but_leaves_the_summary(record: LicenseRecord, clock: FakeClock) -> None:
    assert record.activation is not None
    renewed, _, _ = policy.renew(
        record, product=PRODUCT, activation_id=record.activation.activation_id, fingerprint=record.activation.fingerprint,
        method="online", actor="panel:online", now=clock(), lease_days=30, months=1,
    )
    change = plan(record, renewed, revoked=revocation_changes(record, renewed))
    assert change.events and change.summary is None and change.revocations is None


def test_a_plan_refuses_another_license_or_a_rewritten_history(record: LicenseRecord) -> None:
    with pytest.raises(ValueError, match="cannot store"):
        plan(record, dataclasses.replace(record, license_id="LIC-OTHER00000"), revoked=None)
    with pytest.raises(ValueError, match="rewrites its history"):
        plan(record, dataclasses.replace(record, history=record.history[1:]), revoked=None)


# -- both backends keep the same of the same plan ---------------------------------------------


def effects(ledger: Any, record: LicenseRecord, keys: list[str], ips: list[str]) -> dict[str, Any]:
    """Everything a reader of the ledger can see of one license's changes."""
    with ledger.transaction() as tx:
        found = {key: getattr(tx.license(key_hash=key), "license_id", None) for key in keys}
    serial, entries = ledger.revocations()
    summaries, _ = ledger.page(LicenseQuery(now=record.created_at + dt.timedelta(days=1)))
    return {
        "license": ledger.get(record.license_id),
        "keys": found,
        "ips": {ip: [r.license_id for r in ledger.licenses_for_ip(ip)] for ip in ips},
        "events": [(e.license_id, e.event) for e in ledger.events(limit=1000)],
        "revocations": (serial, sorted(entries, key=lambda e: (e.kind, e.ident))),
        "summaries": summaries,
        "products": ledger.products(),
    }


def test_both_backends_keep_the_same_effects_of_the_same_changes(
    tmp_path: Path, clock: FakeClock, record: LicenseRecord, pg_url: str
) -> None:
    made = {"provider": "acme", "secret_check": "check", "now": clock()}
    ledgers = [create_ledger(tmp_path / "folder", **made), create_ledger(pg_url, **made)]
    clock.advance(days=1)
    steps = [regenerated(record, clock)]
    moved = policy.amend(steps[-1], {"ip": "198.51.100.9", "customer": "Acme GmbH"}, actor="api:test", now=clock())
    assert moved is not None
    steps.append(moved)
    steps.append(policy.revoke(steps[-1], actor="console:alice", now=clock()))
    seen = []
    for ledger in ledgers:
        try:
            ledger.add(record)
            before = record
            for after in steps:
                with ledger.transaction() as tx:
                    assert tx.license(license_id=record.license_id) == before
                    tx.replace(before, after, revoked=revocation_changes(before, after))
                before = after
            seen.append(effects(ledger, record, [record.key_hash, "f" * 64], ["203.0.113.7", "198.51.100.9"]))
        finally:
            ledger.close()
    folder, database = seen
    assert folder == database
    # And they are the effects the plans describe.
    assert folder["license"] == steps[-1] and folder["license"].status == LicenseStatus.REVOKED
    assert folder["keys"] == {record.key_hash: record.license_id, "f" * 64: record.license_id}
    assert folder["ips"] == {"203.0.113.7": [], "198.51.100.9": [record.license_id]}
    assert [event for _, event in folder["events"]] == list(steps[-1].history)
    serial, entries = folder["revocations"]
    assert serial == 2 and {e.kind for e in entries} == {RevocationEntry.ACTIVATION, RevocationEntry.LICENSE}
    assert [s.customer for s in folder["summaries"]] == ["Acme GmbH"]
