"""Refusals a script and a person can act on: JSON on stdout with --json, words that name the fix.

Every command that takes ``--json`` still exits 1 with one line on stderr when
it refuses, and prints exactly one JSON object on stdout with at least ``code``
and ``detail``; the walk below covers every such command of keytool, issuer
and verifier (and a new one without a case here fails the walk).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import pytest
import typer.main
from clirun import assert_one_line_refusal, cli, provider_home
from support import PRODUCT, serve_in_background

from issuer.cli import app as issuer_app
from keytool.cli import app as keytool_app
from verifier.cli import build_parser


def _typer_json_commands(app: typer.Typer, tool: str) -> set[str]:
    def walk(command: Any, path: tuple[str, ...]) -> set[str]:
        children = getattr(command, "commands", None)
        if children:
            return set().union(*(walk(child, (*path, name)) for name, child in children.items()))
        takes_json = any("--json" in getattr(p, "opts", ()) for p in command.params)
        return {" ".join((tool, *path))} if takes_json else set()

    return walk(typer.main.get_command(app), ())


def _argparse_json_commands(parser: argparse.ArgumentParser, path: tuple[str, ...]) -> set[str]:
    found: set[str] = set()
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                found |= _argparse_json_commands(sub, (*path, name))
    if not found and any("--json" in a.option_strings for a in parser._actions):
        found.add(" ".join(path))
    return found


JSON_COMMANDS = (
    _typer_json_commands(keytool_app, "keytool")
    | _typer_json_commands(issuer_app, "issuer")
    | _argparse_json_commands(build_parser(), ("verifier",))
)

# One refusal for each command, run in a folder without keys, ledger or trust file
# (unless the case makes them): the arguments after the command's name.
MISSING = "missing-file.txt"
CASES: dict[str, tuple[str, ...]] = {
    "keytool new": ("--passphrase-file", MISSING),
    "keytool list": (),
    "keytool rotate": (),
    "keytool revoke": ("0123456789abcdef",),
    "keytool export": (),
    "issuer init": ("--name", "acme"),
    "issuer license create": ("--product", PRODUCT),
    "issuer license show": ("LIC-NOPE",),
    "issuer license list": (),
    "issuer license regenerate": ("LIC-NOPE",),
    "issuer license revoke": ("LIC-NOPE", "--yes"),
    "issuer license set": ("LIC-NOPE", "--customer", "x"),
    "issuer license history": ("LIC-NOPE",),
    "issuer activate": ("LICET1.xyz",),
    "issuer renew": ("LICET1R.xyz",),
    "issuer revocations export": (),
    "issuer ledger copy": ("--from", "ledger", "--to", "copy"),
    "issuer ratelimit list": (),
    "issuer ratelimit clear": (),
    "issuer admin user list": (),
    "issuer admin token create": ("billing", "--scope", "read"),
    "issuer admin token list": (),
    "issuer webhook add": ("https://billing.example/hook",),
    "issuer webhook list": (),
    "issuer webhook deliveries": ("WH-NOPE",),
    "issuer webhook rotate-secret": ("WH-NOPE",),
    "verifier fingerprint": ("--product", PRODUCT, "--machine-id", " "),  # bad input: exit 2
    "verifier request": ("--product", PRODUCT, "--key", "AAAA-BBBB-CCCC-DDDD-EEEE-FFFF"),
    "verifier install": ("eyJ.x.y", "--product", PRODUCT, "--trusted-keys", MISSING),
    "verifier status": ("--product", PRODUCT, "--trusted-keys", MISSING),
    "verifier activate": ("--server", "http://127.0.0.1:9", "--product", PRODUCT, "--trusted-keys", MISSING),
    "verifier renew": ("--offline", "--product", PRODUCT, "--trusted-keys", MISSING),
    "verifier revocations install": ("list.txt", "--product", PRODUCT, "--trusted-keys", MISSING),
}


def test_every_command_with_json_has_a_refusal_case() -> None:
    assert set(CASES) == JSON_COMMANDS


@pytest.mark.parametrize("command", sorted(CASES))
def test_a_refusal_with_json_exits_1_with_one_json_object_and_one_stderr_line(command: str, tmp_path: Path) -> None:
    tool, *words = command.split()
    (tmp_path / "list.txt").write_text("not a list\n")
    exit_code = 2 if command == "verifier fingerprint" else 1
    proc = cli(tool, *words, *CASES[command], "--json", cwd=tmp_path, check=None)
    assert proc.returncode == exit_code, (proc.returncode, proc.stdout, proc.stderr)
    document = json.loads(proc.stdout)  # exactly one JSON document: json.loads refuses trailing data
    assert isinstance(document, dict), document
    assert isinstance(document["code"], str) and document["code"], document
    assert isinstance(document["detail"], str) and document["detail"], document
    line = proc.stderr.strip()
    assert len(line.splitlines()) == 1 and "Traceback" not in line, proc.stderr
    assert " ".join(document["detail"].split()) in line, (document, line)
    # Without --json the same refusal prints nothing on stdout.
    plain = cli(tool, *words, *CASES[command], cwd=tmp_path, check=None)
    assert plain.returncode == exit_code and plain.stdout == "" and plain.stderr == proc.stderr, plain


def test_bad_usage_with_json_is_json_too_and_keeps_exit_2(tmp_path: Path) -> None:
    proc = cli("issuer", "license", "show", "--json", "--no-such-option", cwd=tmp_path, check=2)
    document = json.loads(proc.stdout)
    assert document["code"] == "usage" and "--no-such-option" in document["detail"]
    proc = cli("verifier", "install", "--json", cwd=tmp_path, check=2)
    assert json.loads(proc.stdout)["code"] == "usage"
    assert proc.stderr.startswith("verifier install: "), proc.stderr


def test_refusal_json_carries_the_errors_data(tmp_path: Path) -> None:
    home = provider_home(tmp_path, ("--product", PRODUCT))
    lid = json.loads(cli("issuer", "license", "list", "--json", cwd=home).stdout)[0]["license_id"]
    cli("issuer", "license", "regenerate", lid, cwd=home)
    proc = cli("issuer", "license", "regenerate", lid, "--json", cwd=home, check=1)
    document = json.loads(proc.stdout)
    assert document["code"] == "regeneration-too-soon" and document["allowed_from"], document
    assert_one_line_refusal(proc, "regenerat")


def _request_for(home: Path, key: str, machine_id: str) -> str:
    return cli("verifier", "request", "--product", PRODUCT, "--key", key, "--machine-id", machine_id, cwd=home).stdout.strip()


def test_a_superseded_key_tells_the_provider_which_regeneration_replaced_it_and_a_panel_nothing(tmp_path: Path) -> None:
    import datetime as dt
    import urllib.error
    import urllib.request

    from servers import LicenseServer

    from verifier.timefmt import format_utc

    home = provider_home(tmp_path, ("--product", PRODUCT))
    lid = json.loads(cli("issuer", "license", "list", "--json", cwd=home).stdout)[0]["license_id"]
    old_key = json.loads(cli("issuer", "license", "show", lid, "--json", cwd=home).stdout)["activation_key"]
    cli("issuer", "license", "regenerate", lid, cwd=home)
    history = json.loads(cli("issuer", "license", "history", lid, "--json", cwd=home).stdout)
    (regenerated,) = [e for e in history if e["action"] == "regenerated"]
    when = format_utc(dt.datetime.fromisoformat(regenerated["at"].replace("Z", "+00:00")))
    code = _request_for(home, old_key, "old-box")

    proc = cli("issuer", "activate", code, cwd=home, check=1)
    assert_one_line_refusal(proc, f"this activation key of license {lid} was replaced by a regeneration on {when}")
    assert "current key is generation 2" in proc.stderr

    # An anonymous client of the license server learns nothing about the license.
    server = LicenseServer(home)
    try:
        request = urllib.request.Request(server.url + "/v1/activations", data=json.dumps({"request_code": code}).encode(),
                                         headers={"Content-Type": "application/json"}, method="POST")
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(request, timeout=10)
        problem = json.loads(refused.value.read())
    finally:
        server.stop()
    assert problem["code"] == "invalid-activation-key" and problem["detail"] == "invalid activation key", problem
    assert lid not in json.dumps(problem) and "regenerat" not in json.dumps(problem)


def _typer_commands_with(app: typer.Typer, tool: str, flags: set[str]) -> set[str]:
    def walk(command: Any, path: tuple[str, ...]) -> set[str]:
        children = getattr(command, "commands", None)
        if children:
            return set().union(*(walk(child, (*path, name)) for name, child in children.items()))
        takes = any(flags & set(getattr(p, "opts", ())) for p in command.params)
        return {" ".join((tool, *path))} if takes else set()

    return walk(typer.main.get_command(app), ())


# The other arguments each command needs to get as far as reading the file.
SECRET_FILE_CASES: dict[str, tuple[str, ...]] = {
    "keytool new": ("--keys", "fresh-keys", "--passphrase-file"),
    "keytool rotate": ("--passphrase-file",),
    "issuer activate": ("LICET1.xyz", "--passphrase-file"),
    "issuer renew": ("LICET1R.xyz", "--passphrase-file"),
    "issuer revocations export": ("--passphrase-file",),
    "issuer serve": ("--port", "1", "--passphrase-file"),
    "issuer admin user add": ("alice", "--password-file"),
}


def test_a_password_or_passphrase_file_that_does_not_exist_is_no_such_file(tmp_path: Path) -> None:
    flags = {"--password-file", "--passphrase-file"}
    assert set(SECRET_FILE_CASES) == _typer_commands_with(keytool_app, "keytool", flags) | _typer_commands_with(
        issuer_app, "issuer", flags
    )
    home = provider_home(tmp_path)
    for command, args in SECRET_FILE_CASES.items():
        tool, *words = command.split()
        proc = cli(tool, *words, *args, str(home / "nowhere.txt"), cwd=home, check=None)
        assert proc.returncode in (1, 2), (command, proc)
        line = proc.stderr.strip()
        assert len(line.splitlines()) == 1 and "no such file" in line, (command, line)
        assert "folder" not in line and "Traceback" not in line, (command, line)


@pytest.mark.parametrize("value", ["31.12.2027", "2027-12-31T00:00", "2027-1-5", "tomorrow"])
def test_an_expires_date_of_another_shape_says_expected_yyyy_mm_dd(value: str, tmp_path: Path) -> None:
    home = provider_home(tmp_path, ("--product", PRODUCT))
    lid = json.loads(cli("issuer", "license", "list", "--json", cwd=home).stdout)[0]["license_id"]
    for args in (("license", "create", "--product", PRODUCT), ("license", "set", lid)):
        proc = cli("issuer", *args, "--expires", value, cwd=home, check=2)
        assert_one_line_refusal(proc, "expected YYYY-MM-DD", code=2)
        assert "%" not in proc.stderr, proc.stderr
    assert len(json.loads(cli("issuer", "license", "list", "--json", cwd=home).stdout)) == 1  # nothing created


def _every_command(app: typer.Typer, tool: str) -> list[tuple[str, ...]]:
    def walk(command: Any, path: tuple[str, ...]) -> list[tuple[str, ...]]:
        children = getattr(command, "commands", None)
        if children:
            return [(*path,), *(c for name, child in children.items() for c in walk(child, (*path, name)))]
        return [path]

    return [(tool, *path) for path in walk(typer.main.get_command(app), ())]


def test_no_help_shows_a_python_format_or_a_type_name_for_a_flag(tmp_path: Path) -> None:
    commands = [*_every_command(keytool_app, "keytool"), *_every_command(issuer_app, "issuer")]
    assert ("issuer", "license", "create") in commands and ("keytool",) in commands
    for tool, *words in commands:
        shown = cli(tool, *words, "--help", cwd=tmp_path).stdout
        assert "Usage" in shown, (tool, words)
        for bad in ("<%Y-%m-%d>", "%Y", "<bool>", "<datetime>"):
            assert bad not in shown, (tool, words, bad, shown)
    create = cli("issuer", "license", "create", "--help", cwd=tmp_path).stdout
    assert "--expires YYYY-MM-DD" in create and "--json " in create


def test_license_create_without_days_or_expires_says_it_never_expires(tmp_path: Path) -> None:
    home = provider_home(tmp_path)
    forever = cli("issuer", "license", "create", "--product", PRODUCT, cwd=home).stdout
    assert "this license never expires: neither --days nor --expires was given" in forever
    dated = cli("issuer", "license", "create", "--product", PRODUCT, "--days", "30", cwd=home).stdout
    assert "never expires" not in dated
    assert "never" not in json.dumps(json.loads(cli("issuer", "license", "create", "--product", PRODUCT, "--json", cwd=home).stdout))


def test_an_encrypted_key_used_without_its_passphrase_says_how_to_give_it(tmp_path: Path) -> None:
    secret = tmp_path / "passphrase"
    secret.write_text("a long enough passphrase\n")
    cli("keytool", "new", "--passphrase-file", str(secret), cwd=tmp_path)
    cli("keytool", "export", cwd=tmp_path)
    cli("issuer", "init", "--name", "acme", cwd=tmp_path)
    cli("issuer", "license", "create", "--product", PRODUCT, cwd=tmp_path)
    proc = cli("issuer", "revocations", "export", cwd=tmp_path, check=1)
    assert_one_line_refusal(proc, "is encrypted — give its passphrase")
    for way in ("--passphrase-file", "LICET_KEY_PASSPHRASE_FILE", "LICET_KEY_PASSPHRASE"):
        assert way in proc.stderr, proc.stderr
    cli("issuer", "revocations", "export", cwd=tmp_path, env={"LICET_KEY_PASSPHRASE_FILE": str(secret)})


@pytest.mark.parametrize(
    "body",
    [b"<html>Not Found</html>", b'{"detail": "Not Found"}', b'{"type": "about:blank", "title": "Not Found", "status": 404, "code": "not-found", "detail": "Not Found"}'],
    ids=["html", "json", "the-licet-console"],
)
def test_activate_against_something_that_is_not_a_license_server_says_so_and_names_the_port(body: bytes, tmp_path: Path) -> None:
    import http.server

    class NotALicenseServer(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            self.send_response(404)
            self.send_header("Content-Type", "application/json" if body.startswith(b"{") else "text/html")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    home = provider_home(tmp_path, ("--product", PRODUCT))
    lid = json.loads(cli("issuer", "license", "list", "--json", cwd=home).stdout)[0]["license_id"]
    key = json.loads(cli("issuer", "license", "show", lid, "--json", cwd=home).stdout)["activation_key"]
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), NotALicenseServer)
    serve_in_background(server)
    url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        proc = cli("verifier", "activate", "--server", url, "--key", key, "--product", PRODUCT,
                   "--trusted-keys", str(home / "keys" / "trusted_keys.json"), "--machine-id", "box",
                   "--store", str(tmp_path / "t"), cwd=tmp_path, check=1)
    finally:
        server.shutdown()
        server.server_close()
    assert_one_line_refusal(proc, f"{url} is not a licet license server (HTTP 404 for /v1/activations)")
    assert "port 8470" in proc.stderr
    assert not (tmp_path / "t").exists()


def test_the_licet_umbrella_refuses_in_json_like_the_tools(tmp_path: Path) -> None:
    proc = cli("licet", "issuer", "license", "show", "LIC-NOPE", "--json", cwd=tmp_path, check=1)
    assert json.loads(proc.stdout)["code"] == "ledger-missing"
    assert proc.stderr.startswith("licet issuer: ") and len(proc.stderr.strip().splitlines()) == 1
    proc = cli("licet", "nosuchtool", "--json", cwd=tmp_path, check=2)
    document = json.loads(proc.stdout)
    assert document["code"] == "usage" and document["detail"] in proc.stderr


def test_renew_against_something_that_is_not_a_license_server_says_so(tmp_path: Path) -> None:
    import http.server

    class NotFound(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_error(404)

        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            self.send_error(404)

        def log_message(self, *args: Any) -> None:
            pass

    from verifier.errors import ServerUnavailableError
    from verifier.wire import fetch_revocations, post_json

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), NotFound)
    serve_in_background(server)
    url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        with pytest.raises(ServerUnavailableError, match=r"is not a licet license server .*/v1/renewals.*port 8470"):
            post_json(url, "/v1/renewals", {"renewal_code": "x"}, 5)

        class Holder:
            revocations = None

            def apply_revocations(self, text: object) -> Any:
                raise AssertionError("nothing to apply")

        with pytest.raises(ServerUnavailableError, match=r"is not a licet license server .*/v1/revocations"):
            fetch_revocations(url, Holder(), timeout=5)
    finally:
        server.shutdown()
        server.server_close()


def test_activate_against_the_console_by_mistake_names_the_license_servers_port(tmp_path: Path) -> None:
    from consoles import ConsoleServer

    home = provider_home(tmp_path, ("--product", PRODUCT))
    lid = json.loads(cli("issuer", "license", "list", "--json", cwd=home).stdout)[0]["license_id"]
    key = json.loads(cli("issuer", "license", "show", lid, "--json", cwd=home).stdout)["activation_key"]
    console = ConsoleServer(home)
    try:
        proc = cli("verifier", "activate", "--server", console.url, "--key", key, "--product", PRODUCT,
                   "--trusted-keys", str(home / "keys" / "trusted_keys.json"), "--machine-id", "box",
                   "--store", str(tmp_path / "t"), cwd=tmp_path, check=1)
    finally:
        console.stop()
    assert_one_line_refusal(proc, "is not a licet license server")
    assert "port 8470" in proc.stderr


def test_status_json_of_a_server_that_may_not_run_has_code_and_detail_too(tmp_path: Path) -> None:
    home = provider_home(tmp_path)
    trust = ("--product", PRODUCT, "--trusted-keys", str(home / "keys" / "trusted_keys.json"), "--machine-id", "box")
    missing = json.loads(cli("verifier", "status", *trust, "--store", str(tmp_path / "none"), "--json", cwd=tmp_path, check=1).stdout)
    assert (missing["state"], missing["code"]) == ("missing", "token-missing") and missing["detail"] == missing["reason"]
    (tmp_path / "bad").write_text("eyJhbGciOiJFZERTQSJ9.e30.AAAA\n")
    invalid = json.loads(cli("verifier", "status", *trust, "--store", str(tmp_path / "bad"), "--json", cwd=tmp_path, check=1).stdout)
    assert invalid["state"] == "invalid" and invalid["code"] and invalid["detail"] == invalid["reason"], invalid
