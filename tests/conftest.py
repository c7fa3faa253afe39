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
