"""Dates say what people mean: last days, times to the second, the lease and the license apart.

Through the real console scripts (in-process ``main(argv)``) and a real
``issuer console`` for the admin API and the pages.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import timecheck
from clirun import cli, provider_home
from consoles import ConsoleServer, api, make_token

PRODUCT = "ispmanager"
UTC_SECOND = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z")
LAST_DAY = (dt.datetime.now(dt.UTC).date() + dt.timedelta(days=300)).isoformat()


def _json(home: Path, *args: str) -> Any:
    return json.loads(cli("issuer", *args, "--json", cwd=home).stdout)


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return provider_home(tmp_path)


def _create(home: Path, *args: str) -> dict[str, Any]:
    return _json(home, "license", "create", "--product", PRODUCT, *args)  # type: ignore[no-any-return]


def test_last_day_beside_the_instant_in_show_and_list(home: Path) -> None:
    lic = _create(home, "--expires", LAST_DAY)
    midnight_after = (dt.date.fromisoformat(LAST_DAY) + dt.timedelta(days=1)).isoformat() + "T00:00:00Z"
    assert lic["expires_at"] == midnight_after and lic["last_day"] == LAST_DAY
    forever = _create(home)
    assert forever["expires_at"] is None and forever["last_day"] is None

    shown = cli("issuer", "license", "show", lic["license_id"], cwd=home).stdout
    assert f"last day {LAST_DAY}" in shown and midnight_after not in shown
    rows = {r["license_id"]: r for r in _json(home, "license", "list")}
    assert rows[lic["license_id"]]["last_day"] == LAST_DAY
    assert rows[lic["license_id"]]["expires_at"] == midnight_after
    assert rows[forever["license_id"]]["last_day"] is None
    listed = cli("issuer", "license", "list", cwd=home).stdout
    assert "LAST DAY" in listed.splitlines()[0] and "EXPIRES" not in listed
    assert f"{LAST_DAY}  " in listed and midnight_after[:10] not in listed


def test_history_prints_json_values_and_times_to_the_second(home: Path) -> None:
    lic = _create(home, "--feature", "dns")
    cli("issuer", "license", "set", lic["license_id"], "--feature", "mail", "--limit", "domains=100",
        "--customer", "Acme", cwd=home)
    text = cli("issuer", "license", "history", lic["license_id"], cwd=home).stdout
    assert 'features: ["dns"] -> ["mail"]' in text
    assert 'limits: {} -> {"domains": 100}' in text and 'customer: null -> "Acme"' in text
    assert "None" not in text and "['" not in text and "+00:00" not in text
    for line in text.splitlines():
        assert UTC_SECOND.fullmatch(line.split()[0]), line
    history = _json(home, "license", "history", lic["license_id"])
    assert all(UTC_SECOND.fullmatch(e["at"]) for e in history)

    shown = cli("issuer", "license", "show", lic["license_id"], cwd=home).stdout
    assert "+00:00" not in shown


def test_admin_lists_write_times_to_the_second(home: Path) -> None:
    cli("issuer", "admin", "user", "add", "alice", cwd=home, input="correct horse battery staple\n")
    make_token(home, "billing", "read")
    users = _json(home, "admin", "user", "list")
    tokens = _json(home, "admin", "token", "list")
    assert UTC_SECOND.fullmatch(users[0]["created_at"]) and UTC_SECOND.fullmatch(tokens[0]["created_at"])
    for kind in ("user", "token"):
        text = cli("issuer", "admin", kind, "list", cwd=home).stdout
        assert UTC_SECOND.search(text) and "+00:00" not in text, text


def test_long_lease_says_what_tokens_really_get(home: Path) -> None:
    lic = _create(home, "--lease-days", "90")
    assert lic["lease_days"] == 90 and 27 <= lic["lease_days_effective"] <= 31
    assert "regeneration" in lic["lease_days_reason"]
    shown = cli("issuer", "license", "show", lic["license_id"], cwd=home).stdout
    assert f"tokens last {lic['lease_days_effective']} days: a token never outlives" in shown
    short = _create(home, "--lease-days", "7")
    assert short["lease_days_effective"] == 7 and short["lease_days_reason"] is None
    assert "tokens last" not in cli("issuer", "license", "show", short["license_id"], cwd=home).stdout
    for command in ("create", "set"):
        out = cli("issuer", "license", command, "--help", cwd=home).stdout
        helped = " ".join(out.replace("│", " ").split())
        assert "never outlives the next possible key regeneration" in helped, command


def test_regeneration_now_or_from_a_fixed_instant(home: Path) -> None:
    lic = _create(home)
    assert lic["regeneration_allowed"] is True
    # Never regenerated: allowed since the license was made; the instant does not follow the clock.
    assert lic["next_regeneration"] == lic["created_at"]
    shown = cli("issuer", "license", "show", lic["license_id"], cwd=home).stdout
    assert "regeneration:  possible now" in shown and "possible from" not in shown
    again = _json(home, "license", "show", lic["license_id"])
    assert again["next_regeneration"] == lic["created_at"]

    regenerated = _json(home, "license", "regenerate", lic["license_id"])
    assert regenerated["regeneration_allowed"] is False
    assert UTC_SECOND.fullmatch(regenerated["next_regeneration"])
    assert regenerated["next_regeneration"].endswith("T00:00:00Z")
    shown = cli("issuer", "license", "show", lic["license_id"], cwd=home).stdout
    assert f"regeneration:  possible from {regenerated['next_regeneration']}" in shown


def test_verifier_status_names_the_lease_and_the_license(home: Path, tmp_path: Path) -> None:
    trusted = str(home / "keys" / "trusted_keys.json")
    panel = tmp_path / "panel"
    panel.mkdir()
    args = ("--product", PRODUCT, "--trusted-keys", trusted, "--machine-id", "machine-a")
    for extra, last in ((("--expires", LAST_DAY), LAST_DAY), ((), None)):
        lic = _create(home, *extra)
        code = cli("verifier", "request", "--product", PRODUCT, "--key", lic["activation_key"],
                   "--machine-id", "machine-a", cwd=panel).stdout.strip()
        token = cli("issuer", "activate", "-", cwd=home, input=code + "\n").stdout.strip()
        cli("verifier", "install", token, *args, cwd=panel)
        text = cli("verifier", "status", *args, cwd=panel).stdout
        status = json.loads(cli("verifier", "status", *args, "--json", cwd=panel).stdout)
        assert f"lease until {status['expires_at']} (renews automatically" in text
        assert status["lease_limited"] is True and status["license_last_day"] == last
        if last:
            assert text.rstrip().endswith(f"license until {last}"), text
        else:
            assert text.rstrip().endswith("license never expires"), text
        assert status["license_expires_at"] == lic["expires_at"]  # nothing removed


def test_admin_api_and_console_pages(home: Path) -> None:
    lic = _create(home, "--expires", LAST_DAY, "--lease-days", "90")
    cli("issuer", "license", "regenerate", lic["license_id"], cwd=home)
    token = make_token(home, "billing", "write")
    cli("issuer", "admin", "user", "add", "alice", cwd=home, input="correct horse battery staple\n")
    console = ConsoleServer(home)
    try:
        status, _, one = api(console.url, "GET", f"/v1/admin/licenses/{lic['license_id']}", token)
        assert status == 200 and one["last_day"] == LAST_DAY and one["regeneration_allowed"] is False
        assert one["lease_days_effective"] < 90 and one["lease_days_reason"]
        status, _, page = api(console.url, "GET", "/v1/admin/licenses", token)
        item = page["items"][0]
        assert item["last_day"] == LAST_DAY and item["created_at"] == one["created_at"]
        status, _, refused = api(console.url, "POST", f"/v1/admin/licenses/{lic['license_id']}/regenerate", token)
        assert status == 409 and refused["allowed_from"] == one["next_regeneration"]
        status, _, events = api(console.url, "GET", "/v1/admin/events", token)
        assert events["items"] and all(UTC_SECOND.fullmatch(e["time"]) for e in events["items"])
        html = _pages(console.url, lic["license_id"])
    finally:
        console.stop()
    listing, license_page = html
    assert f'<td class="last-day">{LAST_DAY}</td>' in listing and "<th>Last day</th>" in listing
    assert 'id="lease-effective"' in license_page and "+00:00" not in license_page
    assert f"possible from {one['next_regeneration']}" in license_page
    assert '["dns"]' not in license_page  # no features: nothing to show, never a repr
    assert "None" not in license_page.replace("None yet", "")


def _pages(url: str, license_id: str) -> tuple[str, str]:
    """The list page and the license page, logged in as alice."""
    import http.cookiejar

    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    login = opener.open(url + "/login").read().decode()
    csrf = re.search(r'name="csrf" value="([^"]+)"', login)
    assert csrf is not None
    body = f"user=alice&password=correct+horse+battery+staple&csrf={csrf.group(1)}".encode()
    opener.open(urllib.request.Request(url + "/login", data=body, method="POST")).read()
    listing = opener.open(url + "/licenses").read().decode()
    return listing, opener.open(url + f"/licenses/{license_id}").read().decode()


def test_the_time_check_catches_what_the_readme_forbids() -> None:
    assert timecheck.violations({"time": "2027-01-04T06:31:51.477628+00:00"}) == [
        "$.time = '2027-01-04T06:31:51.477628+00:00'"
    ]
    assert timecheck.violations([{"at": "2027-01-04T06:31:51+00:00"}, {"until": "2027-01-04"}])
    assert not timecheck.violations(
        {"at": "2027-01-04T06:31:51Z", "last_day": "2027-12-31", "license_last_day": None, "n": 3, "s": "x"}
    )
    timecheck.collect_text("issuer x", '{"time": "2027-01-04 06:31:51"}')
    collected = timecheck.drain()
    assert collected and timecheck.violations(collected[0][1])
