from __future__ import annotations

import datetime as dt

import pytest
from support import FakeClock, request_for

from issuer.policy import add_months
from verifier import RegenerationTooSoonError

UTC = dt.UTC


@pytest.mark.parametrize(
    ("start", "expected"),
    [
        ((2027, 1, 15), (2027, 2, 15)),
        ((2027, 1, 31), (2027, 2, 28)),
        ((2028, 1, 31), (2028, 2, 29)),
        ((2027, 3, 31), (2027, 4, 30)),
        ((2027, 12, 31), (2028, 1, 31)),
        ((2027, 2, 28), (2027, 3, 28)),
    ],
)
def test_add_one_calendar_month(start: tuple[int, int, int], expected: tuple[int, int, int]) -> None:
    moment = dt.datetime(*start, 10, 30, tzinfo=UTC)
    assert add_months(moment, 1) == dt.datetime(*expected, 10, 30, tzinfo=UTC)


def test_first_regeneration_is_allowed_at_once(iss, clock: FakeClock) -> None:  # type: ignore[no-untyped-def]
    created = iss.create_license("ispmanager")
    assert created.next_regeneration == clock.now
    assert iss.regenerate(created.license_id).record.generation == 2


@pytest.mark.parametrize(
    ("first", "allowed"),
    [
        # Allowed from the start (UTC) of the day one calendar month later: the day named in messages.
        (dt.datetime(2027, 1, 15, 9, 0, tzinfo=UTC), dt.datetime(2027, 2, 15, 0, 0, tzinfo=UTC)),
        (dt.datetime(2027, 1, 31, 23, 59, tzinfo=UTC), dt.datetime(2027, 2, 28, 0, 0, tzinfo=UTC)),
        (dt.datetime(2028, 1, 31, 9, 0, tzinfo=UTC), dt.datetime(2028, 2, 29, 0, 0, tzinfo=UTC)),
    ],
)
def test_regeneration_boundary(iss, clock: FakeClock, first: dt.datetime, allowed: dt.datetime) -> None:  # type: ignore[no-untyped-def]
    clock.now = first - dt.timedelta(days=1)
    lid = iss.create_license("ispmanager").license_id
    clock.now = first
    iss.regenerate(lid)
    clock.now = allowed - dt.timedelta(seconds=1)
    with pytest.raises(RegenerationTooSoonError) as refused:
        iss.regenerate(lid)
    assert refused.value.allowed_from == allowed
    assert allowed.date().isoformat() in str(refused.value)
    assert iss.show(lid).next_regeneration == allowed
    clock.now = allowed
    assert iss.regenerate(lid).record.generation == 3


def test_already_activated_names_the_regeneration_date(iss, clock: FakeClock) -> None:  # type: ignore[no-untyped-def]
    from verifier import AlreadyActivatedError

    created = iss.create_license("ispmanager")
    iss.regenerate(created.license_id)
    key = iss.show(created.license_id).activation_key
    iss.redeem(request_for(key, "alpha"), method="air-gapped")
    clock.advance(days=3)
    with pytest.raises(AlreadyActivatedError) as refused:
        iss.redeem(request_for(key, "beta"), method="air-gapped")
    assert refused.value.regenerate_after == (created.record.created_at + dt.timedelta(days=31)).date()
    assert "possible from 2026-02-15" in str(refused.value)


def test_next_regeneration_stays_put_while_allowed(iss, clock: FakeClock) -> None:  # type: ignore[no-untyped-def]
    """It is the instant regeneration became allowed, not the clock: the creation, then a fixed day."""
    created = iss.create_license("ispmanager")
    clock.advance(days=3)
    shown = iss.show(created.license_id)
    assert shown.next_regeneration == created.record.created_at and shown.regeneration_allowed
    iss.regenerate(created.license_id)
    allowed = iss.show(created.license_id).next_regeneration
    assert not iss.show(created.license_id).regeneration_allowed
    clock.now = allowed + dt.timedelta(days=5)
    later = iss.show(created.license_id)
    assert later.next_regeneration == allowed and later.regeneration_allowed
    assert later.to_dict()["next_regeneration"] == allowed.strftime("%Y-%m-%dT%H:%M:%SZ")


@pytest.mark.parametrize(
    ("now", "lease", "effective"),
    [
        (dt.datetime(2027, 1, 5, 17, 0, tzinfo=UTC), 90, 30),  # capped at Feb 5, 00:00
        (dt.datetime(2027, 1, 31, 9, 0, tzinfo=UTC), 30, 27),  # Feb 28, 00:00: a short month
        (dt.datetime(2027, 3, 5, 9, 0, tzinfo=UTC), 14, 14),  # the lease itself
        (dt.datetime(2027, 3, 5, 9, 0, tzinfo=UTC), 0, 0),  # no lease
    ],
)
def test_effective_lease_is_what_a_token_issued_now_gets(now: dt.datetime, lease: int, effective: int) -> None:
    from issuer.policy import effective_lease_days

    assert effective_lease_days(lease, now, 1) == effective
