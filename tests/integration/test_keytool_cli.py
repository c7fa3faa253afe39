from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import jwt
import pytest
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


def test_nothing_private_is_staged_by_git_add_all_after_set_up_in_a_fresh_repository(tmp_path: Path) -> None:
    import shutil
    import subprocess

    from keytool.keyring import GITIGNORE

    git = shutil.which("git")
    if git is None:
        pytest.skip("git is not installed")
    repo = tmp_path / "repo"
    repo.mkdir()
    env = {"GIT_CONFIG_GLOBAL": "/dev/null", "GIT_CONFIG_SYSTEM": "/dev/null", "HOME": str(tmp_path), "PATH": "/usr/bin:/bin"}
    subprocess.run([git, "init", "-q"], cwd=repo, check=True, env=env)
    secret = repo / "passphrase.txt"
    secret.write_text("a long enough passphrase\n")
    keys = "provider-keys"  # any folder, not only the checkout's own keys/
    cli("keytool", "new", "--keys", keys, "--passphrase-file", str(secret), cwd=repo)
    cli("keytool", "rotate", "--keys", keys, "--passphrase-file", str(secret), cwd=repo)
    cli("keytool", "export", "--keys", keys, cwd=repo)
    cli("issuer", "init", "--name", "acme", "--keys", keys, cwd=repo)
    cli("issuer", "license", "create", "--product", "ispmanager", "--keys", keys, cwd=repo)
    secret.unlink()
    assert (repo / keys / ".gitignore").read_text() == GITIGNORE
    subprocess.run([git, "add", "-A"], cwd=repo, check=True, env=env)
    staged = subprocess.run([git, "diff", "--cached", "--name-only"], cwd=repo, check=True, env=env,
                            capture_output=True, text=True).stdout.split()
    in_keys = sorted(p for p in staged if p.startswith(keys + "/"))
    assert in_keys == [f"{keys}/.gitignore", f"{keys}/trusted_keys.json"], staged
    for path in staged:
        data = (repo / path).read_bytes()
        assert b"PRIVATE KEY" not in data and not path.endswith((".pem", ".secret", "keyring.json")), path
    # issuer init alone (its secret in a keys folder keytool never touched) is covered too.
    bare = tmp_path / "bare"
    from issuer.licensing.minting import KeySecret

    KeySecret.create_or_load(bare)
    assert (bare / ".gitignore").read_text() == GITIGNORE


def test_the_checkouts_keys_gitignore_is_the_one_keytool_writes() -> None:
    from keytool.keyring import GITIGNORE

    assert (Path(__file__).resolve().parents[2] / "keys" / ".gitignore").read_text() == GITIGNORE
