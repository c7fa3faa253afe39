"""Air-gapped renewal and revocation lists between two shells, through the console scripts; QR codes."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from clirun import assert_one_line_refusal, cli
from support import ledger_bytes, wait_past_second

TRUST = ("--product", "ispmanager", "--trusted-keys")


def create(home: Path, *extra: str) -> dict:  # type: ignore[type-arg]
    return json.loads(cli("issuer", "license", "create", "--product", "ispmanager", "--json", *extra, cwd=home).stdout)


def server_args(home: Path, machine: str) -> list[str]:
    return [*TRUST, str(home / "keys" / "trusted_keys.json"), "--machine-id", machine]


def install(home: Path, box: Path, machine: str, key: str) -> str:
    code = cli("verifier", "request", "--product", "ispmanager", "--key", key, "--machine-id", machine, cwd=box).stdout.strip()
    token = cli("issuer", "activate", code, cwd=home).stdout.strip()
    cli("verifier", "install", token, *server_args(home, machine), cwd=box)
    return token


def status(home: Path, box: Path, machine: str) -> dict:  # type: ignore[type-arg]
    proc = cli("verifier", "status", *server_args(home, machine), "--json", cwd=box, check=None)
    return json.loads(proc.stdout)


def test_air_gapped_renewal(home: Path, tmp_path: Path) -> None:
    lic = create(home, "--days", "365")
    box = tmp_path / "box"
    box.mkdir()
    first = install(home, box, "machine-a", lic["activation_key"])
    wait_past_second()  # a token's times are whole seconds: the renewal must be in a later one
    renewal = cli("verifier", "renew", "--offline", *server_args(home, "machine-a"), cwd=box)
    code = renewal.stdout.strip()
    assert code.startswith("LICET1R.") and "provider" in renewal.stderr
    token = cli("issuer", "renew", "-", cwd=home, input=code + "\n").stdout.strip()
    assert token != first
    cli("verifier", "install", token, *server_args(home, "machine-a"), cwd=box)
    after = status(home, box, "machine-a")
    assert after["state"] == "valid" and after["license_id"] == lic["license_id"]
    history = json.loads(cli("issuer", "license", "show", lic["license_id"], "--json", cwd=home).stdout)["history"]
    assert [e["action"] for e in history][-1] == "renewed"

    # The same token copied to another server: its renewal code is refused there.
    other = tmp_path / "other"
    other.mkdir()
    shutil.copy(box / "licet-ispmanager.token", other / "licet-ispmanager.token")
    stolen = cli("verifier", "renew", "--offline", *server_args(home, "machine-b"), cwd=other).stdout.strip()
    before = ledger_bytes(home / "ledger")
    assert_one_line_refusal(cli("issuer", "renew", stolen, cwd=home, check=None), "another server")
    assert ledger_bytes(home / "ledger") == before


@pytest.mark.parametrize("bad", ["", "LICET1R.", "LICET1R.AAAAAAAA", "LICET1.abc", "\x00\x01"])
def test_damaged_renewal_codes_are_one_line_refusals(home: Path, bad: str) -> None:
    before = ledger_bytes(home / "ledger")
    assert_one_line_refusal(cli("issuer", "renew", "-", input=bad, cwd=home, check=None), "code")
    assert ledger_bytes(home / "ledger") == before


def test_renew_without_a_token_and_garbage_tokens(home: Path, tmp_path: Path) -> None:
    empty = cli("verifier", "renew", "--offline", *server_args(home, "machine-x"), cwd=tmp_path, check=None)
    assert_one_line_refusal(empty, "no activation token", code=2)  # bad input: exit 2
    (tmp_path / "licet-ispmanager.token").write_text("garbage.token.here\n")
    garbled = cli("verifier", "renew", "--offline", *server_args(home, "machine-x"), cwd=tmp_path, check=None)
    assert_one_line_refusal(garbled, "damaged", code=2)
    assert status(home, tmp_path, "machine-x")["state"] == "invalid"


def test_revocation_list_through_the_console_scripts(home: Path, tmp_path: Path) -> None:
    lic = create(home)
    box = tmp_path / "box"
    box.mkdir()
    install(home, box, "machine-r", lic["activation_key"])
    older = tmp_path / "older.jwt"
    cli("issuer", "revocations", "export", "--out", str(older), cwd=home)
    cli("issuer", "license", "regenerate", lic["license_id"], cwd=home)
    newer = cli("issuer", "revocations", "export", "--days", "7", cwd=home).stdout
    assert status(home, box, "machine-r")["state"] == "valid"  # offline, it cannot know yet
    applied = cli("verifier", "revocations", "install", "-", *server_args(home, "machine-r"), input=newer, cwd=box)
    assert "serial" in applied.stdout and "superseded" in applied.stdout
    now = status(home, box, "machine-r")
    assert now["state"] == "superseded" and now["revocations_serial"] >= 1
    rollback = cli("verifier", "revocations", "install", str(older), *server_args(home, "machine-r"), cwd=box, check=None)
    assert_one_line_refusal(rollback, "older than serial")
    (tmp_path / "tampered.jwt").write_text(newer.replace(newer.split(".")[1][:8], "AAAAAAAA", 1))
    tampered = cli("verifier", "revocations", "install", str(tmp_path / "tampered.jwt"), *server_args(home, "machine-r"), cwd=box, check=None)
    assert_one_line_refusal(tampered, "revocation list refused")
    assert status(home, box, "machine-r")["revocations_serial"] == now["revocations_serial"]
    missing = cli("verifier", "revocations", "install", str(tmp_path / "nope.jwt"), *server_args(home, "machine-r"), cwd=box, check=None)
    assert_one_line_refusal(missing, "cannot read", code=2)


def test_lease_days_on_init_and_create(tmp_path: Path) -> None:
    cli("keytool", "new", cwd=tmp_path)
    made = cli("issuer", "init", "--name", "acme", "--lease-days", "14", cwd=tmp_path)
    assert "14-day leases" in made.stdout
    assert create(tmp_path)["lease_days"] == 14
    assert create(tmp_path, "--lease-days", "0")["lease_days"] == 0
    assert_one_line_refusal(cli("issuer", "license", "create", "--product", "p", "--lease-days", "-3", cwd=tmp_path, check=None), "lease days", code=2)


ZBARIMG = shutil.which("zbarimg")


@pytest.mark.skipif(ZBARIMG is None and not os.environ.get("CI"),
                    reason="Debian's zbar-tools is not installed (.ci/run installs it)")
def test_qr_codes_round_trip(home: Path, tmp_path: Path) -> None:
    lic = create(home)
    png = tmp_path / "request.png"
    proc = cli("verifier", "request", "--product", "ispmanager", "--key", lic["activation_key"],
               "--machine-id", "machine-q", "--qr", "--qr-png", str(png), cwd=tmp_path)
    code = proc.stdout.splitlines()[0]
    assert "█" in proc.stdout or "▀" in proc.stdout  # the terminal QR code follows the code
    assert decode(png) == code
    token_png = tmp_path / "token.png"
    token = cli("issuer", "activate", code, "--qr-png", str(token_png), cwd=home).stdout.splitlines()[0]
    assert decode(token_png) == token
    box = tmp_path / "box"
    box.mkdir()
    cli("verifier", "install", token, *server_args(home, "machine-q"), cwd=box)
    renewal_png = tmp_path / "renewal.png"
    renewal = cli("verifier", "renew", "--offline", "--qr-png", str(renewal_png), *server_args(home, "machine-q"), cwd=box).stdout.splitlines()[0]
    assert decode(renewal_png) == renewal
    renewed_png = tmp_path / "renewed.png"
    renewed = cli("issuer", "renew", renewal, "--qr-png", str(renewed_png), cwd=home).stdout.splitlines()[0]
    assert decode(renewed_png) == renewed


def decode(png: Path) -> str:
    assert ZBARIMG is not None, "zbarimg (Debian's zbar-tools) is needed to decode QR codes"
    out = subprocess.run([str(ZBARIMG), "--raw", "-q", str(png)], capture_output=True, text=True, timeout=60, check=True)
    return out.stdout.strip()
