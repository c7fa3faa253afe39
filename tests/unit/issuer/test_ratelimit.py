"""The per-client token bucket for requests that cost work (the revocation list), on an injected clock."""

from __future__ import annotations

import pytest

from issuer.policy.ratelimit import RequestRate
from verifier.errors import BadInputError, RateLimitedError


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_client_gets_a_minutes_worth_at_once_then_the_rate() -> None:
    clock = Clock()
    rate = RequestRate(6, what="list requests", clock=clock)  # one every 10 s
    for _ in range(6):
        rate.take("203.0.113.7")
    with pytest.raises(RateLimitedError) as refused:
        rate.take("203.0.113.7")
    assert refused.value.retry_after == 10 and "try again in 10 s" in refused.value.message
    assert "list requests from 203.0.113.7" in refused.value.message
    rate.take("203.0.113.8")  # another client has its own bucket
    clock.now += 4
    with pytest.raises(RateLimitedError) as again:  # a refused request costs nothing, the wait shrinks
        rate.take("203.0.113.7")
    assert again.value.retry_after == 6
    clock.now += 6
    rate.take("203.0.113.7")
    with pytest.raises(RateLimitedError):
        rate.take("203.0.113.7")
    clock.now += 3600  # a quiet hour refills to a minute's worth, no more
    for _ in range(6):
        rate.take("203.0.113.7")
    with pytest.raises(RateLimitedError):
        rate.take("203.0.113.7")


def test_one_ipv6_network_shares_one_bucket() -> None:
    rate = RequestRate(2, what="list requests", clock=Clock(), ipv6_prefix=64)
    rate.take("2001:db8:1:2::1")
    rate.take("2001:db8:1:2::ffff")
    with pytest.raises(RateLimitedError):
        rate.take("2001:db8:1:2:aaaa::9")
    rate.take("2001:db8:1:3::1")  # the next /64 is another client


def test_the_buckets_kept_are_bounded_and_the_least_recent_go_first() -> None:
    clock = Clock()
    rate = RequestRate(1, what="list requests", clock=clock, max_clients=3)
    for host in (1, 2, 3):
        rate.take(f"198.51.100.{host}")
    with pytest.raises(RateLimitedError):
        rate.take("198.51.100.1")  # seen again: now the most recent
    rate.take("198.51.100.4")  # a fourth client pushes out the least recent (.2)
    rate.take("198.51.100.2")  # forgotten, so it starts afresh
    with pytest.raises(RateLimitedError):
        rate.take("198.51.100.1")  # still remembered


@pytest.mark.parametrize("per_minute", [0, -1, 100_001, 2.5, True])
def test_a_rate_out_of_bounds_is_refused(per_minute: object) -> None:
    with pytest.raises(BadInputError, match="request rate"):
        RequestRate(per_minute, what="list requests")  # type: ignore[arg-type]
