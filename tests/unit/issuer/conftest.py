"""The issuer's tests run on the default shard layout and on a tiny one (16 shards per kind)."""

from __future__ import annotations

from pathlib import Path

import pytest
from support import FakeClock, make_issuer

from issuer.ledger import DEFAULT_SHARD_WIDTH


@pytest.fixture(params=[DEFAULT_SHARD_WIDTH, 1], ids=["4096-shards", "16-shards"])
def shard_width(request: pytest.FixtureRequest) -> int:
    return int(request.param)


@pytest.fixture
def iss(tmp_path: Path, clock: FakeClock, shard_width: int):  # type: ignore[no-untyped-def]
    return make_issuer(tmp_path, clock, shard_width=shard_width)
