"""The folder ledger's webhook outbox: a license change keeps its deliveries in the index head it
writes anyway, the head spills to a file every 8 changes, and whoever next reads the queue takes
them in — in event order, each once, even when the housekeeping after a take never ran."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from support import PRODUCT, FakeClock, make_issuer

from issuer.ledger import shards
from verifier.clock import utc_now
from verifier.errors import LedgerCorruptError

# Nothing listens there: these tests look at the queue, they never send.
URL = "http://127.0.0.1:9/hooks"


def _setup(tmp_path: Path, endpoints: int = 1) -> tuple[Any, list[str]]:
    iss = make_issuer(tmp_path, FakeClock(utc_now()))
    ids = [iss.webhooks.add(URL, allow_private=True)[0].endpoint_id for _ in range(endpoints)]
    return iss, ids


def _spilled(tmp_path: Path) -> list[Path]:
    return sorted((tmp_path / "ledger" / "events").glob("outbox-*.json"))


def _held(tmp_path: Path) -> int:
    head = json.loads((tmp_path / "ledger" / "index" / "head.json").read_text())
    return len(head.get("outbox", {}))


def test_a_change_writes_no_file_of_its_own_until_the_head_spills_eight(tmp_path: Path) -> None:
    iss, _ = _setup(tmp_path)
    for n in range(1, 8):
        iss.create_license(product=PRODUCT, days=30)
        assert (_held(tmp_path), _spilled(tmp_path)) == (n, [])
    iss.create_license(product=PRODUCT, days=30)
    assert _held(tmp_path) == 0
    assert len(_spilled(tmp_path)) == 1


def test_deliveries_are_taken_in_event_order_each_once_across_spills(tmp_path: Path) -> None:
    iss, (wh, other) = _setup(tmp_path, endpoints=2)
    made = [iss.create_license(product=PRODUCT, days=30).license_id for _ in range(21)]
    assert len(_spilled(tmp_path)) == 2 and _held(tmp_path) == 5

    for endpoint in (wh, other):
        found = iss.webhooks.deliveries(endpoint, limit=100)[::-1]  # oldest first
        assert [d.body["data"]["license"]["license_id"] for d in found] == made
        cursors = [d.event_cursor for d in found]
        assert cursors == sorted(cursors) and len(set(cursors)) == len(made)
        assert [d.seq for d in found] == sorted(d.seq for d in found)
    assert _spilled(tmp_path) == []  # taken in, then removed


def test_the_outboxes_of_one_transaction_with_several_changes_are_all_taken_in(tmp_path: Path) -> None:
    from issuer import policy
    from issuer.licensing.licenses import store

    iss, (wh, other) = _setup(tmp_path, endpoints=2)
    made = [iss.create_license(product=PRODUCT, days=30).license_id for _ in range(2)]
    assert len(iss.webhooks.deliveries(wh, limit=100)) == 2  # wh has taken the two creations
    with iss.ledger.transaction() as tx:  # two changes, two outboxes, one "at"
        for license_id in made:
            record = tx.license(license_id=license_id)
            updated = policy.amend(record, {"customer": "ACME"}, actor="test", now=utc_now())
            store(tx, record, updated, info=iss.ledger.info, months=1)
    for endpoint in (wh, other):
        found = iss.webhooks.deliveries(endpoint, limit=100)[::-1]
        assert [(d.type, d.body["data"]["license"]["license_id"]) for d in found] == [
            *(("license.created", m) for m in made),
            *(("license.updated", m) for m in made),
        ]


def test_a_take_whose_housekeeping_never_ran_queues_nothing_twice(tmp_path: Path) -> None:
    iss, (wh,) = _setup(tmp_path)
    for _ in range(10):
        iss.create_license(product=PRODUCT, days=30)
    kept = tmp_path / "kept"
    kept.mkdir()
    for path in _spilled(tmp_path):
        shutil.copy2(path, kept / path.name)
    first = {d.delivery_id for d in iss.webhooks.deliveries(wh, limit=100)}
    assert len(first) == 10
    for path in kept.iterdir():  # as if the process died before removing them
        shutil.copy2(path, tmp_path / "ledger" / "events" / path.name)
    iss.create_license(product=PRODUCT, days=30)  # and the head still holds taken outboxes
    again = iss.webhooks.deliveries(wh, limit=100)
    assert len(again) == 11 and {d.delivery_id for d in again} >= first
    assert len({d.event_cursor for d in again}) == 11


def test_an_endpoint_removed_before_the_take_gets_nothing(tmp_path: Path) -> None:
    iss, (wh, gone) = _setup(tmp_path, endpoints=2)
    for _ in range(3):
        iss.create_license(product=PRODUCT, days=30)
    iss.webhooks.remove(gone)
    assert len(iss.webhooks.deliveries(wh, limit=100)) == 3
    assert sorted(p.name for p in (tmp_path / "ledger" / "webhooks").glob("*WH-*.json")) == [f"{wh}.json"]


def test_a_deliverer_takes_in_and_records_a_batch_in_one_write_of_one_file_without_a_journal(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    iss, (wh, _other, _third) = _setup(tmp_path, endpoints=3)
    for _ in range(3):
        iss.create_license(product=PRODUCT, days=30)
    written: list[str] = []
    real = shards.atomic_write
    monkeypatch.setattr(shards, "atomic_write", lambda path, *a, **k: (written.append(path.name), real(path, *a, **k))[1])
    with iss.ledger.webhooks().claim(wh) as claim:
        pending = claim.pending(100)
        assert (len(pending), written) == (3, [])  # taken in with the record, once sent
        claim.record([replace(pending[0], status="delivered", next_attempt_at=None)], state=None)
        assert written == [f"{wh}.json"]
    after = iss.webhooks.deliveries(wh, limit=10)
    assert [(d.delivery_id, d.status, d.seq) for d in after] == [
        (d.delivery_id, "delivered" if d == pending[0] else "pending", d.seq) for d in pending[::-1]
    ]
    assert [d.seq for d in pending] == [1, 2, 3]


def test_a_take_between_a_batchs_pending_and_its_record_gives_the_same_places(tmp_path: Path) -> None:
    iss, (wh,) = _setup(tmp_path)
    for _ in range(2):
        iss.create_license(product=PRODUCT, days=30)
    with iss.ledger.webhooks().claim(wh) as claim:
        pending = claim.pending(100)
        iss.create_license(product=PRODUCT, days=30)
        listed = iss.webhooks.deliveries(wh, limit=10)  # a page takes all three in meanwhile
        claim.record([replace(d, status="delivered", next_attempt_at=None) for d in pending], state=None)
    after = iss.webhooks.deliveries(wh, limit=10)
    assert [(d.delivery_id, d.seq) for d in after] == [(d.delivery_id, d.seq) for d in listed]
    assert [d.status for d in after] == ["pending", "delivered", "delivered"]


def test_an_outbox_file_stays_until_every_endpoint_has_taken_it_in(tmp_path: Path) -> None:
    iss, (wh, other) = _setup(tmp_path, endpoints=2)
    for _ in range(9):
        iss.create_license(product=PRODUCT, days=30)
    assert len(_spilled(tmp_path)) == 1
    with iss.ledger.webhooks().claim(wh) as claim:
        assert len(claim.pending(100)) == 9
        claim.record([], state=None)  # a batch's record takes in what it found pending
    assert len(_spilled(tmp_path)) == 1  # the other endpoint has not taken it yet
    assert len(iss.webhooks.deliveries(other, limit=100)) == 9
    assert _spilled(tmp_path) == []
    with iss.ledger.webhooks().claim(wh) as claim:
        assert len(claim.pending(100)) == 9  # nothing twice


def _legacy_rows(folder: Path) -> tuple[dict[str, list[Any]], dict[str, list[Any]], int, int]:
    """Each endpoint's queue and done rows, and the marks, read from the per-endpoint files (removed)."""
    queued: dict[str, list[Any]] = {}
    done: dict[str, list[Any]] = {}
    taken, seq = set(), 0
    for path in sorted(folder.glob("WH-*.json")):
        data = json.loads(path.read_text())
        queued[path.stem] = list(data.get("queue", {}).values())
        done[path.stem] = list(data.get("done", {}).values())
        taken.add(data["mark"]["1"]["taken"])
        seq = max(seq, data["mark"]["1"]["seq"])
        path.unlink()
    assert len(taken) == 1  # every endpoint took in the same outboxes, as the shared marks say
    return queued, done, taken.pop(), seq


def _write(path: Path, data: Any) -> None:
    path.write_text(json.dumps(data))


def _numbered(rows: list[Any]) -> dict[str, Any]:
    return {str(n): row for n, row in enumerate(rows, 1)}


def _deliver_first(iss: Any, endpoint_id: str) -> None:
    with iss.ledger.webhooks().claim(endpoint_id) as claim:
        first = claim.pending(1)[0]
        claim.record([replace(first, status="delivered", next_attempt_at=None)], state=None)


@pytest.mark.parametrize("layout", ["one queue and done file per endpoint", "one shared queue file"])
def test_a_queue_of_an_older_layout_moves_into_one_file_per_endpoint_on_first_use(tmp_path: Path, layout: str) -> None:
    iss, (wh, other) = _setup(tmp_path, endpoints=2)
    for _ in range(3):
        iss.create_license(product=PRODUCT, days=30)
    _deliver_first(iss, wh)
    before = {e: [(d.delivery_id, d.status) for d in iss.webhooks.deliveries(e, limit=10)] for e in (wh, other)}
    folder = tmp_path / "ledger" / "webhooks"
    queued, done, taken, seq = _legacy_rows(folder)
    if layout == "one shared queue file":  # nor had it a counter
        _write(folder / "queue.json", {"outbox": {"1": {"taken": taken}}, "webhooks": _numbered([r for e in queued for r in queued[e]])})
        _write(folder / "done.json", {"webhooks": _numbered([r for e in done for r in done[e]])})
    else:
        _write(folder / "queue.json", {"outbox": {"1": {"taken": taken, "seq": seq}}})
        for e in queued:
            _write(folder / f"queue-{e}.json", {"webhooks": _numbered(queued[e])})
            _write(folder / f"done-{e}.json", {"webhooks": _numbered(done[e])})

    after = {e: [(d.delivery_id, d.status) for d in iss.webhooks.deliveries(e, limit=10)] for e in (wh, other)}
    assert after == before
    assert sorted(p.name for p in folder.glob("*.json")) == sorted(["endpoints.json", "queue.json", f"{wh}.json", f"{other}.json"])
    iss.create_license(product=PRODUCT, days=30)  # numbered after the moved ones, and taken once
    newest = iss.webhooks.deliveries(wh, limit=10)
    assert len(newest) == 4 and newest[0].seq > max(d.seq for d in newest[1:])
    assert len({d.delivery_id for d in newest}) == 4


def _rows_of(outbox: dict[str, Any]) -> tuple[list[dict[str, Any]], dict[str, str]]:
    """The whole rows and payloads of a compact outbox (the shape older ledgers kept)."""
    rows = [
        {"delivery_id": delivery_id, "endpoint_id": endpoint_id, "event_id": e["event_id"], "type": e["type"],
         "event_cursor": e["event_cursor"], "index": e["index"], "seq": 0, "status": "pending", "attempts": [],
         "next_attempt_at": e["window_start"], "window_start": e["window_start"], "manual": False}
        for e in outbox["events"] for endpoint_id, delivery_id in e["to"]
    ]
    return rows, {e["event_id"]: e["payload"] for e in outbox["events"]}


def test_a_change_keeps_each_event_once_with_the_endpoints_it_goes_to(tmp_path: Path) -> None:
    iss, ids = _setup(tmp_path, endpoints=3)
    iss.create_license(product=PRODUCT, days=30)
    head = json.loads((tmp_path / "ledger" / "index" / "head.json").read_text())
    (outbox,) = head["outbox"].values()
    (event,) = outbox["events"]  # one event, once, as JSON (not text within the head's text)
    assert [endpoint for endpoint, _ in event["to"]] == ids
    assert json.loads(event["payload"])["type"] == "license.created"
    found = {e: iss.webhooks.deliveries(e, limit=10) for e in ids}
    assert {e: [(d.delivery_id, d.event_id, d.status, d.seq) for d in f] for e, f in found.items()} == {
        endpoint: [(delivery, event["event_id"], "pending", 1)] for endpoint, delivery in event["to"]
    }
    assert {f[0].payload() for f in found.values()} == {event["payload"].encode()}


def test_rows_of_another_shape_are_kept_whole_in_order() -> None:
    import datetime as dt

    from issuer.ledger.webhooks_outbox import _outbox, deliveries_of
    from issuer.webhook_records import Attempt, Delivery

    at = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    bodies = {"E1": {"n": 1}, "E2": {"n": 2}}

    def new(event: str, endpoint: str, **other: Any) -> Delivery:
        fields: dict[str, Any] = {"next_attempt_at": at, **other}
        return Delivery(delivery_id=f"DL-{event}{endpoint}", endpoint_id=endpoint, event_id=event, type="t",
                        body=bodies[event], window_start=at, event_cursor=1, **fields)

    def expected(deliveries: list[Delivery]) -> list[dict[str, Any]]:
        docs = [d.to_doc() for d in deliveries]
        for doc in docs:
            doc["payload"] = json.dumps(doc.pop("body"), separators=(",", ":"))
        return docs

    compact = [new("E1", "A"), new("E1", "B"), new("E2", "A")]
    kept = _outbox(compact, [1])
    assert [e["to"] for e in kept["events"]] == [[["A", "DL-E1A"], ["B", "DL-E1B"]], [["A", "DL-E2A"]]]
    assert deliveries_of(kept) == expected(compact)
    for deliveries in (
        [new("E1", "A"), new("E2", "A"), new("E1", "B")],  # one event's deliveries apart
        [new("E1", "A", manual=True)],
        [new("E1", "A", next_attempt_at=at + dt.timedelta(days=1))],
        [new("E1", "A", attempts=(Attempt(at, 500, "HTTP 500"),))],
        [new("E1", "A", seq=7)],
    ):
        kept = _outbox(deliveries, [1])
        assert "events" not in kept
        assert deliveries_of(kept) == expected(deliveries)


@pytest.mark.parametrize("shape", ["rows", "text with payloads", "text with bodies"])
def test_an_outbox_of_an_older_shape_is_taken_in_and_sent_alike(tmp_path: Path, shape: str) -> None:
    iss, (wh,) = _setup(tmp_path)
    iss.create_license(product=PRODUCT, days=30)
    head_file = tmp_path / "ledger" / "index" / "head.json"
    head = json.loads(head_file.read_text())
    rows, payloads = _rows_of(head["outbox"]["1"])
    sent = {e: p.encode() for e, p in payloads.items()}
    bodies = {e: json.loads(p) for e, p in payloads.items()}
    for body in bodies.values():  # as the oldest shape kept it: the cursor filled in when sent
        body["data"]["event"]["cursor"] = "0"
    at = head["outbox"]["1"]["at"]
    head["outbox"]["1"] = {
        "rows": {"at": at, "rows": rows, "payloads": payloads},
        "text with payloads": {"at": at, "raw": json.dumps({"payloads": payloads, "rows": rows})},
        "text with bodies": {"at": at, "raw": json.dumps({"bodies": bodies, "rows": rows})},
    }[shape]
    head_file.write_text(json.dumps(head))
    (found,) = iss.webhooks.deliveries(wh, limit=10)
    assert json.loads(found.payload()) == json.loads(sent[found.event_id])
    assert json.loads(found.payload())["data"]["event"]["cursor"] == str(found.event_cursor) != "0"
    assert found.delivery_id == rows[0]["delivery_id"]


def test_a_copy_keeps_each_endpoints_order_when_their_numbers_differ(tmp_path: Path) -> None:
    from issuer.ledger.copy import copy_ledger

    iss, (wh,) = _setup(tmp_path)
    for _ in range(3):
        iss.create_license(product=PRODUCT, days=30)
    for _ in range(3):
        _deliver_first(iss, wh)  # its undelivered ones are numbered from 4 on
    later = iss.webhooks.add(URL, allow_private=True)[0].endpoint_id  # numbers its own from 1
    made = [iss.create_license(product=PRODUCT, days=30).license_id for _ in range(2)]
    summary = copy_ledger(str(tmp_path / "ledger"), tmp_path / "copy")
    assert (summary.webhooks, summary.undelivered) == (2, 4)
    from issuer import Issuer

    # The copy checked itself against its source (the digest); each queue is in its order too.
    again = Issuer(tmp_path / "copy", tmp_path / "keys")
    for endpoint in (wh, later):
        found = again.webhooks.deliveries(endpoint, limit=10)[::-1]
        assert [d.body["data"]["license"]["license_id"] for d in found if d.status == "pending"] == made


def test_a_damaged_outbox_is_damage_not_an_empty_queue(tmp_path: Path) -> None:
    iss, (wh,) = _setup(tmp_path)
    iss.create_license(product=PRODUCT, days=30)
    head_file = tmp_path / "ledger" / "index" / "head.json"
    head = json.loads(head_file.read_text())
    good = head["outbox"]["1"]
    for damage in ({"raw": "[{not json"}, {"events": "[{not json"}, {"events": [{"to": [["WH-X", "DL-X"]]}]}):
        head["outbox"]["1"] = {"at": good["at"], **damage}
        head_file.write_text(json.dumps(head))
        with pytest.raises(LedgerCorruptError, match="outbox"):
            iss.webhooks.deliveries(wh, limit=10)


def test_a_take_reads_no_outbox_file_every_taker_has_passed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from issuer.ledger import webhooks_folder

    iss, (wh, lagging) = _setup(tmp_path, endpoints=2)
    for _ in range(16):
        iss.create_license(product=PRODUCT, days=30)
    iss.webhooks.deliveries(wh, limit=1)  # wh takes both files in; they stay for the other
    first, second = _spilled(tmp_path)
    for _ in range(9):
        iss.create_license(product=PRODUCT, days=30)
    (third,) = set(_spilled(tmp_path)) - {first, second}
    read: list[str] = []
    real = webhooks_folder.read_raw
    monkeypatch.setattr(webhooks_folder, "read_raw", lambda path, what: read.append(Path(path).name) or real(path, what))
    assert len(iss.webhooks.deliveries(wh, limit=100)) == 25
    # The second file may end with a transaction that goes on in the third: it is read again.
    assert [n for n in read if n != "endpoints.json"] == [second.name, third.name, "head.json"]
    read.clear()
    assert len(iss.webhooks.deliveries(lagging, limit=100)) == 25  # the other reads them all
    assert [n for n in read if n != "endpoints.json"] == [first.name, second.name, third.name, "head.json"]
    assert _spilled(tmp_path) == []


def test_endpoints_are_read_while_a_license_change_holds_the_ledger(tmp_path: Path) -> None:
    from verifier.fileio import file_lock

    iss, ids = _setup(tmp_path, endpoints=2)
    with file_lock(tmp_path / "ledger" / "ledger.lock", 1):  # a change in progress
        assert [e.endpoint_id for e in iss.webhooks.endpoints()] == ids


def test_each_change_queues_for_the_endpoints_as_they_are_then(tmp_path: Path) -> None:
    iss, (first, second) = _setup(tmp_path, endpoints=2)

    def newest_targets() -> list[str]:
        head = json.loads((tmp_path / "ledger" / "index" / "head.json").read_text())
        newest = max(head["outbox"].values(), key=lambda doc: doc["at"])
        return [endpoint for event in newest["events"] for endpoint, _ in event["to"]]

    iss.create_license(product=PRODUCT, days=30)
    assert newest_targets() == [first, second]
    iss.webhooks.remove(first)
    iss.create_license(product=PRODUCT, days=30)
    assert newest_targets() == [second]
    third = iss.webhooks.add(URL, allow_private=True)[0].endpoint_id
    iss.create_license(product=PRODUCT, days=30)
    assert newest_targets() == [second, third]


def test_a_bulk_import_logs_its_licenses_but_sends_no_webhook(tmp_path: Path) -> None:
    iss, (wh,) = _setup(tmp_path)
    made = iss.create_licenses(3, PRODUCT, days=30)
    assert iss.webhooks.deliveries(wh, limit=10) == []
    logged = {e.license_id for e in iss.ledger.events(after=0, limit=100)}
    assert set(made) <= logged
    iss.create_license(product=PRODUCT, days=30)  # a license made one by one is sent
    assert [d.type for d in iss.webhooks.deliveries(wh, limit=10)] == ["license.created"]
