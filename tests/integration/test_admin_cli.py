"""`issuer admin` and the CLI's license editing verbs, through the installed console script."""

from __future__ import annotations

import getpass
import json
from pathlib import Path

import pytest
from clirun import assert_one_line_refusal, cli, provider_home
from support import PRODUCT

from issuer import Issuer

OS_USER = getpass.getuser()


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return provider_home(tmp_path)


def test_user_passwords_come_from_a_file_or_stdin_never_from_argv(home: Path) -> None:
    (home / "pw").write_text("a long file password\nignored second line\n")
    cli("issuer", "admin", "user", "add", "alice", "--password-file", "pw", cwd=home)
    cli("issuer", "admin", "user", "add", "bob", cwd=home, input="a long stdin password\n")
    iss = Issuer(home / "ledger", home / "keys")
    assert iss.login("alice", "a long file password", address="127.0.0.1")
    assert iss.login("bob", "a long stdin password", address="127.0.0.1")
    proc = cli("issuer", "admin", "user", "add", "carol", "--password", "on the command line", cwd=home, check=None)
    assert proc.returncode == 2 and "No such option" in proc.stderr
    assert_one_line_refusal(cli("issuer", "admin", "user", "add", "dave", cwd=home, input="short\n", check=None), "12 to 1024 characters", code=2)
    assert_one_line_refusal(cli("issuer", "admin", "user", "add", "alice", cwd=home, input="another long password\n", check=None), "exists already")
    assert_one_line_refusal(cli("issuer", "admin", "user", "add", "../x", cwd=home, input="another long password\n", check=None), "user name must be", code=2)
    listed = json.loads(cli("issuer", "admin", "user", "list", "--json", cwd=home).stdout)
    assert [u["name"] for u in listed] == ["alice", "bob"]
    cli("issuer", "admin", "user", "remove", "bob", cwd=home)
    assert_one_line_refusal(cli("issuer", "admin", "user", "remove", "bob", cwd=home, check=None), "no user named 'bob'")


def test_tokens_are_printed_once_on_the_last_line_and_listed_without_the_secret(home: Path) -> None:
    out = cli("issuer", "admin", "token", "create", "billing", "--scope", "write", cwd=home).stdout
    token = out.strip().splitlines()[-1]
    assert token.startswith("licet_") and len(token) == 49
    as_json = json.loads(cli("issuer", "admin", "token", "create", "dash", "--scope", "read", "--json", cwd=home).stdout)
    assert set(as_json) == {"name", "scope", "token"} and as_json["scope"] == "read"
    listed = cli("issuer", "admin", "token", "list", "--json", cwd=home).stdout
    assert token not in listed and as_json["token"] not in listed
    assert [(t["name"], t["scope"]) for t in json.loads(listed)] == [("billing", "write"), ("dash", "read")]
    assert_one_line_refusal(cli("issuer", "admin", "token", "create", "x", "--scope", "admin", cwd=home, check=None), "scope must be one of", code=2)
    cli("issuer", "admin", "token", "revoke", "dash", cwd=home)
    assert "dash" not in cli("issuer", "admin", "token", "list", cwd=home).stdout


def test_license_set_and_history(home: Path) -> None:
    created = json.loads(cli("issuer", "license", "create", "--product", PRODUCT, "--customer", "Acme", "--json", cwd=home).stdout)
    lid = created["license_id"]
    shown = json.loads(cli("issuer", "license", "set", lid, "--customer", "Acme AG", "--ip", "203.0.113.9", "--expires", "2030-06-30",
                           "--feature", "dns", "--feature", "mail", "--limit", "domains=3", "--json", cwd=home).stdout)
    assert shown["customer"] == "Acme AG" and shown["ip"] == "203.0.113.9" and shown["features"] == ["dns", "mail"]
    assert shown["limits"] == {"domains": 3} and shown["expires_at"].startswith("2030-07-01")
    leased = json.loads(cli("issuer", "license", "set", lid, "--lease-days", "14", "--json", cwd=home).stdout)
    assert leased["lease_days"] == 14
    assert json.loads(cli("issuer", "license", "set", lid, "--lease-days", "default", "--json", cwd=home).stdout)["lease_days_default"]
    cli("issuer", "license", "set", lid, "--ip", "", "--expires", "never", cwd=home)
    history = json.loads(cli("issuer", "license", "history", lid, "--json", cwd=home).stdout)
    assert [(e["action"], e["actor"]) for e in history] == [("created", f"cli:{OS_USER}"), ("updated", f"cli:{OS_USER}"), ("updated", f"cli:{OS_USER}"),
                                                                ("updated", f"cli:{OS_USER}"), ("updated", f"cli:{OS_USER}")]
    assert history[4]["changes"] == {"ip": {"before": "203.0.113.9", "after": None},
                                     "expires_at": {"before": "2030-07-01T00:00:00Z", "after": None}}
    text = cli("issuer", "license", "history", lid, cwd=home).stdout
    assert "updated" in text and '"Acme" -> "Acme AG"' in text
    def stored() -> dict:  # type: ignore[type-arg]
        shown = json.loads(cli("issuer", "license", "show", lid, "--json", cwd=home).stdout)
        shown.pop("next_regeneration")  # "now" while a regeneration is allowed: moves with the clock
        return shown  # type: ignore[no-any-return]

    before = stored()
    for args, needle in [(["--expires", "2030-02-30"], "YYYY-MM-DD"), (["--days", "3", "--expires", "2031-01-01"], "not both"),
                         (["--ip", "not-an-ip"], "not an IP address"), (["--limit", "x"], "NAME=NUMBER"),
                         (["--feature", "no way"], "feature 'no way'"), (["--customer", "x" * 300], "at most 256")]:
        assert_one_line_refusal(cli("issuer", "license", "set", lid, *args, cwd=home, check=None), needle, code=2)
    assert_one_line_refusal(cli("issuer", "license", "set", "LIC-NOPE", "--customer", "x", cwd=home, check=None), "no license")
    assert stored() == before
