"""The issuer's tests run on every ledger backend: TinyDB with the default shard
layout and a tiny one (16 shards per kind), and PostgreSQL."""

from __future__ import annotations

from pathlib import Path

import pytest
from pgsupport import LedgerSite
from support import FakeClock, make_issuer

from issuer.ledger import DEFAULT_SHARD_WIDTH


@pytest.fixture(params=[DEFAULT_SHARD_WIDTH, 1], ids=["4096-shards", "16-shards"])
def shard_width(request: pytest.FixtureRequest) -> int:
    return int(request.param)


@pytest.fixture(params=["tinydb-4096-shards", "tinydb-16-shards", "postgres"])
def site(request: pytest.FixtureRequest, tmp_path: Path) -> LedgerSite:
    if request.param == "postgres":
        return LedgerSite("postgres", request.getfixturevalue("pg_url"))
    width = DEFAULT_SHARD_WIDTH if request.param == "tinydb-4096-shards" else 1
    return LedgerSite("tinydb", str(tmp_path / "ledger"), shard_width=width)


@pytest.fixture
def iss(tmp_path: Path, clock: FakeClock, site: LedgerSite):  # type: ignore[no-untyped-def]
    return make_issuer(tmp_path, clock, ledger=site.url, shard_width=site.shard_width)
