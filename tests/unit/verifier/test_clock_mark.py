"""The clock mark: a clock set back stops the panel, at once or a little at a time; small skew does not."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from support import T0, FakeBoot, FakeClock, Provider

from verifier import ClockRollbackError, TokenState, TokenStore, VerifierConfig
from verifier.clock import BootClock
from verifier.clock_mark import BOOT_RATE, SAVE_LAG, ClockMark, MarkKeeper

S = 1_800_000_000  # a stored mark (2027-01-15T08:00:00Z)
HOUR = 3600.0
COUNT = round(BOOT_RATE * 10 * HOUR)  # what ten hours of boot clock add to the mark


@pytest.fixture
def boot() -> FakeBoot:
    return FakeBoot()


def installed(provider: Provider, tmp_path: Path) -> tuple[TokenStore, str]:
    store = TokenStore(tmp_path / "licet.token")
    token = provider.token(days=60)
    store.save(token)
    return store, token


def running(clock: FakeClock, boot: FakeBoot, **delta: float) -> None:
    """Time passes on a machine whose clocks agree."""
    clock.advance(**delta)
    boot.advance(**delta)


# --- through the verifier and its store --------------------------------------------------------


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
    saved = store.load_mark()
    assert saved is not None and saved.seen == int(clock.now.timestamp())
    clock.advance(days=5)
    provider.verifier(store=TokenStore(store.path)).verify(token)
    clock.advance(days=-3)
    restarted = provider.verifier(store=TokenStore(store.path))
    assert restarted.status(token).state == TokenState.CLOCK_ROLLBACK


def test_a_clock_held_back_is_caught_across_restarts_within_one_boot(
    provider: Provider, clock: FakeClock, boot: FakeBoot, tmp_path: Path
) -> None:
    store, token = installed(provider, tmp_path)
    provider.verifier(store=store, boot_clock=boot.clock).verify(token)
    boot.advance(hours=3)  # the panel is stopped; three hours pass, the wall clock is held back
    clock.advance(minutes=30)
    restarted = provider.verifier(store=TokenStore(store.path), boot_clock=boot.clock)
    with pytest.raises(ClockRollbackError) as err:
        restarted.verify(token)
    assert err.value.seen is not None
    assert err.value.seen.timestamp() == pytest.approx(T0.timestamp() + BOOT_RATE * 3 * HOUR, abs=1)


def test_after_a_reboot_the_mark_counts_on_from_where_it_was_saved(
    provider: Provider, clock: FakeClock, boot: FakeBoot, tmp_path: Path
) -> None:
    store, token = installed(provider, tmp_path)
    running(clock, boot, days=1)
    provider.verifier(store=store, boot_clock=boot.clock).verify(token)
    boot.advance(hours=3)
    boot.reboot()  # how long the machine was off is unknown: the plain rule holds
    clock.advance(minutes=-59)
    after = provider.verifier(store=TokenStore(store.path), boot_clock=boot.clock)
    assert after.status(token).state == TokenState.VALID
    clock.advance(minutes=-2)
    assert after.status(token).state == TokenState.CLOCK_ROLLBACK
    saved = store.load_mark()
    assert saved is not None and saved.boot_id == boot.boot_id  # counted on in this boot from now


def test_the_store_is_written_only_when_the_mark_moved(
    provider: Provider, clock: FakeClock, boot: FakeBoot, tmp_path: Path
) -> None:
    store, token = installed(provider, tmp_path)
    v = provider.verifier(store=store, boot_clock=boot.clock)
    v.verify(token)
    first = store.mark_path.stat().st_mtime_ns, store.load_mark()
    for _ in range(30):  # clocks that agree: the saved mark counts on by itself
        running(clock, boot, minutes=6)
        v.verify(token)
    assert (store.mark_path.stat().st_mtime_ns, store.load_mark()) == first
    clock.advance(minutes=2)  # the wall clock stepped forward (a correction): now it moved
    v.verify(token)
    assert store.load_mark() == first[1]  # not before the mark has moved an interval on
    running(clock, boot, minutes=4)
    v.verify(token)
    saved = store.load_mark()
    assert saved is not None and saved.seen == int(clock.now.timestamp())


def test_a_token_signed_later_than_the_clock_raises_the_mark(provider: Provider, clock: FakeClock, tmp_path: Path) -> None:
    store = TokenStore(tmp_path / "licet.token")
    token = provider.token(days=60)  # signed at clock.now
    clock.advance(seconds=-30)  # the panel's clock is a little behind the provider's
    v = provider.verifier(store=store)
    v.verify(token)
    saved = store.load_mark()
    assert saved is not None and saved.seen == int((clock.now + dt.timedelta(seconds=30)).timestamp())


def test_a_mark_another_process_counted_further_is_taken_in(
    provider: Provider, clock: FakeClock, boot: FakeBoot, tmp_path: Path
) -> None:
    store, token = installed(provider, tmp_path)
    panel = provider.verifier(store=store, boot_clock=boot.clock)
    panel.verify(token)
    clock.advance(hours=5)  # a cron job ran while the clock was right ...
    provider.verifier(store=TokenStore(store.path), boot_clock=boot.clock).verify(token)
    clock.advance(hours=-5)  # ... and the clock was put back before the panel's next visit
    boot.advance(minutes=6)
    panel.verify(token)  # the panel had not seen that time; its visit takes the cron job's mark in
    with pytest.raises(ClockRollbackError):
        panel.verify(token)


def test_an_old_plain_number_mark_is_read_and_rewritten_with_the_boot(
    provider: Provider, clock: FakeClock, boot: FakeBoot, tmp_path: Path
) -> None:
    store, token = installed(provider, tmp_path)
    store.mark_path.write_text(f"{int(clock.now.timestamp()) + 2 * 3600}\n")  # as verifiers before wrote it
    v = provider.verifier(store=store, boot_clock=boot.clock)
    assert v.status(token).state == TokenState.CLOCK_ROLLBACK
    clock.advance(hours=2)
    assert v.status(token).state == TokenState.VALID
    assert store.load_mark() == ClockMark(int(clock.now.timestamp()), boot.boot_id, boot.seconds)


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
    saved = store.load_mark()
    assert saved is not None and saved.seen == int(clock.now.timestamp())


def test_configuration_bounds() -> None:
    with pytest.raises(Exception, match="clock_tolerance"):
        VerifierConfig(clock_tolerance=dt.timedelta(0))
    with pytest.raises(Exception, match="mark_interval"):
        VerifierConfig(mark_interval=dt.timedelta(hours=2))


def test_the_real_boot_clock_names_this_boot_and_counts_forward() -> None:
    from verifier.clock import system_boot_clock

    real = system_boot_clock()
    first = real.seconds()
    assert 0 <= first <= real.seconds()
    if Path("/proc/sys/kernel/random/boot_id").exists():
        assert real.boot_id == Path("/proc/sys/kernel/random/boot_id").read_text().strip()


# --- the arithmetic: one keeper, a stored mark, one check ---------------------------------------

# (stored mark, boot reading at the check, wall clock at the check) -> refused?, the mark after it.
# This boot is "b1"; the keeper reads the stored mark at reading 100, and every
# stored mark of "b1" was saved at reading 100 too.
CHECKS: dict[str, tuple[ClockMark | None, float, float, bool, float]] = {
    "no mark: any clock runs": (None, 100, 1000, False, 1000),
    "same boot, clocks agree": (ClockMark(S, "b1", 100), 100 + 10 * HOUR, S + 10 * HOUR, False, S + 10 * HOUR),
    "same boot, wall held back 10 hours": (
        ClockMark(S, "b1", 100), 100 + 10 * HOUR, S, True, S + BOOT_RATE * 10 * HOUR),
    "same boot, wall 58 minutes behind the count": (
        ClockMark(S, "b1", 100), 100 + 10 * HOUR, S + BOOT_RATE * 10 * HOUR - 58 * 60, False,
        S + BOOT_RATE * 10 * HOUR),
    "same boot, wall 61 minutes behind the count": (
        ClockMark(S, "b1", 100), 100 + 10 * HOUR, S + BOOT_RATE * 10 * HOUR - 61 * 60, True,
        S + BOOT_RATE * 10 * HOUR),
    "same boot, a clock 0.1 % fast stepped back is never refused": (
        ClockMark(S, "b1", 100), 100 + 1000 * HOUR, S + 1000 * HOUR * BOOT_RATE, False,
        S + 1000 * HOUR * BOOT_RATE),
    "another boot: the plain rule, 59 minutes back runs": (ClockMark(S, "b0", 100), 100, S - 59 * 60, False, S),
    "another boot: the plain rule, 61 minutes back stops": (ClockMark(S, "b0", 100), 100, S - 61 * 60, True, S),
    "another boot: counted on from when it was read": (
        ClockMark(S, "b0", 9), 100 + 10 * HOUR, S + 10 * HOUR - 2 * HOUR, True, S + COUNT),
    "a plain number from an older verifier: the plain rule": (ClockMark(S), 100, S - 61 * 60, True, S),
    "a reading later than now is not this boot's": (ClockMark(S, "b1", 9e6), 100, S - 59 * 60, False, S),
    "a wall clock ahead raises the mark": (ClockMark(S, "b1", 100), 100, S + 5 * HOUR, False, S + 5 * HOUR),
}


@pytest.mark.parametrize(("stored", "reading", "wall", "refused", "mark"), CHECKS.values(), ids=CHECKS.keys())
def test_one_check_against_a_stored_mark(
    stored: ClockMark | None, reading: float, wall: float, refused: bool, mark: float
) -> None:
    now = [100.0]
    keeper = MarkKeeper(BootClock("b1", lambda: now[0]), tolerance=HOUR)
    keeper.adopt(stored)
    now[0] = reading
    if refused:
        with pytest.raises(ClockRollbackError) as err:
            keeper.check(wall)
        assert err.value.seen is not None and err.value.seen.timestamp() == pytest.approx(mark)
    else:
        keeper.check(wall)
    assert keeper.mark == pytest.approx(mark)


def test_steps_back_add_up_against_one_tolerance() -> None:
    now = [0.0]
    keeper = MarkKeeper(BootClock("b1", lambda: now[0]), tolerance=HOUR)
    wall = float(S)
    keeper.check(wall)
    for step in range(1, 10):
        now[0] += HOUR  # an hour passes; the wall clock is set back 55 minutes of it
        wall += HOUR - 55 * 60
        if step == 2:  # 110 minutes behind: each step alone was under the tolerance
            with pytest.raises(ClockRollbackError):
                keeper.check(wall)
            return
        keeper.check(wall)
    pytest.fail("never refused")


# (stored mark, this process's boot id, seconds of wall-clock step forward) -> what is written.
SAVES: dict[str, tuple[ClockMark | None, str | None, float, ClockMark | None]] = {
    "nothing stored: written with this boot": (None, "b1", 0, ClockMark(S + COUNT, "b1", 36100)),
    "same boot, clocks agree: nothing to write": (ClockMark(S, "b1", 100), "b1", 0, None),
    "same boot, a step forward under the lag: nothing": (ClockMark(S, "b1", 100), "b1", 30, None),
    "same boot, a step forward of 2 minutes: written": (
        ClockMark(S, "b1", 100), "b1", 120, ClockMark(S + COUNT + 120, "b1", 36100)),
    "another boot's mark: rewritten for this one": (ClockMark(S, "b0", 7), "b1", 0, ClockMark(S + COUNT, "b1", 36100)),
    "an old plain number: rewritten with the boot": (ClockMark(S), "b1", 0, ClockMark(S + COUNT, "b1", 36100)),
    "no boot ids here: a plain time, rewritten as it moves": (ClockMark(S), None, 0, ClockMark(S + COUNT)),
    "no boot ids here, little moved: nothing": (ClockMark(S + COUNT - 30), None, 0, None),
}


@pytest.mark.parametrize(("stored", "boot_id", "step", "written"), SAVES.values(), ids=SAVES.keys())
def test_what_a_visit_writes(stored: ClockMark | None, boot_id: str | None, step: float, written: ClockMark | None) -> None:
    now = [100.0]
    keeper = MarkKeeper(BootClock(boot_id, lambda: now[0]), tolerance=HOUR)
    keeper.check(S)  # this process saw S at reading 100 ...
    now[0] += 10 * HOUR
    keeper.check(S + 10 * HOUR * BOOT_RATE + step)  # ... and ten hours on, with the step
    keeper.adopt(stored)
    pending = keeper.pending()
    if written is None:
        assert pending is None
        return
    assert pending == written
    keeper.saved(pending)
    assert keeper.pending() is None  # once written, not again until it moves by SAVE_LAG
    keeper.see(pending.seen + SAVE_LAG + 1)
    assert keeper.pending() is not None


# --- the file: damage of any kind counts as no mark ---------------------------------------------

READS: dict[str, tuple[str | None, ClockMark | None]] = {
    "absent": (None, None),
    "an old plain number": ("1800000000\n", ClockMark(S)),
    "this verifier's form": ('{"boot_id":"b1","boot_seconds":12.5,"seen":1800000000}', ClockMark(S, "b1", 12.5)),
    "seen alone (a system naming no boots)": ('{"seen":1800000000}', ClockMark(S)),
    "a whole-second reading": ('{"boot_id":"b1","boot_seconds":12,"seen":1800000000}', ClockMark(S, "b1", 12.0)),
}
DAMAGED: dict[str, str] = {
    "superscript two (a digit to Python, not a number)": "²",
    "superscript digits after ASCII ones": "180000000²",
    "arabic-indic digits": "١٨٠٠٠٠٠٠٠٠",
    "fullwidth digits": "\uff11\uff18" + "\uff10" * 8,
    "garbage": "not a number",
    "empty JSON object": "{}",
    "a list": "[1800000000]",
    "a string": '"1800000000"',
    "seen as a string": '{"seen":"1800000000"}',
    "seen as a float": '{"seen":1800000000.5}',
    "seen true": '{"seen":true}',
    "seen negative": '{"seen":-5}',
    "seen beyond year 9999": '{"seen":253402300800}',
    "a huge plain number": "9" * 40,
    "a huge JSON number": '{"seen":' + "9" * 4000 + "}",
    "a float overflowing to infinity": '{"boot_id":"b1","boot_seconds":1e999,"seen":1800000000}',
    "a negative reading": '{"boot_id":"b1","boot_seconds":-1,"seen":1800000000}',
    "a reading true": '{"boot_id":"b1","boot_seconds":true,"seen":1800000000}',
    "a boot id without its reading": '{"boot_id":"b1","seen":1800000000}',
    "a reading without its boot id": '{"boot_seconds":5,"seen":1800000000}',
    "a boot id with control characters": '{"boot_id":"b1\\u001b[2J","boot_seconds":5,"seen":1800000000}',
    "a boot id of another type": '{"boot_id":7,"boot_seconds":5,"seen":1800000000}',
    "an unknown member": '{"seen":1800000000,"extra":1}',
    "duplicate members": '{"seen":1,"seen":1800000000}',
    "NaN": '{"boot_id":"b1","boot_seconds":NaN,"seen":1800000000}',
    "truncated JSON": '{"boot_id":"b1","boot_se',
    "deep nesting": "[" * 3000 + "]" * 3000,
    "a negative plain number": "-1800000000",
}


@pytest.mark.parametrize(("text", "expected"), READS.values(), ids=READS.keys())
def test_a_stored_mark_is_read(text: str | None, expected: ClockMark | None) -> None:
    assert ClockMark.parse(text) == expected
    if expected is not None:
        assert ClockMark.parse(expected.to_text()) == expected  # and written back the same


@pytest.mark.parametrize("text", DAMAGED.values(), ids=DAMAGED.keys())
def test_a_damaged_mark_counts_as_none(text: str, tmp_path: Path) -> None:
    assert ClockMark.parse(text) is None
    store = TokenStore(tmp_path / "licet.token")
    store.mark_path.write_text(text)
    assert store.load_mark() is None

