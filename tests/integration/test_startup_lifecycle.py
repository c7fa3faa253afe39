"""The start-up flow with leases: renewal in grace, the daily revocation list, a clock set back."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from clirun import cli, provider_home
from servers import LicenseServer, free_port
from support import PRODUCT, FakeClock, code_for

from verifier import (
    ActivationRequiredError,
    ClockRollbackError,
    TokenState,
    TokenStore,
    TrustedKeys,
    Verifier,
)
from verifier.client import startup
from verifier.clock import utc_now


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return provider_home(tmp_path_factory.mktemp("provider"))


@pytest.fixture(scope="module")
def server(home: Path) -> Iterator[LicenseServer]:
    srv = LicenseServer(home)
    yield srv
    srv.stop()


def installed(home: Path, tmp_path: Path, machine: str, *extra: str) -> tuple[dict, TokenStore]:  # type: ignore[type-arg]
    lic = json.loads(cli("issuer", "license", "create", "--product", PRODUCT, "--json", *extra, cwd=home).stdout)
    token = cli("issuer", "activate", code_for(lic["activation_key"], machine), cwd=home).stdout.strip()
    store = TokenStore(tmp_path / f"{machine}.token")
    store.save(token)
    return lic, store


def panel(home: Path, machine: str, store: TokenStore, clock: Any = utc_now) -> Verifier:
    keys = TrustedKeys.from_file(home / "keys" / "trusted_keys.json")
    return Verifier(PRODUCT, keys, machine_id=f"machine-{machine}", store=store, clock=clock)


def boot(v: Verifier, store: TokenStore, url: str) -> Any:
    return startup(v, store, server_url=url, callback_port=free_port(), listen="127.0.0.1")


def history(home: Path, license_id: str) -> list[str]:
    shown = json.loads(cli("issuer", "license", "show", license_id, "--json", cwd=home).stdout)
    return [event["action"] for event in shown["history"]]


def test_in_grace_the_panel_renews_at_start_up(home: Path, server: LicenseServer, tmp_path: Path) -> None:
    lic, store = installed(home, tmp_path, "graceful", "--lease-days", "1")  # in grace from the start
    v = panel(home, "graceful", store)
    assert v.status(store.load()).state == TokenState.GRACE
    started = boot(v, store, server.url)
    assert started.license_id == lic["license_id"]
    assert history(home, lic["license_id"])[-1] == "renewed"
    assert v.revocations is not None  # fetched on the way, none held before


def test_in_grace_with_the_server_down_the_panel_still_runs(home: Path, tmp_path: Path) -> None:
    lic, store = installed(home, tmp_path, "offline-grace", "--lease-days", "1")
    v = panel(home, "offline-grace", store)
    started = boot(v, store, f"http://127.0.0.1:{free_port()}")
    assert started.license_id == lic["license_id"]
    status = v.status(store.load())
    assert status.state == TokenState.GRACE and status.days_left == 0


def test_the_list_fetched_at_start_up_stops_a_superseded_server(home: Path, server: LicenseServer, tmp_path: Path) -> None:
    lic, store = installed(home, tmp_path, "old-box")
    cli("issuer", "license", "regenerate", lic["license_id"], cwd=home)
    v = panel(home, "old-box", store)
    with pytest.raises(ActivationRequiredError):
        boot(v, store, server.url)
    assert v.status(store.load()).state == TokenState.SUPERSEDED
    # Kept beside the token: offline, the next start refuses too.
    again = panel(home, "old-box", TokenStore(store.path))
    assert again.status(store.load()).state == TokenState.SUPERSEDED


def test_the_list_is_fetched_again_once_a_day_old(home: Path, server: LicenseServer, tmp_path: Path) -> None:
    lic, store = installed(home, tmp_path, "daily")
    clock = FakeClock(utc_now())
    v = panel(home, "daily", store, clock)
    boot(v, store, server.url)
    first = v.revocations
    assert first is not None
    other, _ = installed(home, tmp_path, "elsewhere")
    cli("issuer", "license", "revoke", other["license_id"], cwd=home)
    boot(v, store, server.url)
    assert v.revocations is first  # fetched less than a day ago: not asked again
    clock.advance(hours=25)
    boot(v, store, server.url)
    assert v.revocations is not None and v.revocations.serial > first.serial
    assert lic["license_id"] not in v.revocations.licenses


def test_a_clock_set_back_stops_the_panel_at_start_up(home: Path, server: LicenseServer, tmp_path: Path) -> None:
    _, store = installed(home, tmp_path, "timewarp")
    clock = FakeClock(utc_now() + dt.timedelta(days=2))
    panel(home, "timewarp", store, clock).verify(store.load())  # the store saw this time
    clock.advance(days=-1)
    with pytest.raises(ClockRollbackError):
        boot(panel(home, "timewarp", TokenStore(store.path), clock), store, server.url)
