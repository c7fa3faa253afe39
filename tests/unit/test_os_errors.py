"""A failing file system in words: disk full, permission denied, read-only, a vanished folder.

Each operation that writes — the panel's token store, keytool, the issuer's
ledger and secret, and the replay of an interrupted ledger change — meets each
fault. The refusal is one line that names the user's own file or folder and
says what happened, never a temporary file's name; nothing is left half-changed.

Faults are injected where the operating system reports them: ``os.write``
fails with ENOSPC, opening a file for writing fails with EACCES or EROFS
(carrying the temporary file's name, as the kernel would), and a vanished
folder is really removed.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from support import PRODUCT, FakeClock, ledger_bytes, make_issuer

from issuer import Issuer
from issuer.ledger.shards import JOURNAL_FILE
from issuer.licensing.minting import KeySecret
from keytool import Keyring
from verifier import LicenseError, TokenStore

WORDS = {
    errno.ENOSPC: "the disk is full",
    errno.EACCES: "permission denied",
    errno.EROFS: "the file system is read-only",
    errno.ENOENT: "",  # each operation says it its own way, checked per case
}
LOCK_FILES = {"ledger.lock", ".keyring.lock"}


def inject(monkeypatch: pytest.MonkeyPatch, code: int) -> None:
    """Make the file system fail the way ``code`` says (ENOENT is done for real by the case)."""
    if code == errno.ENOENT:
        return
    if code == errno.ENOSPC:

        def full(fd: int, data: object) -> int:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

        monkeypatch.setattr(os, "write", full)
        return
    real_open = os.open

    def refusing(path: object, flags: int, *args: object, **kwargs: object) -> int:
        # Writes are refused; reading (and taking the lock, which exists already) still works.
        if flags & os.O_CREAT and os.path.basename(os.fspath(path)) not in LOCK_FILES:  # type: ignore[arg-type]
            raise OSError(code, os.strerror(code), os.fspath(path))  # type: ignore[arg-type]
        return real_open(path, flags, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "open", refusing)


@dataclass
class Case:
    """One writing operation: set it up, break the disk, run it, then check what the user sees."""

    name: str
    setup: Callable[[Path, FakeClock], Callable[[], object]]  # returns the action
    names: Callable[[Path], Path]  # the user's file or folder the message must name
    vanish: Callable[[Path], Path]  # the folder that disappears for ENOENT
    vanished_words: str
    unchanged: Callable[[Path], object]  # a snapshot that must be the same after the refusal
    faults: tuple[int, ...] = tuple(WORDS)


def _store(tmp: Path, clock: FakeClock) -> Callable[[], object]:
    (tmp / "panel").mkdir()
    store = TokenStore(tmp / "panel" / "licet.token")
    store.save("old.token.value")
    return lambda: store.save("new.token.value")


def _keyring_rotate(tmp: Path, clock: FakeClock) -> Callable[[], object]:
    ring = Keyring(tmp / "keys", clock=clock)
    ring.new()
    return ring.rotate


def _keyring_export(tmp: Path, clock: FakeClock) -> Callable[[], object]:
    ring = Keyring(tmp / "keys", clock=clock)
    ring.new()
    (tmp / "panel").mkdir()
    return lambda: ring.export(tmp / "panel" / "trusted_keys.json")


def _secret(tmp: Path, clock: FakeClock) -> Callable[[], object]:
    (tmp / "keys").mkdir()
    return lambda: KeySecret.create_or_load(tmp / "keys")


def _issuer_init(tmp: Path, clock: FakeClock) -> Callable[[], object]:
    Keyring(tmp / "keys", clock=clock).new()
    KeySecret.create_or_load(tmp / "keys")  # so the fault meets the ledger's own files
    (tmp / "srv").mkdir()
    return lambda: Issuer.init(tmp / "srv" / "ledger", tmp / "keys", name="acme", clock=clock)


def _ledger_write(tmp: Path, clock: FakeClock) -> Callable[[], object]:
    iss = make_issuer(tmp, clock)
    iss.create_license(PRODUCT)
    return lambda: iss.create_license(PRODUCT)


def _journal_replay(tmp: Path, clock: FakeClock) -> Callable[[], object]:
    iss = make_issuer(tmp, clock)
    ledger = tmp / "ledger"
    before = ledger_bytes(ledger)
    created = iss.create_license(PRODUCT)
    changed = {rel: data for rel, data in ledger_bytes(ledger).items() if before.get(rel) != data}
    for rel in changed:  # as if the process died right after writing its journal
        (ledger / rel).unlink()
    (ledger / JOURNAL_FILE).write_text(json.dumps({"files": {rel: data.decode() for rel, data in changed.items()}}))
    return lambda: iss.show(created.license_id)


def _files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


CASES = [
    Case("token store", _store, lambda t: t / "panel" / "licet.token", lambda t: t / "panel", "its folder does not exist", lambda t: _files(t)),
    Case("keytool rotate", _keyring_rotate, lambda t: t / "keys", lambda t: t / "keys", "no keyring in", lambda t: _files(t)),
    Case("keytool export", _keyring_export, lambda t: t / "panel" / "trusted_keys.json", lambda t: t / "panel", "its folder does not exist", lambda t: _files(t)),
    Case("activation-key secret", _secret, lambda t: t / "keys" / "activation-keys.secret", lambda t: t, "", lambda t: _files(t), faults=(errno.ENOSPC, errno.EACCES, errno.EROFS)),
    # init makes its folders, so a vanished one is no fault there
    Case("issuer init", _issuer_init, lambda t: t / "srv", lambda t: t / "srv", "", lambda t: _files(t), faults=(errno.ENOSPC, errno.EACCES, errno.EROFS)),
    Case("ledger write", _ledger_write, lambda t: t / "ledger", lambda t: t / "ledger", "is gone", lambda t: _files(t)),
    # A replay may stop part-way: it is idempotent, and the journal stays for the next try.
    Case("journal replay", _journal_replay, lambda t: t / "ledger", lambda t: t / "ledger" / "licenses", "its folder does not exist", lambda t: (t / "ledger" / JOURNAL_FILE).read_bytes()),
]


@pytest.mark.parametrize(
    ("case", "code"),
    [pytest.param(case, code, id=f"{case.name}-{errno.errorcode[code]}") for case in CASES for code in case.faults],
)
def test_os_errors_are_one_line_naming_the_users_file(
    tmp_path: Path, clock: FakeClock, monkeypatch: pytest.MonkeyPatch, case: Case, code: int
) -> None:
    action = case.setup(tmp_path, clock)
    if code == errno.ENOENT:
        shutil.rmtree(case.vanish(tmp_path))
    before = case.unchanged(tmp_path)
    inject(monkeypatch, code)
    with pytest.raises(LicenseError) as refused:
        action()
    monkeypatch.undo()
    message = refused.value.message
    assert "\n" not in message
    assert str(case.names(tmp_path)) in message, message
    assert (WORDS[code] or case.vanished_words) in message, message
    assert ".tmp" not in message and "tmp" not in message.replace(str(tmp_path), ""), message
    assert case.unchanged(tmp_path) == before, "a refused write changed files"


def test_the_replay_completes_once_the_disk_has_room(tmp_path: Path, clock: FakeClock, monkeypatch: pytest.MonkeyPatch) -> None:
    show = _journal_replay(tmp_path, clock)
    inject(monkeypatch, errno.ENOSPC)
    with pytest.raises(LicenseError, match=r"interrupted change .* the disk is full"):
        show()
    monkeypatch.undo()
    assert (tmp_path / "ledger" / JOURNAL_FILE).exists()  # kept for the next try
    assert show().license_id.startswith("LIC-")
    assert not (tmp_path / "ledger" / JOURNAL_FILE).exists()


def test_a_refused_rotation_leaves_no_stray_private_key(tmp_path: Path, clock: FakeClock, monkeypatch: pytest.MonkeyPatch) -> None:
    ring = Keyring(tmp_path, clock=clock)
    first = ring.new()
    real_replace = os.replace

    def keyring_write_fails(src: object, dst: object) -> None:
        if os.path.basename(os.fspath(dst)) == "keyring.json":  # type: ignore[arg-type]
            raise OSError(errno.EROFS, os.strerror(errno.EROFS), os.fspath(src))  # type: ignore[arg-type]
        real_replace(src, dst)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "replace", keyring_write_fails)
    with pytest.raises(LicenseError, match="read-only; the keyring is unchanged"):
        ring.rotate()
    monkeypatch.undo()
    assert sorted(p.name for p in tmp_path.glob("*.pem")) == [f"{first.kid}.pem"]
    assert [r.kid for r in ring.records()] == [first.kid]
