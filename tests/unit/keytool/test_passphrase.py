from __future__ import annotations

from pathlib import Path

import pytest

from keytool import PassphraseError, read_passphrase


def test_file_wins_and_one_newline_is_dropped(tmp_path: Path) -> None:
    f = tmp_path / "pass"
    f.write_bytes(b"from the file\n")
    assert read_passphrase(f, {"LICET_KEY_PASSPHRASE": "env"}) == b"from the file"


def test_environment_sources(tmp_path: Path) -> None:
    f = tmp_path / "pass"
    f.write_bytes(b"file via env")
    assert read_passphrase(None, {"LICET_KEY_PASSPHRASE_FILE": str(f)}) == b"file via env"
    assert read_passphrase(None, {"LICET_KEY_PASSPHRASE": "plain env"}) == b"plain env"
    assert read_passphrase(None, {}) is None


def test_empty_or_missing_file_is_refused(tmp_path: Path) -> None:
    f = tmp_path / "pass"
    f.write_bytes(b"\n")
    with pytest.raises(PassphraseError, match="empty"):
        read_passphrase(f, {})
    with pytest.raises(PassphraseError, match="cannot read"):
        read_passphrase(tmp_path / "nope", {})
