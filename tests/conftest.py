from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from support import FakeClock, Provider


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests marked ``slow`` first, each part in pytest-randomly's order.

    xdist hands tests out one at a time (groups first), so a 10-second test
    drawn last keeps one worker busy while the others have nothing left; drawn
    first, the short tests fill in around it. pytest-randomly shuffles before
    this hook runs (its wrapper), so the seed still fixes the whole order.
    """
    items[:] = sorted(items, key=lambda item: item.get_closest_marker("slow") is None)


@pytest.fixture(autouse=True)
def _end_to_end_commands(request: pytest.FixtureRequest) -> Iterator[None]:
    """A test marked ``e2e`` runs every console command through the installed script."""
    if request.node.get_closest_marker("e2e") is None:
        yield
        return
    from clirun import END_TO_END

    END_TO_END.set()
    try:
        yield
    finally:
        END_TO_END.clear()


@pytest.fixture(autouse=True)
def _times_to_the_second() -> Iterator[None]:
    """Every JSON output and API answer this test saw writes its times YYYY-MM-DDTHH:MM:SSZ."""
    import timecheck

    timecheck.drain()
    yield
    bad = [f"{source}: {v}" for source, doc in timecheck.drain() for v in timecheck.violations(doc)]
    assert not bad, "times not written YYYY-MM-DDTHH:MM:SSZ (README: to the second, Z, everywhere):\n" + "\n".join(bad[:20])


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


@pytest.fixture(scope="module")
def pg_database() -> Iterator[str]:
    """A fresh PostgreSQL database for this test module (skipped without a server, except on CI)."""
    from pgsupport import fresh_database

    with fresh_database() as url:
        yield url


@pytest.fixture
def pg_url(pg_database: str) -> Iterator[str]:
    """The module's database, without a ledger in it before and after the test."""
    from pgsupport import drop_ledger

    drop_ledger(pg_database)
    yield pg_database
    drop_ledger(pg_database)


@pytest.fixture(autouse=True)
def quick_retries(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """The panel's online calls retry as in production, only without the waits between tries.

    The waits are tests/integration/test_retries.py's subject (it keeps them);
    elsewhere — a refusal's round trip, a server that is down — they only add
    seconds. Calls made by a subprocess wait as in production.
    """
    if request.module.__name__.endswith("test_retries"):
        return
    import dataclasses

    from verifier import wire

    monkeypatch.setattr(wire, "RETRY", dataclasses.replace(wire.RETRY, sleep=lambda seconds: None))
