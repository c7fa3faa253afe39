from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import jwt
from clirun import assert_one_line_refusal, cli

from verifier import TrustedKeys


def test_key_lifecycle_through_the_console_script(tmp_path: Path) -> None:
    out = cli("keytool", "new", cwd=tmp_path).stdout
    assert "(active)" in out
    first = json.loads(cli("keytool", "list", "--json", cwd=tmp_path).stdout)
    assert [k["status"] for k in first] == ["active"]
    kid1 = first[0]["kid"]
    assert stat.S_IMODE(os.stat(tmp_path / "keys" / f"{kid1}.pem").st_mode) == 0o600

    cli("keytool", "rotate", cwd=tmp_path)
    keys = json.loads(cli("keytool", "list", "--json", cwd=tmp_path).stdout)
    assert [k["status"] for k in keys] == ["retired", "active"]
    assert keys[0]["retired_at"] is not None

    cli("keytool", "export", cwd=tmp_path)
    exported = tmp_path / "keys" / "trusted_keys.json"
    assert set(TrustedKeys.from_file(exported).kids) == {kid1, keys[1]["kid"]}
    statuses = {k["kid"]: k["licet_status"] for k in json.loads(exported.read_text())["keys"]}
    assert statuses == {kid1: "retired", keys[1]["kid"]: "active"}

    cli("keytool", "revoke", kid1, cwd=tmp_path)
    cli("keytool", "export", cwd=tmp_path)
    assert TrustedKeys.from_file(exported).kids == (keys[1]["kid"],)
    assert {key.key_id for key in jwt.PyJWKSet.from_json(exported.read_text())} == {keys[1]["kid"]}
    stdout = json.loads(cli("keytool", "export", "--out", "-", cwd=tmp_path).stdout)
    assert [k["kid"] for k in stdout["keys"]] == [keys[1]["kid"]]


def test_export_of_a_keyring_with_every_key_revoked_is_refused(tmp_path: Path) -> None:
    cli("keytool", "new", cwd=tmp_path)
    kid = json.loads(cli("keytool", "list", "--json", cwd=tmp_path).stdout)[0]["kid"]
    cli("keytool", "revoke", kid, cwd=tmp_path)
    assert_one_line_refusal(cli("keytool", "export", cwd=tmp_path, check=None), "every key is revoked")
    assert not (tmp_path / "keys" / "trusted_keys.json").exists()


def test_keys_folder_from_environment_and_option(tmp_path: Path) -> None:
    cli("keytool", "new", cwd=tmp_path, env={"LICET_KEYS": str(tmp_path / "envkeys")})
    assert (tmp_path / "envkeys" / "keyring.json").exists()
    cli("keytool", "new", "--keys", str(tmp_path / "optkeys"), cwd=tmp_path)
    assert (tmp_path / "optkeys" / "keyring.json").exists()


def test_passphrase_from_file_and_environment(tmp_path: Path) -> None:
    secret = tmp_path / "pass.txt"
    secret.write_text("a long passphrase\n")
    cli("keytool", "new", "--passphrase-file", str(secret), cwd=tmp_path)
    pem = next((tmp_path / "keys").glob("*.pem")).read_bytes()
    assert b"ENCRYPTED" in pem
    cli("keytool", "rotate", cwd=tmp_path, env={"LICET_KEY_PASSPHRASE": "another passphrase"})
    assert all(b"ENCRYPTED" in p.read_bytes() for p in (tmp_path / "keys").glob("*.pem"))


def test_refusals_are_one_line_exit_1(tmp_path: Path) -> None:
    assert_one_line_refusal(cli("keytool", "list", cwd=tmp_path, check=None), "no keyring")
    cli("keytool", "new", cwd=tmp_path)
    assert_one_line_refusal(cli("keytool", "new", cwd=tmp_path, check=None), "already has an active key")
    assert_one_line_refusal(cli("keytool", "revoke", "feedfacefeedface", cwd=tmp_path, check=None), "no key")
    short = tmp_path / "short"
    short.write_text("short")
    assert_one_line_refusal(
        cli("keytool", "rotate", "--passphrase-file", str(short), cwd=tmp_path, check=None), "at least 8"
    )
    (tmp_path / "keys" / "keyring.json").write_text("{garbage")
    assert_one_line_refusal(cli("keytool", "list", cwd=tmp_path, check=None), "damaged")


def test_bad_usage_exits_2(tmp_path: Path) -> None:
    assert cli("keytool", "frobnicate", cwd=tmp_path, check=None).returncode == 2
    assert cli("keytool", "revoke", cwd=tmp_path, check=None).returncode == 2


def test_no_passphrase_option_exists_on_the_command_line(tmp_path: Path) -> None:
    help_text = cli("keytool", "new", "--help", cwd=tmp_path).stdout
    assert "--passphrase-file" in help_text
    assert cli("keytool", "new", "--passphrase", "x", cwd=tmp_path, check=None).returncode == 2


def test_export_into_a_vanished_folder_is_one_line_naming_the_file(tmp_path: Path) -> None:
    cli("keytool", "new", cwd=tmp_path)
    target = tmp_path / "gone" / "trusted_keys.json"
    proc = cli("keytool", "export", "--out", str(target), cwd=tmp_path, check=None)
    assert_one_line_refusal(proc, f"cannot write {target}: its folder does not exist")
    assert ".tmp" not in proc.stderr
