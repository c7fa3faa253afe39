from __future__ import annotations

from pathlib import Path

import pytest
from support import FakeClock, Provider


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def provider(tmp_path: Path, clock: FakeClock) -> Provider:
    return Provider(tmp_path / "keys", clock)


@pytest.fixture
def iss(tmp_path: Path, clock: FakeClock):  # type: ignore[no-untyped-def]
    from support import make_issuer

    return make_issuer(tmp_path, clock)
