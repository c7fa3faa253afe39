"""Messages that lead to the fix: the absolute path looked in, where it came from, the right fix.

Run from the wrong folder, a "missing" message must never advise the command
that would create a second ledger or a new signing key there; and following
the message must not have created anything.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from clirun import assert_one_line_refusal, cli, provider_home

from verifier.encoding import b64url_decode


def _tree(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


def test_missing_ledger_names_the_path_its_origin_and_the_right_fix(tmp_path: Path, home: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    refused = cli("issuer", "license", "list", cwd=elsewhere, check=None)
    assert_one_line_refusal(refused, f"no ledger in {elsewhere / 'ledger'}")
    line = refused.stderr
    assert "point --ledger (or LICET_LEDGER) at the provider's ledger" in line
    assert f"[the default ./ledger, relative to {elsewhere}: neither --ledger nor LICET_LEDGER is set]" in line
    assert "run 'issuer init'" not in line

    by_env = cli("issuer", "license", "list", cwd=elsewhere, env={"LICET_LEDGER": "../typo"}, check=None)
    assert_one_line_refusal(by_env, f"no ledger in {tmp_path / 'typo'}")
    assert "[from LICET_LEDGER=../typo]" in by_env.stderr
    by_option = cli("issuer", "license", "show", "LIC-X", "--ledger", "led", cwd=elsewhere, check=None)
    assert "[given by --ledger]" in by_option.stderr and str(elsewhere / "led") in by_option.stderr

    # Following the advice works, and nothing was created on the way.
    assert _tree(elsewhere) == []
    listed = cli("issuer", "license", "list", "--json", cwd=elsewhere,
                 env={"LICET_LEDGER": str(home / "ledger"), "LICET_KEYS": str(home / "keys")})
    assert isinstance(json.loads(listed.stdout), list)


def test_missing_keyring_and_secret_point_at_the_keys_folder_not_at_keytool_new(tmp_path: Path, home: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    refused = cli("keytool", "list", cwd=elsewhere, check=None)
    assert_one_line_refusal(refused, f"no keyring in {elsewhere / 'keys'}")
    assert "point --keys (or LICET_KEYS) at the provider's keys folder" in refused.stderr
    assert "neither --keys nor LICET_KEYS is set" in refused.stderr
    assert "run 'keytool new'" not in refused.stderr

    # The right ledger with the wrong keys folder: the secret is missing there.
    wrong_keys = cli("issuer", "license", "list", "--ledger", str(home / "ledger"), cwd=elsewhere, check=None)
    assert_one_line_refusal(wrong_keys, f"activation-key secret {elsewhere / 'keys' / 'activation-keys.secret'} is missing")
    assert "point --keys (or LICET_KEYS) at the keys folder this ledger was made with" in wrong_keys.stderr
    assert _tree(elsewhere) == []


def test_init_and_create_refuse_without_an_active_signing_key_and_write_nothing(tmp_path: Path) -> None:
    refused = cli("issuer", "init", "--name", "acme", cwd=tmp_path, check=None)
    assert_one_line_refusal(refused, f"no keyring in {tmp_path / 'keys'}")
    assert _tree(tmp_path) == []  # no keys/activation-keys.secret, no ledger/

    home = provider_home(tmp_path)
    again = cli("issuer", "init", "--name", "acme", cwd=home, check=None)
    assert_one_line_refusal(again, "never overwritten")
    kid = json.loads(cli("keytool", "list", "--json", cwd=home).stdout)[0]["kid"]
    cli("keytool", "revoke", kid, "--yes", cwd=home)
    before = _tree(home)
    no_key = cli("issuer", "license", "create", "--product", "ispmanager", cwd=home, check=None)
    assert_one_line_refusal(no_key, f"no active signing key in {home / 'keys'}")
    assert "keytool rotate" in no_key.stderr
    assert _tree(home) == before and json.loads(cli("issuer", "license", "list", "--json", cwd=home).stdout) == []

    fresh = tmp_path / "fresh"
    fresh.mkdir()
    shutil.copytree(home / "keys", fresh / "keys")
    (fresh / "keys" / "activation-keys.secret").unlink()
    before = _tree(fresh)
    assert_one_line_refusal(cli("issuer", "init", "--name", "acme", cwd=fresh, check=None), "no active signing key")
    assert _tree(fresh) == before


def test_verifier_says_what_it_was_given_and_what_it_expected(tmp_path: Path, home: Path) -> None:
    trust = str(home / "keys" / "trusted_keys.json")
    created = json.loads(cli("issuer", "license", "create", "--product", "ispmanager", "--json", cwd=home).stdout)
    code = cli("verifier", "request", "--product", "ispmanager", "--key", created["activation_key"], cwd=tmp_path).stdout.strip()
    common = ("--product", "ispmanager", "--trusted-keys", trust)

    as_token = cli("verifier", "install", code, *common, cwd=tmp_path, check=None)
    assert_one_line_refusal(as_token, "this is a request code (what 'verifier request' prints for the provider)", code=2)
    token = cli("issuer", "activate", code, cwd=home).stdout.strip()
    (tmp_path / "token.txt").write_text(token)
    as_path = cli("verifier", "install", "token.txt", *common, cwd=tmp_path, check=None)
    assert_one_line_refusal(as_path, "'token.txt' is a file name; install takes the token itself", code=2)
    assert "verifier install - < token.txt" in as_path.stderr

    keyring = cli("verifier", "install", token, "--product", "ispmanager", "--trusted-keys",
                  str(home / "keys" / "keyring.json"), cwd=tmp_path, check=None)
    assert_one_line_refusal(keyring, "this is the provider's keyring (keys/keyring.json), not a trust set")
    missing = cli("verifier", "status", "--product", "ispmanager", "--trusted-keys", "trust.json", cwd=tmp_path, check=None)
    assert_one_line_refusal(missing, f"trusted keys file {tmp_path / 'trust.json'} not found")
    assert "'keytool export'" in missing.stderr and "[given by --trusted-keys]" in missing.stderr
    assert not list(tmp_path.glob("*.token"))  # nothing was installed by any of these


def test_unknown_signing_key_is_named_with_the_way_to_fix_it(tmp_path: Path) -> None:
    old = tmp_path / "old"
    old.mkdir()
    provider_home(old)
    new = tmp_path / "new"
    new.mkdir()
    provider_home(new, ("--product", "ispmanager"))
    lid = json.loads(cli("issuer", "license", "list", "--json", cwd=new).stdout)[0]["license_id"]
    key = json.loads(cli("issuer", "license", "show", lid, "--json", cwd=new).stdout)["activation_key"]
    code = cli("verifier", "request", "--product", "ispmanager", "--key", key, cwd=tmp_path).stdout.strip()
    token = cli("issuer", "activate", code, cwd=new).stdout.strip()
    kid = json.loads(b64url_decode(token.split(".")[0]))["kid"]
    refused = cli("verifier", "install", token, "--product", "ispmanager", "--trusted-keys",
                  str(old / "keys" / "trusted_keys.json"), cwd=tmp_path, check=None)
    assert_one_line_refusal(refused, f"signed by an unknown key '{kid}'")
    assert "re-exports them with 'keytool export'" in refused.stderr


REFUSED_ANYWHERE = [
    ["keytool", "rotate"], ["keytool", "revoke", "abc"], ["keytool", "export"], ["keytool", "list"],
    ["issuer", "init", "--name", "acme"], ["issuer", "activate", "LICET1.x"],
    ["issuer", "license", "create", "--product", "p"], ["issuer", "license", "revoke", "LIC-X", "--yes"],
    ["issuer", "license", "regenerate", "LIC-X"], ["issuer", "serve", "--port", "1"],
    ["verifier", "status", "--product", "p", "--trusted-keys", "t.json"],
    ["verifier", "install", "a.b.c", "--product", "p", "--trusted-keys", "t.json"],
    ["verifier", "request", "--product", "p", "--key", "1234"],
]


def test_no_refused_command_leaves_files_behind(tmp_path: Path) -> None:
    for tool, *args in REFUSED_ANYWHERE:
        proc = cli(tool, *args, cwd=tmp_path, check=None)
        assert proc.returncode == 1, (tool, args, proc.stderr)
        assert _tree(tmp_path) == [], (tool, args)
    home = tmp_path / "home"
    home.mkdir()
    provider_home(home)
    before = {p: p.read_bytes() for p in home.rglob("*") if p.is_file() and p.name != "ledger.lock"}
    for tool, *args in (["keytool", "new"], ["issuer", "init", "--name", "other"]):
        assert cli(tool, *args, cwd=home, check=None).returncode == 1
    after = {p: p.read_bytes() for p in home.rglob("*") if p.is_file() and p.name != "ledger.lock"}
    assert after == before
