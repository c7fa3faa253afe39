"""The air-gapped story between two shells: provider and server, through the console scripts."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from clirun import assert_one_line_refusal, cli, provider_home
from support import ledger_bytes


@pytest.fixture
def provider(tmp_path: Path) -> Path:
    home = tmp_path / "provider"
    home.mkdir()
    cli("keytool", "new", cwd=home)
    cli("keytool", "export", cwd=home)
    cli("issuer", "init", "--name", "acme-hosting", cwd=home)
    return home


def create(provider: Path, *extra: str) -> dict:  # type: ignore[type-arg]
    out = cli("issuer", "license", "create", "--product", "ispmanager", "--json", *extra, cwd=provider).stdout
    return json.loads(out)


def server(tmp_path: Path, name: str) -> Path:
    home = tmp_path / name
    home.mkdir(exist_ok=True)
    return home


def test_whole_story(provider: Path, tmp_path: Path) -> None:
    lic = create(provider, "--days", "365", "--feature", "dns", "--limit", "domains=10", "--customer", "Bob")
    assert lic["status"] == "issued" and lic["license_id"].startswith("LIC-")
    trusted = str(provider / "keys" / "trusted_keys.json")

    # Server A: request code out, token back in.
    a = server(tmp_path, "server-a")
    code = cli("verifier", "request", "--product", "ispmanager", "--key", lic["activation_key"].lower(),
               "--machine-id", "machine-a", cwd=a).stdout.strip()
    token = cli("issuer", "activate", "-", cwd=provider, input=code + "\n").stdout.strip()
    cli("verifier", "install", token, "--product", "ispmanager", "--trusted-keys", trusted, "--machine-id", "machine-a", cwd=a)
    status = json.loads(cli("verifier", "status", "--product", "ispmanager", "--trusted-keys", trusted,
                            "--machine-id", "machine-a", "--json", cwd=a).stdout)
    assert status["state"] == "valid"
    assert status["license_id"] == lic["license_id"] and status["features"] == ["dns"]
    assert status["license_expires_at"].startswith(lic["expires_at"][:10])
    assert status["expires_at"] < status["license_expires_at"]  # the 30-day lease comes first
    # A 30-day lease, a day or two shorter when the next month is short.
    assert 27 <= status["days_left"] <= 30 and status["revocations_serial"] is None

    shown = json.loads(cli("issuer", "license", "show", lic["license_id"], "--json", cwd=provider).stdout)
    assert shown["status"] == "activated" and shown["activated_fingerprint"]
    assert shown["activation_key"] == lic["activation_key"]

    # Server B with the same key: refused with the regeneration hint.
    b = server(tmp_path, "server-b")
    code_b = cli("verifier", "request", "--product", "ispmanager", "--key", lic["activation_key"],
                 "--machine-id", "machine-b", cwd=b).stdout.strip()
    refused = cli("issuer", "activate", code_b, cwd=provider, check=None)
    assert_one_line_refusal(refused, "already activated — ask your provider to regenerate the activation key; possible from")

    # The token copied from A does not run on B.
    copied = cli("verifier", "install", token, "--product", "ispmanager", "--trusted-keys", trusted,
                 "--machine-id", "machine-b", cwd=b, check=None)
    assert_one_line_refusal(copied, "belongs to another server")

    # Regenerate, then B activates with the new key; a second regeneration this month is refused.
    regen = json.loads(cli("issuer", "license", "regenerate", lic["license_id"], "--json", cwd=provider).stdout)
    assert regen["activation_key"] != lic["activation_key"] and regen["status"] == "issued"
    code_b2 = cli("verifier", "request", "--product", "ispmanager", "--key", regen["activation_key"],
                  "--machine-id", "machine-b", cwd=b).stdout.strip()
    cli("issuer", "activate", code_b2, "--out", str(b / "token.txt"), cwd=provider)
    cli("verifier", "install", "-", "--product", "ispmanager", "--trusted-keys", trusted, "--machine-id", "machine-b",
        cwd=b, input=(b / "token.txt").read_text())
    assert cli("verifier", "status", "--product", "ispmanager", "--trusted-keys", trusted, "--machine-id", "machine-b",
               cwd=b).stdout.startswith("valid")
    again = cli("issuer", "license", "regenerate", lic["license_id"], cwd=provider, check=None)
    assert_one_line_refusal(again, "next regeneration possible from")
    assert re.search(r"possible from \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$", again.stderr.strip()), again.stderr

    listed = json.loads(cli("issuer", "license", "list", "--json", cwd=provider).stdout)
    assert [row["license_id"] for row in listed] == [lic["license_id"]]


def test_status_of_missing_and_garbage_tokens(provider: Path, tmp_path: Path) -> None:
    trusted = str(provider / "keys" / "trusted_keys.json")
    a = server(tmp_path, "server-a")
    missing = cli("verifier", "status", "--product", "ispmanager", "--trusted-keys", trusted, "--json", cwd=a, check=1)
    assert json.loads(missing.stdout)["state"] == "missing"
    (a / "licet-ispmanager.token").write_text("garbage")
    invalid = cli("verifier", "status", "--product", "ispmanager", "--trusted-keys", trusted, "--json", cwd=a, check=1)
    assert json.loads(invalid.stdout)["state"] == "invalid"


def tamper(code: str) -> str:
    middle = len(code) // 2
    return code[:middle] + ("A" if code[middle] != "A" else "B") + code[middle + 1 :]


def test_bad_input_gets_one_line_and_changes_nothing(provider: Path, tmp_path: Path) -> None:
    import base64

    lic = create(provider)
    good = cli("verifier", "request", "--product", "ispmanager", "--key", lic["activation_key"],
               "--machine-id", "m", cwd=provider).stdout.strip()
    not_json = "LICET1." + base64.urlsafe_b64encode(b"[1,2,3]" + __import__("hashlib").sha256(b"[1,2,3]").digest()[:4]).decode().rstrip("=")
    before = ledger_bytes(provider / "ledger")
    cases = [
        (good[:-10], "truncated or altered"),
        (tamper(good), "truncated or altered"),
        ("LICET9." + good[7:], "version 'LICET9' is not supported"),
        ("LICET1.%%%%not-base64%%%%", "truncated or altered"),
        ("hello world", "not an activation request code"),
        (not_json, "unknown layout"),
        ("", "not an activation request code"),
    ]
    for code, message in cases:
        assert_one_line_refusal(cli("issuer", "activate", code, cwd=provider, check=None), message)
    assert ledger_bytes(provider / "ledger") == before

    typo = lic["activation_key"][:-1] + ("0" if lic["activation_key"][-1] != "0" else "1")
    assert_one_line_refusal(
        cli("verifier", "request", "--product", "ispmanager", "--key", typo, cwd=provider, check=None), "typo"
    )
    assert_one_line_refusal(cli("issuer", "license", "show", "LIC-NOPE", cwd=provider, check=None), "no license")
    assert_one_line_refusal(
        cli("issuer", "license", "create", "--product", "bad name", cwd=provider, check=None), "must be 1-64", code=2
    )
    assert_one_line_refusal(
        cli("issuer", "license", "create", "--product", "p", "--limit", "x", cwd=provider, check=None), "NAME=NUMBER", code=2
    )
    assert ledger_bytes(provider / "ledger") == before
    assert cli("issuer", "license", "create", "--days", "x", "--product", "p", cwd=provider, check=None).returncode == 2


def test_commands_refuse_a_missing_ledger(tmp_path: Path) -> None:
    cli("keytool", "new", cwd=tmp_path)
    assert_one_line_refusal(cli("issuer", "license", "list", cwd=tmp_path, check=None), "issuer init")
    assert not (tmp_path / "ledger").exists()
    cli("issuer", "init", "--name", "acme", cwd=tmp_path)
    assert_one_line_refusal(cli("issuer", "init", "--name", "acme", cwd=tmp_path, check=None), "never overwritten")


def test_license_create_catches_a_product_typo_and_takes_new_product(tmp_path: Path) -> None:
    provider = provider_home(tmp_path, ("--product", "ispmanager"))
    before = ledger_bytes(provider / "ledger")
    assert_one_line_refusal(
        cli("issuer", "license", "create", "--product", "ISPmanager", cwd=provider, check=None),
        "'ISPmanager' differs only in case from 'ispmanager', which this ledger already has: use 'ispmanager'",
    )
    assert_one_line_refusal(
        cli("issuer", "license", "create", "--product", "dnsmanager", cwd=provider, check=None),
        "add it as a new product (--new-product)",
    )
    assert ledger_bytes(provider / "ledger") == before
    created = cli("issuer", "license", "create", "--product", "dnsmanager", "--new-product", "--json", cwd=provider)
    assert json.loads(created.stdout)["product"] == "dnsmanager"
