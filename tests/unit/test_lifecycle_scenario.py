"""Two years of one license, as a customer who regenerates monthly would run it.

Each month the key is regenerated and a new server activated; every panel
renews when it is in its grace window, as the start-up flow and cron do. At
the end of every day the servers whose token is valid or in grace are
counted. Leases bound the count to two (the current server and the one just
superseded, which stops within one lease); the revocation list, applied
everywhere, bounds it to one. With ``lease_days=0`` (the provider's explicit
choice for customers who can never renew) only the revocation list stops
superseded servers.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pytest
from support import PRODUCT, T0, FakeClock, make_issuer, panel_verifier, renewal_for, request_for

from issuer.policy import add_months
from verifier import LicenseError, TokenState, Verifier

DAYS = 731  # 2026-01-15 to 2028-01-15 inclusive: 24 monthly regenerations


@dataclass
class Server:
    name: str
    verifier: Verifier
    token: str
    superseded_on: int | None = None
    last_running_day: int = 0
    renewals: int = 0


@dataclass
class Outcome:
    counts: list[int] = field(default_factory=list)
    servers: list[Server] = field(default_factory=list)


def simulate(tmp_path: Path, *, lease_days: int, lists: bool, renew_daily: bool = False, days: int = DAYS) -> Outcome:
    clock = FakeClock(T0)
    iss = make_issuer(tmp_path, clock, lease_days=lease_days)
    license_id = iss.create_license(PRODUCT, days=days + 60).license_id
    out = Outcome()

    def activate_new(day: int) -> None:
        name = f"s{len(out.servers)}"
        key = iss.show(license_id).activation_key
        token = iss.redeem(request_for(key, name, clock=clock), method="air-gapped").token
        out.servers.append(Server(name, panel_verifier(iss, name, clock), token, last_running_day=day))

    activate_new(0)
    regenerations = 1
    applied = ""
    for day in range(days):
        if clock.now >= add_months(T0, regenerations):
            iss.regenerate(license_id)
            out.servers[-1].superseded_on = day
            regenerations += 1
            activate_new(day)
        if lists and (listing := iss.revocation_list()) != applied:
            for server in out.servers:  # every panel fetches the latest list
                server.verifier.apply_revocations(listing)
            applied = listing
        running = 0
        for server in out.servers:
            state = server.verifier.status(server.token).state
            if state == TokenState.GRACE or (renew_daily and state == TokenState.VALID):
                try:
                    server.token = iss.renew(renewal_for(server.token, server.name, clock=clock))
                    server.renewals += 1
                except LicenseError:
                    pass  # superseded: the panel keeps running to the end of its lease
            if server.verifier.status(server.token).valid:
                running += 1
                server.last_running_day = day
        out.counts.append(running)
        clock.advance(days=1)
    if days == DAYS:
        assert regenerations == 25  # 24 regenerations in 24 months
    return out


@pytest.mark.slow
def test_leases_keep_at_most_two_servers_and_stop_the_superseded_one_within_a_lease(tmp_path: Path) -> None:
    out = simulate(tmp_path, lease_days=30, lists=False)
    assert max(out.counts) == 2
    assert min(out.counts) == 1
    for server in out.servers[:-1]:
        assert server.superseded_on is not None
        assert server.last_running_day - server.superseded_on <= 30, server
    assert out.servers[0].renewals >= 1  # the current server renews its lease, month after month
    assert out.servers[-1].verifier.status(out.servers[-1].token).valid


@pytest.mark.slow
def test_renewing_every_day_never_keeps_a_third_server_running(tmp_path: Path) -> None:
    # The greedy customer: every panel forces a renewal daily, so each superseded
    # server holds the longest lease it could get, renewed the day before its
    # regeneration — also before a 28-day February. Every superseded server keeps
    # trying every day, so the cost grows with the square of the days: one year
    # (twelve regenerations, one February) shows it.
    out = simulate(tmp_path, lease_days=30, lists=False, renew_daily=True, days=366)
    assert len(out.servers) == 13
    assert max(out.counts) == 2
    for server in out.servers[:-1]:
        assert server.last_running_day - server.superseded_on <= 30, server  # type: ignore[operator]


@pytest.mark.slow
def test_with_the_latest_list_everywhere_only_one_server_runs(tmp_path: Path) -> None:
    out = simulate(tmp_path, lease_days=30, lists=True)
    assert out.counts == [1] * DAYS
    for server in out.servers[:-1]:
        assert server.last_running_day < server.superseded_on  # type: ignore[operator]


@pytest.mark.slow
def test_without_leases_only_the_list_stops_superseded_servers(tmp_path: Path) -> None:
    # lease_days=0 is the provider's explicit choice: tokens last until the license expires.
    unleased = simulate(tmp_path / "a", lease_days=0, lists=False)
    assert unleased.counts[-1] == len(unleased.servers) == 25
    with_lists = simulate(tmp_path / "b", lease_days=0, lists=True)
    assert with_lists.counts == [1] * DAYS
