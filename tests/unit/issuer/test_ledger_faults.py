"""Disk faults during ledger writes: the operation fails, the ledger stays as it was."""

from __future__ import annotations

import errno
import os
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest
from support import PRODUCT, FakeClock, current_license, ledger_bytes, make_issuer, request_for

from issuer import Issuer, LedgerWriteError
from issuer.ledger.shards import JOURNAL_FILE
from verifier import InvalidActivationKeyError


class Faults:
    """Make the n-th call of an os function fail (counting from 1), or every call from n on."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, name: str, fail_at: int, code: int = errno.EIO, forever: bool = False) -> None:
        self.calls = 0
        real: Callable[..., object] = getattr(os, name)

        def faulty(*args: object, **kwargs: object) -> object:
            self.calls += 1
            if self.calls == fail_at or (forever and self.calls > fail_at):
                raise OSError(code, os.strerror(code))
            return real(*args, **kwargs)

        monkeypatch.setattr(os, name, faulty)


@pytest.fixture
def env(tmp_path: Path, clock: FakeClock, shard_width: int) -> tuple[Issuer, Path]:
    iss = make_issuer(tmp_path, clock, shard_width=shard_width)
    iss.create_license(PRODUCT)
    return iss, tmp_path / "ledger"


def count_calls(monkeypatch: pytest.MonkeyPatch, name: str, action: Callable[[], object]) -> int:
    counter = Faults(monkeypatch, name, fail_at=10**9)
    action()
    monkeypatch.undo()
    return counter.calls


@pytest.mark.parametrize("name", ["fsync", "replace", "write"])
def test_redemption_failing_at_every_step_changes_nothing(env: tuple[Issuer, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    iss, ledger = env
    key = iss.licenses()[0].activation_key
    # How many calls a redemption makes, measured on a twin ledger.
    twin = make_issuer(tmp_path / "twin", FakeClock(), shard_width=iss.ledger.info.shard_width)
    twin_key = twin.create_license(PRODUCT).activation_key
    steps = count_calls(monkeypatch, name, lambda: twin.redeem(request_for(twin_key, "alpha"), method="online"))
    assert steps >= 1
    before = ledger_bytes(ledger)
    # A redemption writes the license, its list entry and the audit log together
    # (journaled): the last fsync only confirms the journal's removal.
    last_fsync_is_housekeeping = 1 if name == "fsync" else 0
    for step in range(1, steps + 1 - last_fsync_is_housekeeping):
        Faults(monkeypatch, name, step, errno.ENOSPC if name == "write" else errno.EIO)
        with pytest.raises(LedgerWriteError):
            iss.redeem(request_for(key, "alpha"), method="online")
        monkeypatch.undo()
        assert ledger_bytes(ledger) == before, f"{name} failing at call {step} left a change behind"
    assert iss.redeem(request_for(key, "alpha"), method="online").new


@pytest.mark.parametrize("name", ["fsync", "replace"])
def test_multi_file_changes_failing_at_every_step_change_nothing(env: tuple[Issuer, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    iss, ledger = env
    twin = make_issuer(tmp_path / "twin", FakeClock(), shard_width=iss.ledger.info.shard_width)
    twin_id = twin.create_license(PRODUCT).license_id
    create_steps = count_calls(monkeypatch, name, lambda: twin.create_license(PRODUCT))
    regen_steps = count_calls(monkeypatch, name, lambda: twin.regenerate(twin_id))
    license_id = iss.licenses()[0].license_id
    old_key = iss.licenses()[0].activation_key
    before = ledger_bytes(ledger)
    # The last fsync of a multi-file change only confirms the journal's removal,
    # after every file is in place: failing there is not a failed change.
    last_fsync_is_housekeeping = 1 if name == "fsync" else 0
    for step in range(1, create_steps + 1 - last_fsync_is_housekeeping):
        Faults(monkeypatch, name, step)
        with pytest.raises(LedgerWriteError):
            iss.create_license(PRODUCT)
        monkeypatch.undo()
        assert ledger_bytes(ledger) == before and not (ledger / JOURNAL_FILE).exists()
    for step in range(1, regen_steps + 1 - last_fsync_is_housekeeping):
        Faults(monkeypatch, name, step)
        with pytest.raises(LedgerWriteError):
            iss.regenerate(license_id)
        monkeypatch.undo()
        assert ledger_bytes(ledger) == before
    assert iss.show(license_id).activation_key == old_key  # the old key still opens the license
    assert len(iss.licenses()) == 1
    if last_fsync_is_housekeeping:
        Faults(monkeypatch, name, regen_steps)
    iss.regenerate(license_id)  # succeeds even when only the journal's removal is unconfirmed
    monkeypatch.undo()
    with pytest.raises(InvalidActivationKeyError):
        iss.redeem(request_for(old_key, "alpha"), method="online")


def test_when_the_undo_fails_too_the_journal_completes_the_change(env: tuple[Issuer, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    iss, ledger = env
    license_id = iss.licenses()[0].license_id
    # A regeneration writes the journal (2 fsyncs), then the license shard; its
    # folder fsync (the 4th) fails, and so does every fsync of the undo after it.
    Faults(monkeypatch, "fsync", fail_at=4, forever=True)
    with pytest.raises(LedgerWriteError, match="journal will complete the change"):
        iss.regenerate(license_id)
    monkeypatch.undo()
    assert (ledger / JOURNAL_FILE).exists()
    assert iss.show(license_id).record.generation == 2  # the next operation replayed the journal
    assert not (ledger / JOURNAL_FILE).exists()
    for view in iss.licenses():  # and every key is indexed to its license
        assert current_license(iss, view.record.key_hash).license_id == view.license_id


CHILD = textwrap.dedent(
    """
    import resource, signal, sys
    sys.path.insert(0, sys.argv[3])
    from support import request_for
    from issuer import Issuer
    from verifier import LicenseError
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # report EFBIG instead of dying
    limit = int(sys.argv[2])
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    iss = Issuer(sys.argv[1] + "/ledger", sys.argv[1] + "/keys")
    try:
        iss.redeem(request_for(iss.licenses()[0].activation_key, "alpha"), method="online")
    except LicenseError as err:
        print(err.code, err.message)
        sys.exit(1)
    print("redeemed")
    """
)


def test_file_too_large_during_a_write_changes_nothing(env: tuple[Issuer, Path], tmp_path: Path) -> None:
    iss, ledger = env
    before = ledger_bytes(ledger)
    largest = max(len(data) for data in before.values())
    tests_dir = str(Path(__file__).resolve().parents[2])
    proc = subprocess.run([sys.executable, "-c", CHILD, str(tmp_path), str(largest + 16), tests_dir],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert proc.stdout.startswith("ledger-write-failed") and "nothing was changed" in proc.stdout
    assert ledger_bytes(ledger) == before
    assert not [p for p in ledger.rglob("*.tmp")]
    assert iss.redeem(request_for(iss.licenses()[0].activation_key, "alpha"), method="online").new
