from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from verifier import TokenStore, TokenStoreError


def test_save_load_delete(tmp_path: Path) -> None:
    store = TokenStore(tmp_path / "panel.token")
    assert store.load() is None
    store.save("a.b.c")
    assert store.load() == "a.b.c"
    assert stat.S_IMODE(os.stat(store.path).st_mode) == 0o600
    store.save("d.e.f")
    assert store.load() == "d.e.f"
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
    store.delete()
    store.delete()
    assert store.load() is None


def test_missing_folder_is_a_store_error(tmp_path: Path) -> None:
    with pytest.raises(TokenStoreError, match="cannot write"):
        TokenStore(tmp_path / "nope" / "panel.token").save("a.b.c")


def test_non_ascii_token_is_refused(tmp_path: Path) -> None:
    with pytest.raises(TokenStoreError, match="ASCII"):
        TokenStore(tmp_path / "t").save("tökén")


def test_huge_file_is_read_cut_short(tmp_path: Path) -> None:
    path = tmp_path / "t"
    path.write_bytes(b"x" * (1 << 20))
    assert len(TokenStore(path).load() or "") <= 64 * 1024 + 1
