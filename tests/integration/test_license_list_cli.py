"""`issuer license list` finds a license by what a customer quotes, filters, limits, newest first;
every command taking a license id takes it in any case."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from clirun import assert_one_line_refusal, cli, provider_home
from support import PRODUCT, code_for


def _listed(home: Path, *args: str) -> list[str]:
    rows = json.loads(cli("issuer", "license", "list", "--json", *args, cwd=home).stdout)
    return [row["license_id"] for row in rows]


def _show(home: Path, lid: str) -> dict[str, Any]:
    shown: dict[str, Any] = json.loads(cli("issuer", "license", "show", lid, "--json", cwd=home).stdout)
    return shown


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return provider_home(
        tmp_path,
        ("--product", PRODUCT, "--customer", "Acme Hosting Ltd", "--ip", "203.0.113.9"),
        ("--product", PRODUCT, "--customer", "Other GmbH"),
        ("--product", "dnsmanager", "--new-product", "--customer", "Third Ltd"),
    )


def test_license_list_searches_filters_and_limits_newest_first(home: Path) -> None:
    third, other, acme = _listed(home)  # newest first
    assert _show(home, third)["product"] == "dnsmanager" and _show(home, acme)["customer"] == "Acme Hosting Ltd"
    old_key = _show(home, acme)["activation_key"]
    cli("issuer", "license", "regenerate", acme, cwd=home)  # the first key is dead now
    key = _show(home, acme)["activation_key"]
    cli("issuer", "activate", code_for(key, "panel-7.acme.example"), cwd=home)
    activation_id = _show(home, acme)["activation"]["activation_id"]

    for text in (acme.lower(), "acme hosting", "203.0.113.9", key, key.replace("-", "").lower(),
                 "panel-7.ACME.example", activation_id, activation_id.lower()):
        assert _listed(home, "--search", text) == [acme], text
    for text in (old_key, old_key.replace("-", "").lower(), "nobody"):
        assert _listed(home, "--search", text) == [], text
    assert _listed(home, "--search", "ltd") == [third, acme]
    assert _listed(home, "--product", "dnsmanager") == [third]
    assert _listed(home, "--status", "activated") == [acme]
    assert _listed(home, "--status", "issued", "--product", PRODUCT) == [other]
    assert _listed(home, "--limit", "2") == [third, other]

    text = cli("issuer", "license", "list", "--search", "panel-7", cwd=home).stdout.splitlines()
    assert len(text) == 2 and text[1].startswith(acme) and "panel-7.acme.example" in text[1]
    assert_one_line_refusal(cli("issuer", "license", "list", "--status", "gone", cwd=home, check=None), "status must be", code=2)
    assert_one_line_refusal(cli("issuer", "license", "list", "--limit", "0", cwd=home, check=None), "limit must be", code=2)


def test_every_license_command_takes_an_id_in_any_case(home: Path) -> None:
    lid = _listed(home)[-1]
    typed = lid.lower()
    assert _show(home, typed)["license_id"] == lid
    assert json.loads(cli("issuer", "license", "history", typed, "--json", cwd=home).stdout)[0]["action"] == "created"
    cli("issuer", "license", "set", typed, "--customer", "Renamed", cwd=home)
    assert _show(home, lid)["customer"] == "Renamed"
    assert json.loads(cli("issuer", "license", "regenerate", f" {lid.swapcase()}", "--json", cwd=home).stdout)["key_generation"] == 2
    assert cli("issuer", "license", "revoke", typed, "--yes", cwd=home).stdout.strip() == f"revoked {lid}"
