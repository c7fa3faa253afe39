"""What people paste between a panel and the provider: tokens through e-mail, codes of the wrong kind.

A token folded at 76 columns, indented or ``> `` quoted by a mail client is
accepted wherever a token is read (``verifier install`` from an argument or
stdin, the token store's file that ``verifier status`` reads); a token cut
short at any length says so; a code given to the command that does not take
it names its kind and the command that does.
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest
from clirun import assert_one_line_refusal, cli, provider_home
from support import PRODUCT


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    home = provider_home(tmp_path_factory.mktemp("provider"), ("--product", PRODUCT, "--days", "365"))
    lid = json.loads(cli("issuer", "license", "list", "--json", cwd=home).stdout)[0]["license_id"]
    key = json.loads(cli("issuer", "license", "show", lid, "--json", cwd=home).stdout)["activation_key"]
    box = tmp_path_factory.mktemp("box")
    request = cli("verifier", "request", "--product", PRODUCT, "--key", key, "--machine-id", "mail-box", cwd=box).stdout.strip()
    token = cli("issuer", "activate", request, cwd=home).stdout.strip()
    return {"home": home, "box": box, "request": request, "token": token}


def _panel(world: dict[str, object], store: Path) -> tuple[str, ...]:
    home = world["home"]
    assert isinstance(home, Path)
    return ("--product", PRODUCT, "--trusted-keys", str(home / "keys" / "trusted_keys.json"),
            "--machine-id", "mail-box", "--store", str(store))


def _mailed(token: str, quote: str) -> str:
    """The token as a mail client sends it on: folded at 76 columns, each line quoted."""
    return "\n".join(quote + line for line in textwrap.wrap(token, 76)) + "\n"


@pytest.mark.parametrize("quote", ["", "  ", "> ", ">> ", "> > "], ids=["folded", "indented", "quoted", "quoted-twice", "quoted-spaced"])
def test_a_folded_or_quoted_token_installs_from_an_argument_and_from_stdin(world: dict[str, object], quote: str, tmp_path: Path) -> None:
    token = str(world["token"])
    mailed = _mailed(token, quote)
    assert "\n" in mailed.strip()
    cli("verifier", "install", mailed, *_panel(world, tmp_path / "a.token"), cwd=tmp_path)
    assert (tmp_path / "a.token").read_text() == token + "\n"  # stored on one line
    cli("verifier", "install", "-", *_panel(world, tmp_path / "b.token"), cwd=tmp_path, input=mailed)
    assert (tmp_path / "b.token").read_text() == token + "\n"
    # Spaces instead of line breaks, as some clients join a pasted block.
    cli("verifier", "install", " ".join(textwrap.wrap(token, 40)), *_panel(world, tmp_path / "c.token"), cwd=tmp_path)


def test_status_reads_a_token_pasted_into_the_store_file_from_a_mail(world: dict[str, object], tmp_path: Path) -> None:
    store = tmp_path / "license.token"
    store.write_text(_mailed(str(world["token"]), "> "))
    status = json.loads(cli("verifier", "status", *_panel(world, store), "--json", cwd=tmp_path).stdout)
    assert status["state"] == "valid", status


def test_a_token_cut_short_at_any_length_says_it_is_incomplete(world: dict[str, object], tmp_path: Path) -> None:
    token = str(world["token"])
    assert len(token) > 300  # long enough that a cut copy exceeds a file name's 255 bytes
    for length in sorted({5, 40, token.index("."), token.index(".") + 1, 254, 256, 300, token.rindex("."),
                          token.rindex(".") + 1, len(token) - 40, len(token) - 1}):
        proc = cli("verifier", "install", token[:length], *_panel(world, tmp_path / "t"), cwd=tmp_path, check=None)
        assert_one_line_refusal(proc, "the token is incomplete — copy all of it")
        assert "file name" not in proc.stderr
    assert not (tmp_path / "t").exists()


def test_an_argument_is_a_file_name_only_when_it_exists_or_looks_like_a_path(world: dict[str, object], tmp_path: Path) -> None:
    (tmp_path / "token.txt").write_text(str(world["token"]))
    proc = cli("verifier", "install", "token.txt", *_panel(world, tmp_path / "t"), cwd=tmp_path, check=2)
    assert_one_line_refusal(proc, "'verifier install - < token.txt'", code=2)
    proc = cli("verifier", "install", "./mail/token", *_panel(world, tmp_path / "t"), cwd=tmp_path, check=2)
    assert_one_line_refusal(proc, "no such file: ./mail/token", code=2)
    proc = cli("verifier", "install", "x" * 400, *_panel(world, tmp_path / "t"), cwd=tmp_path, check=1)
    assert "file name" not in proc.stderr and "compact JWS" in proc.stderr


def test_issuer_renew_given_a_request_code_names_it_and_the_command_that_takes_it(world: dict[str, object]) -> None:
    home = world["home"]
    assert isinstance(home, Path)
    proc = cli("issuer", "renew", str(world["request"]), cwd=home, check=1)
    assert_one_line_refusal(proc, "this is an activation request code, not a renewal code: 'issuer activate' takes it")
    proc = cli("issuer", "renew", "-", cwd=home, input=str(world["token"]), check=1)
    assert_one_line_refusal(proc, "this is an activation token, not a renewal code")
    assert "verifier install" in proc.stderr


def test_issuer_activate_given_a_renewal_code_names_it_and_the_command_that_takes_it(world: dict[str, object], tmp_path: Path) -> None:
    home, token = world["home"], str(world["token"])
    assert isinstance(home, Path)
    store = tmp_path / "license.token"
    store.write_text(token + "\n")
    renewal = cli("verifier", "renew", "--offline", "--force", *_panel(world, store), cwd=tmp_path).stdout.strip()
    proc = cli("issuer", "activate", renewal, cwd=home, check=1)
    assert_one_line_refusal(proc, "this is a renewal code, not an activation request code: 'issuer renew' takes it")
    assert "not supported" not in proc.stderr
    # The panel's side: a renewal code is not the token to install either.
    proc = cli("verifier", "install", renewal, *_panel(world, tmp_path / "t"), cwd=tmp_path, check=2)
    assert_one_line_refusal(proc, "this is a renewal code (what 'verifier renew --offline' prints", code=2)
    # ... and a request code quoted in a reply still reads as one: 'issuer activate' takes it.
    quoted = _mailed(str(world["request"]), "> ")
    assert cli("issuer", "activate", quoted, cwd=home).stdout.count(".") == 2


def test_revocation_list_and_token_given_to_each_others_command(world: dict[str, object], tmp_path: Path) -> None:
    home = world["home"]
    assert isinstance(home, Path)
    listed = cli("issuer", "revocations", "export", cwd=home).stdout.strip()
    proc = cli("verifier", "install", listed, *_panel(world, tmp_path / "t"), cwd=tmp_path, check=2)
    assert_one_line_refusal(proc, "this is a revocation list: 'verifier revocations install' takes it", code=2)
    proc = cli("verifier", "revocations", "install", "-", *_panel(world, tmp_path / "t"), cwd=tmp_path,
               input=str(world["token"]), check=2)
    assert_one_line_refusal(proc, "this is an activation token: 'verifier install' takes it", code=2)
