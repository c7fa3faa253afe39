"""The clock's high-water mark: a clock set back stops the panel; small skew does not."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from support import FakeClock, Provider

from verifier import ClockRollbackError, TokenState, TokenStore, VerifierConfig


def installed(provider: Provider, tmp_path: Path) -> tuple[TokenStore, str]:
    store = TokenStore(tmp_path / "licet.token")
    token = provider.token(days=60)
    store.save(token)
    return store, token


def test_rollback_beyond_the_tolerance_is_refused(provider: Provider, clock: FakeClock, tmp_path: Path) -> None:
    store, token = installed(provider, tmp_path)
    v = provider.verifier(store=store)
    clock.advance(days=10)
    v.verify(token)
    clock.advance(hours=-2)
    with pytest.raises(ClockRollbackError) as err:
        v.verify(token)
    assert err.value.code == "clock-rollback" and "clock" in err.value.message
    assert v.status(token).state == TokenState.CLOCK_ROLLBACK


def test_small_skew_is_tolerated(provider: Provider, clock: FakeClock, tmp_path: Path) -> None:
    store, token = installed(provider, tmp_path)
    v = provider.verifier(store=store)
    clock.advance(days=1)
    v.verify(token)
    clock.advance(minutes=-50)
    assert v.status(token).state == TokenState.VALID
    strict = provider.verifier(store=TokenStore(tmp_path / "other.token"),
                               config=VerifierConfig(clock_tolerance=dt.timedelta(minutes=10)))
    clock.advance(minutes=50)
    strict.verify(token)
    clock.advance(minutes=-20)
    assert strict.status(token).state == TokenState.CLOCK_ROLLBACK


def test_the_mark_survives_a_restart(provider: Provider, clock: FakeClock, tmp_path: Path) -> None:
    store, token = installed(provider, tmp_path)
    provider.verifier(store=store).verify(token)  # the first check records the mark
    assert store.load_mark() == int(clock.now.timestamp())
    clock.advance(days=5)
    provider.verifier(store=TokenStore(store.path)).verify(token)
    clock.advance(days=-3)
    restarted = provider.verifier(store=TokenStore(store.path))
    assert restarted.status(token).state == TokenState.CLOCK_ROLLBACK


def test_the_mark_is_written_at_most_every_interval(provider: Provider, clock: FakeClock, tmp_path: Path) -> None:
    store, token = installed(provider, tmp_path)
    v = provider.verifier(store=store)
    v.verify(token)
    first = store.load_mark()
    clock.advance(minutes=2)
    v.verify(token)
    assert store.load_mark() == first  # not yet: repeated checks stay cheap
    clock.advance(minutes=4)
    v.verify(token)
    assert store.load_mark() == int(clock.now.timestamp())


def test_a_token_signed_later_than_the_clock_raises_the_mark(provider: Provider, clock: FakeClock, tmp_path: Path) -> None:
    store = TokenStore(tmp_path / "licet.token")
    token = provider.token(days=60)  # signed at clock.now
    clock.advance(seconds=-30)  # the panel's clock is a little behind the provider's
    v = provider.verifier(store=store)
    v.verify(token)
    assert store.load_mark() == int((clock.now + dt.timedelta(seconds=30)).timestamp())


def test_an_unwritable_mark_file_still_runs_and_says_why(provider: Provider, clock: FakeClock, tmp_path: Path) -> None:
    store, token = installed(provider, tmp_path)
    store.mark_path.mkdir()  # the mark cannot be written, whoever runs the test
    v = provider.verifier(store=store)
    status = v.status(token)
    assert status.state == TokenState.VALID
    assert any("clock mark could not be saved" in note for note in status.notes)
    assert status.to_dict()["notes"] == list(status.notes)


def test_a_damaged_mark_file_counts_as_none(provider: Provider, clock: FakeClock, tmp_path: Path) -> None:
    store, token = installed(provider, tmp_path)
    store.mark_path.write_text("not a number")
    assert provider.verifier(store=store).status(token).state == TokenState.VALID
    assert store.load_mark() == int(clock.now.timestamp())


def test_configuration_bounds() -> None:
    with pytest.raises(Exception, match="clock_tolerance"):
        VerifierConfig(clock_tolerance=dt.timedelta(0))
    with pytest.raises(Exception, match="mark_interval"):
        VerifierConfig(mark_interval=dt.timedelta(hours=2))
