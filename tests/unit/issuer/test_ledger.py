from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from support import PRODUCT, TIMING, FakeClock, ledger_bytes, make_issuer, request_for

from issuer import Issuer, LedgerBusyError, LedgerCorruptError, LedgerMissingError
from issuer.ledger.folder import LOCK_FILE, META_FILE, Ledger
from issuer.ledger.shards import JOURNAL_FILE, JOURNAL_MAGIC, journal_bytes, journal_files


@pytest.fixture
def env(tmp_path: Path, clock: FakeClock, shard_width: int) -> tuple[Issuer, Path]:
    iss = make_issuer(tmp_path, clock, shard_width=shard_width)
    iss.create_license(PRODUCT)
    return iss, tmp_path / "ledger"


def reopen(tmp_path: Path) -> Issuer:
    return Issuer(tmp_path / "ledger", tmp_path / "keys")


def shard_files(ledger: Path) -> list[Path]:
    return sorted((ledger / "licenses").glob("*.json"))


def test_missing_ledger_is_refused(tmp_path: Path, clock: FakeClock) -> None:
    make_issuer(tmp_path, clock)
    (tmp_path / "ledger" / META_FILE).unlink()
    with pytest.raises(LedgerMissingError, match="issuer init"):
        reopen(tmp_path)
    with pytest.raises(LedgerMissingError):
        Ledger(tmp_path / "nowhere")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "empty"),
        (b'{"format": "licet-led', "truncated or not JSON"),
        (b"\x00\xff garbage", "truncated or not JSON"),
        (b'{"format": "something-else", "version": 1}', "not a licet ledger"),
        (b'{"format": "licet-ledger", "version": 99}', "not supported"),
        (b'{"format": "licet-ledger", "version": 1}', "damaged"),
        (b"[]", "not a licet ledger"),
    ],
)
def test_damaged_ledger_file_is_refused(env: tuple[Issuer, Path], tmp_path: Path, content: bytes, message: str) -> None:
    (env[1] / META_FILE).write_bytes(content)
    with pytest.raises(LedgerCorruptError, match=message):
        reopen(tmp_path)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "empty"),
        (b"   \n", "empty"),
        (None, "truncated"),  # the real shard cut in half
        (b"not json at all", "truncated or not JSON"),
        (b'["a", "list"]', "not a TinyDB document"),
        (b'{"licenses": {"1": {"license_id": "LIC-X"}}}', "malformed"),
        (b'{"licenses": {"1": {"license_id": 5}}}', "malformed"),
    ],
)
def test_damaged_shard_is_refused_not_treated_as_empty(
    env: tuple[Issuer, Path], tmp_path: Path, content: bytes | None, message: str
) -> None:
    ledger = env[1]
    (shard,) = shard_files(ledger)
    shard.write_bytes(shard.read_bytes()[: len(shard.read_bytes()) // 2] if content is None else content)
    with pytest.raises(LedgerCorruptError, match=message):
        reopen(tmp_path).licenses()


def test_an_oversized_shard_is_refused_not_read(
    env: tuple[Issuer, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from issuer.ledger import shards

    ledger = env[1]
    (shard,) = shard_files(ledger)
    monkeypatch.setattr(shards, "MAX_FILE", shard.stat().st_size - 1)
    with pytest.raises(LedgerCorruptError, match="too large"):
        reopen(tmp_path).licenses()
    monkeypatch.setattr(shards, "MAX_FILE", shard.stat().st_size)
    assert len(reopen(tmp_path).licenses()) == 1


def test_key_of_a_license_in_a_damaged_shard_is_never_accepted(env: tuple[Issuer, Path], tmp_path: Path) -> None:
    iss, ledger = env
    key = iss.licenses()[0].activation_key
    iss.redeem(request_for(key, "alpha"), method="air-gapped")
    (shard,) = shard_files(ledger)
    shard.write_bytes(b"")
    with pytest.raises(LedgerCorruptError):
        reopen(tmp_path).redeem(request_for(key, "beta"), method="air-gapped")


def test_deleted_shard_is_detected_through_the_key_index(env: tuple[Issuer, Path], tmp_path: Path) -> None:
    iss, ledger = env
    key = iss.licenses()[0].activation_key
    for shard in shard_files(ledger):
        shard.unlink()
    with pytest.raises(LedgerCorruptError, match="indexed but missing"):
        reopen(tmp_path).redeem(request_for(key, "alpha"), method="air-gapped")


def _as_written(changed: dict[str, bytes], shape: str) -> bytes:
    """A journal of ``changed`` as licet writes it now, or as it wrote it before 2026-12."""
    if shape == "bytes":
        return journal_bytes(list(changed.items()))
    return json.dumps({"files": {rel: data.decode() for rel, data in changed.items()}}).encode()


@pytest.mark.parametrize("shape", ["bytes", "json text (older)"])
def test_interrupted_multi_file_change_is_completed_from_the_journal(env: tuple[Issuer, Path], tmp_path: Path, shape: str) -> None:
    iss, ledger = env
    before = ledger_bytes(ledger)
    created = iss.create_license(PRODUCT)
    after = ledger_bytes(ledger)
    changed = {rel: data for rel, data in after.items() if before.get(rel) != data}
    # the license shard, the key index, the list index page and head, the audit log page
    assert sorted(rel.split("/")[0] for rel in changed) == ["events", "index", "index", "keys", "licenses"]
    # Simulate a crash after the journal was written but before any file was replaced.
    for rel in changed:
        if rel in before:
            (ledger / rel).write_bytes(before[rel])
        else:
            (ledger / rel).unlink()
    (ledger / JOURNAL_FILE).write_bytes(_as_written(changed, shape))
    again = reopen(tmp_path)
    assert again.show(created.license_id).activation_key == created.activation_key
    assert not (ledger / JOURNAL_FILE).exists()
    assert ledger_bytes(ledger) == after
    assert again.redeem(request_for(created.activation_key, "alpha"), method="air-gapped").new


def test_a_change_journals_its_files_bytes_as_they_are(env: tuple[Issuer, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    from issuer.ledger import shards

    iss, ledger = env
    written: list[bytes] = []
    real = shards.atomic_write

    def spy(path: Path, data: bytes, *args: object, **kwargs: object) -> None:
        if path.name == JOURNAL_FILE:
            written.append(data)
        real(path, data, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(shards, "atomic_write", spy)
    before = ledger_bytes(ledger)
    iss.create_license(PRODUCT)
    changed = {rel: data for rel, data in ledger_bytes(ledger).items() if before.get(rel) != data}
    (journal,) = written
    assert journal.startswith(JOURNAL_MAGIC)
    assert dict(journal_files(journal, ledger / JOURNAL_FILE)) == changed
    header_end = journal.index(b"\n", len(JOURNAL_MAGIC)) + 1
    assert len(journal) - header_end == sum(len(data) for data in changed.values())  # each file once, as is


@pytest.mark.parametrize(
    "journal",
    [
        b'{"files": {"../../etc/x": "boom"}}',
        b"{",
        JOURNAL_MAGIC + b'[["../../etc/x", 4]]\nboom',
        JOURNAL_MAGIC + b'[["licenses/x.json", 5]]\nboom',  # lengths do not add up
        JOURNAL_MAGIC + b'[["licenses/x.json", 4]]',  # no header line end: cut short
        JOURNAL_MAGIC + b'[["licenses/x.json", -4]]\nboom',
        JOURNAL_MAGIC + b'{"licenses/x.json": 4}\nboom',
        JOURNAL_MAGIC + b"not json\nboom",
    ],
    ids=["old: outside", "old: not json", "outside", "lengths", "cut short", "negative", "not pairs", "header"],
)
def test_damaged_journal_is_refused_and_changes_nothing(env: tuple[Issuer, Path], tmp_path: Path, journal: bytes) -> None:
    ledger = env[1]
    (ledger / JOURNAL_FILE).write_bytes(journal)
    before = ledger_bytes(ledger)
    with pytest.raises(LedgerCorruptError, match="outside the ledger" if b"etc" in journal else "journal is damaged|truncated or not JSON"):
        reopen(tmp_path).licenses()
    assert ledger_bytes(ledger) == before
    assert not (tmp_path / "etc").exists()


HOLD_LOCK = """
import fcntl, os, sys, time
fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT, 0o600)
fcntl.flock(fd, fcntl.LOCK_EX)
print("locked", flush=True)
time.sleep(600)
"""


def hold_lock(ledger: Path) -> subprocess.Popen[str]:
    proc = subprocess.Popen([sys.executable, "-c", HOLD_LOCK, str(ledger / LOCK_FILE)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "locked"
    return proc


@TIMING
def test_lock_contention_times_out_with_a_clear_message(env: tuple[Issuer, Path], tmp_path: Path) -> None:
    from issuer import IssuerConfig

    holder = hold_lock(env[1])
    try:
        impatient = Issuer(tmp_path / "ledger", tmp_path / "keys", config=IssuerConfig(lock_timeout=0.3))
        start = time.monotonic()
        with pytest.raises(LedgerBusyError, match=r"another process held the lock for 0\.3 s"):
            impatient.licenses()
        assert time.monotonic() - start < 3
    finally:
        holder.kill()
        holder.wait()


def test_lock_left_by_a_killed_process_is_recovered(env: tuple[Issuer, Path], tmp_path: Path) -> None:
    holder = hold_lock(env[1])
    os.kill(holder.pid, signal.SIGKILL)
    holder.wait()
    assert (env[1] / LOCK_FILE).exists()
    assert len(reopen(tmp_path).licenses()) == 1


@TIMING
def test_the_revocation_serial_is_read_while_another_process_holds_the_lock(env: tuple[Issuer, Path], tmp_path: Path) -> None:
    iss, ledger = env
    iss.revoke(iss.licenses()[0].license_id)
    holder = hold_lock(ledger)
    try:
        start = time.monotonic()
        assert Ledger(ledger, lock_timeout=0.3).revocation_serial() == 1  # no wait for the holder
        assert time.monotonic() - start < 0.3
    finally:
        holder.kill()
        holder.wait()


def test_a_ledger_from_before_the_serial_file_gets_it_at_its_next_read_of_the_list(env: tuple[Issuer, Path], tmp_path: Path) -> None:
    iss, ledger = env
    iss.revoke(iss.licenses()[0].license_id)
    entries = json.loads((ledger / "revocations" / "list.json").read_text())["revocations"]
    # As such a ledger kept it: the serial in list.json, no serial.json.
    entries["0"] = {"kind": "serial", "serial": 7}
    (ledger / "revocations" / "list.json").write_text(json.dumps({"revocations": entries}))
    (ledger / "revocations" / "serial.json").unlink()
    old = Ledger(ledger)
    assert old.revocation_serial() is None  # only the locked read can tell
    serial, listed = old.revocations()
    assert serial == 7 and [e.kind for e in listed] == ["license"]
    assert old.revocation_serial() == 7
    iss.revoke(iss.create_license(PRODUCT).license_id)  # the next change moves it on, in one place
    assert old.revocation_serial() == old.revocations()[0] == 8
    assert "serial" not in (ledger / "revocations" / "list.json").read_text()


# --- the shard layout is the ledger's own record --------------------------------------------


def test_the_shard_layout_is_recorded_and_read_back(env: tuple[Issuer, Path], tmp_path: Path, shard_width: int) -> None:
    iss, ledger = env
    assert json.loads((ledger / META_FILE).read_text())["shard_width"] == shard_width
    for _ in range(20):
        iss.create_license(PRODUCT, ip=f"203.0.113.{_ + 1}")
    names = {p.stem for kind in ("licenses", "keys", "ips") for p in (ledger / kind).glob("*.json")}
    assert names and {len(name) for name in names} == {shard_width}
    again = reopen(tmp_path)
    assert again.ledger.info.shard_width == shard_width
    assert len(again.licenses()) == 21
    assert again.ledger.licenses_for_ip("203.0.113.7")[0].ip == "203.0.113.7"


def test_a_ledger_without_a_recorded_layout_keeps_working_at_the_old_width(tmp_path: Path, clock: FakeClock) -> None:
    iss = make_issuer(tmp_path, clock, shard_width=3)
    created = iss.create_license(PRODUCT, ip="203.0.113.9")
    meta_path = tmp_path / "ledger" / META_FILE
    meta = json.loads(meta_path.read_text())
    del meta["shard_width"]  # as written before the layout was recorded
    meta_path.write_text(json.dumps(meta))
    old = reopen(tmp_path)
    assert old.ledger.info.shard_width == 3
    assert old.redeem(request_for(created.activation_key, "alpha"), method="online").new
    assert old.ledger.licenses_for_ip("203.0.113.9")[0].license_id == created.license_id
    second = old.create_license(PRODUCT)
    assert all(len(p.stem) == 3 for p in (tmp_path / "ledger" / "licenses").glob("*.json"))
    assert old.show(second.license_id).license_id == second.license_id


@pytest.mark.parametrize("width", [0, 5, "3", 2.0, None, True])
def test_an_unknown_recorded_layout_is_refused(env: tuple[Issuer, Path], tmp_path: Path, width: object) -> None:
    meta_path = env[1] / META_FILE
    meta = json.loads(meta_path.read_text())
    meta["shard_width"] = width
    meta_path.write_text(json.dumps(meta))
    with pytest.raises(LedgerCorruptError, match="shard layout"):
        reopen(tmp_path)


@pytest.mark.parametrize("width", [0, 5, "1"])
def test_a_new_ledger_refuses_an_unknown_layout(tmp_path: Path, clock: FakeClock, width: object) -> None:
    from verifier import BadInputError

    with pytest.raises(BadInputError, match="shard width"):
        make_issuer(tmp_path, clock, shard_width=width)
    assert not (tmp_path / "ledger" / META_FILE).exists()
