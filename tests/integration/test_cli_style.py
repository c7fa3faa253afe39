"""One command-line style across keytool, issuer and verifier, checked on the installed scripts.

-h/--help and --version on every command, help text with its default on every
option, --json that parses on every command that prints, exit 2 for every bad
usage, ISO 8601 UTC to the second in every output, the verifier's LICET_*
variables, confirmation of destructive commands, and `license list`.
"""

from __future__ import annotations

import argparse
import json
import os
import pty
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import typer.main
from clirun import cli, provider_home, script
from servers import LicenseServer

from issuer.cli import app as issuer_app
from keytool.cli import app as keytool_app
from verifier import __version__
from verifier.cli import build_parser

ISO_UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")


def _typer_commands(app: typer.Typer, tool: str) -> Iterator[tuple[Any, ...]]:
    def walk(command: Any, path: tuple[str, ...]) -> Iterator[tuple[Any, ...]]:
        subcommands = getattr(command, "commands", None)
        if subcommands:
            for name, sub in sorted(subcommands.items()):
                yield from walk(sub, (*path, name))
        else:
            yield (tool, *path), command

    yield from walk(typer.main.get_command(app), ())


def _argparse_commands() -> Iterator[tuple[tuple[str, ...], argparse.ArgumentParser]]:
    parser = build_parser()
    (subparsers,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    for name, sub in sorted(subparsers.choices.items()):
        yield ("verifier", name), sub


COMMANDS = [
    *(path for path, _ in _typer_commands(keytool_app, "keytool")),
    *(path for path, _ in _typer_commands(issuer_app, "issuer")),
    *(path for path, _ in _argparse_commands()),
]


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_every_command_takes_help_h_and_version(command: tuple[str, ...], tmp_path: Path) -> None:
    tool, *rest = command
    for flag in ("--help", "-h"):
        shown = cli(tool, *rest, flag, cwd=tmp_path)
        assert "usage" in shown.stdout.lower() and rest[-1] in shown.stdout, shown.stdout
    version = cli(tool, *rest, "--version", cwd=tmp_path)
    assert version.stdout.strip() == f"{tool} (licet) {__version__}"
    assert cli(tool, "--version", cwd=tmp_path).stdout.strip() == f"{tool} (licet) {__version__}"


@pytest.mark.parametrize(
    "command, params",
    [*_typer_commands(keytool_app, "keytool"), *_typer_commands(issuer_app, "issuer")],
    ids=lambda v: " ".join(v) if isinstance(v, tuple) else "",
)
def test_every_typer_option_has_help_that_states_its_default(command: tuple[str, ...], params: Any) -> None:
    for param in params.params:
        if param.param_type_name != "option":
            continue
        assert param.help, (command, param.name)
        if param.is_flag or param.required:
            continue
        # Either typer prints "[default: X]" (a real default) or the help says what none means.
        assert param.default is not None or "default" in param.help.lower(), (command, param.name, param.help)


@pytest.mark.parametrize("command, parser", list(_argparse_commands()), ids=lambda v: " ".join(v) if isinstance(v, tuple) else "")
def test_every_verifier_option_has_help_that_states_its_default(command: tuple[str, ...], parser: argparse.ArgumentParser) -> None:
    for action in parser._actions:
        if not action.option_strings or action.dest in ("help", "version"):
            continue
        assert action.help, (command, action.dest)
        if isinstance(action, argparse._StoreTrueAction):
            continue
        text = action.help.lower()
        assert "default" in text or "required" in text or action.required, (command, action.dest, action.help)


def _times(data: Any) -> Iterator[tuple[str, Any]]:
    if isinstance(data, dict):
        for key, value in data.items():
            # A history entry's "changes" maps a field name to its {before, after}: walk into it.
            if (key.endswith("_at") or key in ("next_regeneration", "at")) and not isinstance(value, dict):
                yield key, value
            yield from _times(value)
    elif isinstance(data, list):
        for item in data:
            yield from _times(item)


def _json(tool: str, *args: str, cwd: Path, env: dict[str, str] | None = None) -> Any:
    proc = cli(tool, *args, "--json", cwd=cwd, env=env)
    data = json.loads(proc.stdout)
    for key, value in _times(data):
        assert value is None or ISO_UTC.match(value), (tool, args, key, value)
    return data


def test_every_command_that_prints_takes_json_with_iso_utc_times(tmp_path: Path) -> None:
    home = tmp_path / "provider"
    home.mkdir()
    assert _json("keytool", "new", cwd=home)["status"] == "active"
    first = _json("keytool", "rotate", cwd=home)
    assert first["status"] == "active" and first["retired"]
    listed = _json("keytool", "list", cwd=home)
    assert [k["status"] for k in listed] == ["retired", "active"]
    retired = next(k["kid"] for k in listed if k["status"] == "retired")
    assert _json("keytool", "revoke", retired, cwd=home)["status"] == "revoked"
    assert _json("keytool", "export", cwd=home)["kids"]
    assert _json("issuer", "init", "--name", "acme", cwd=home)["provider"] == "acme"
    created = _json("issuer", "license", "create", "--product", "ispmanager", "--days", "30", "--customer", "Bob", cwd=home)
    lid, key = created["license_id"], created["activation_key"]
    assert _json("issuer", "license", "show", lid, cwd=home)["license_id"] == lid
    assert [row["license_id"] for row in _json("issuer", "license", "list", cwd=home)] == [lid]

    panel = tmp_path / "panel"
    panel.mkdir()
    trust = str(home / "keys" / "trusted_keys.json")
    common = ("--product", "ispmanager", "--trusted-keys", trust, "--machine-id", "box")
    fp = _json("verifier", "fingerprint", "--product", "ispmanager", "--machine-id", "box", cwd=panel)
    assert fp["fingerprint"] and fp["components"]
    code = _json("verifier", "request", "--product", "ispmanager", "--key", key, "--machine-id", "box", cwd=panel)["request_code"]
    token = _json("issuer", "activate", code, cwd=home)["token"]
    assert _json("verifier", "install", token, *common, cwd=panel)["license_id"] == lid
    status = _json("verifier", "status", *common, cwd=panel)
    assert status["state"] == "valid" and status["license_id"] == lid

    regenerated = _json("issuer", "license", "regenerate", lid, cwd=home)
    server = LicenseServer(home)
    try:
        online = _json("verifier", "activate", "--server", server.url, "--key", regenerated["activation_key"],
                       "--product", "ispmanager", "--trusted-keys", trust, "--machine-id", "other", "--store", "other.token", cwd=panel)
    finally:
        server.stop()
    assert online["license_id"] == lid and online["how"] == "activated manually"
    assert _json("issuer", "license", "revoke", lid, cwd=home)["status"] == "revoked"


def test_status_json_is_json_even_when_the_check_cannot_run(tmp_path: Path, home: Path) -> None:
    trust = str(home / "keys" / "trusted_keys.json")
    missing = cli("verifier", "status", "--product", "ispmanager", "--trusted-keys", trust, "--json", cwd=tmp_path, check=1)
    data = json.loads(missing.stdout)
    assert data["state"] == "missing" and data["code"] == "token-missing"
    assert str(tmp_path / "licet-ispmanager.token") in data["reason"]
    no_trust = cli("verifier", "status", "--product", "ispmanager", "--trusted-keys", "nope.json", "--json", cwd=tmp_path, check=1)
    data = json.loads(no_trust.stdout)
    assert data["state"] == "error" and data["code"] == "trusted-keys-missing"
    assert str(tmp_path / "nope.json") in data["reason"]


EXIT_CODES = [
    # (tool, args, exit code): every bad usage is 2, a refusal 1.
    ("issuer", ["license", "create", "--product", "p", "--limit", "domains"], 2),
    ("issuer", ["license", "create", "--product", "p", "--limit", "domains=-1"], 2),
    ("issuer", ["license", "create", "--product", "p", "--days", "x"], 2),
    ("issuer", ["license", "create", "--product", "p", "--days", "0"], 2),
    ("issuer", ["license", "create", "--product", "p", "--days", "99999999"], 2),
    ("issuer", ["license", "create", "--product", "p", "--ip", "999.1.1.1"], 2),
    ("issuer", ["license", "create", "--product", "p", "--expires", "2020-13-01"], 2),
    ("issuer", ["license", "create", "--product", "bad name"], 2),
    ("issuer", ["license", "create"], 2),
    ("issuer", ["license", "frobnicate"], 2),
    ("issuer", ["license", "list", "--no-such-option"], 2),
    ("issuer", ["serve", "--port", "http"], 2),
    ("issuer", ["license", "show", "LIC-NOPE"], 1),
    ("issuer", ["activate", "LICET1.garbage"], 1),
    ("issuer", ["license", "list"], 0),
    ("keytool", ["revoke"], 2),
    ("keytool", ["new", "--bogus"], 2),
    ("keytool", ["revoke", "feedfacefeedface"], 1),
    ("keytool", ["list"], 0),
    ("verifier", ["status", "--trusted-keys", "keys/trusted_keys.json"], 2),
    ("verifier", ["activate", "--server", "http://127.0.0.1:9", "--product", "p", "--trusted-keys", "keys/trusted_keys.json", "--callback-port", "x"], 2),
    ("verifier", ["request", "--product", "ispmanager", "--key", "not-a-key"], 1),  # a typo in a key is refused
    ("verifier", ["install", "LICET1.abc", "--product", "p", "--trusted-keys", "keys/trusted_keys.json"], 2),
    ("verifier", ["install", "a.b.c", "--product", "ispmanager", "--trusted-keys", "keys/trusted_keys.json"], 1),
    ("verifier", ["frobnicate"], 2),
]


@pytest.mark.parametrize("tool, args, code", EXIT_CODES, ids=lambda v: " ".join(v) if isinstance(v, list) else str(v))
def test_exit_code_table(tool: str, args: list[str], code: int, home: Path) -> None:
    proc = cli(tool, *args, cwd=home, check=None)
    assert proc.returncode == code, proc
    assert "Traceback" not in proc.stderr
    if code:
        assert proc.stderr.strip(), proc


def test_verifier_reads_its_environment_variables(tmp_path: Path, home: Path) -> None:
    created = json.loads(cli("issuer", "license", "create", "--product", "ispmanager", "--json", cwd=home).stdout)
    env = {
        "LICET_PRODUCT": "ispmanager",
        "LICET_TRUSTED_KEYS": str(home / "keys" / "trusted_keys.json"),
        "LICET_STORE": str(tmp_path / "panel.token"),
        "LICET_MACHINE_ID": "env-box",
    }
    code = cli("verifier", "request", "--key", created["activation_key"], cwd=tmp_path, env=env).stdout.strip()
    token = cli("issuer", "activate", code, cwd=home).stdout.strip()
    cli("verifier", "install", token, cwd=tmp_path, env=env)
    assert (tmp_path / "panel.token").read_text().strip() == token
    status = json.loads(cli("verifier", "status", "--json", cwd=tmp_path, env=env).stdout)
    assert status["state"] == "valid" and status["license_id"] == created["license_id"]
    # The machine id came from LICET_MACHINE_ID: another one is another server.
    other = cli("verifier", "status", "--json", "--machine-id", "elsewhere", cwd=tmp_path, env=env, check=1)
    assert json.loads(other.stdout)["state"] == "wrong_server"


def _on_terminal(args: list[str], answer: str, cwd: Path) -> tuple[int, str]:
    """Run a command with a pseudo-terminal as stdin, answering its question."""
    controller, terminal = pty.openpty()
    env = {k: v for k, v in os.environ.items() if not k.startswith("LICET_")}
    proc = subprocess.Popen(args, cwd=cwd, stdin=terminal, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, text=True)
    os.close(terminal)
    os.write(controller, answer.encode() + b"\n")
    out, err = proc.communicate(timeout=60)
    os.close(controller)
    return proc.returncode, out + err


def test_destructive_commands_ask_on_a_terminal_and_take_yes(tmp_path: Path) -> None:
    home = provider_home(tmp_path, ("--product", "ispmanager", "--customer", "Bob"))
    lid = json.loads(cli("issuer", "license", "list", "--json", cwd=home).stdout)[0]["license_id"]
    show = ["issuer", "license", "show", lid, "--json"]

    code, said = _on_terminal([script("issuer"), "license", "revoke", lid], "n", home)
    assert code == 1 and f"Revoke license {lid} of Bob (ispmanager)?" in said and "nothing was changed" in said
    assert json.loads(cli(*show, cwd=home).stdout)["status"] == "issued"
    code, said = _on_terminal([script("issuer"), "license", "revoke", lid], "y", home)
    assert code == 0 and f"revoked {lid}" in said
    assert json.loads(cli(*show, cwd=home).stdout)["status"] == "revoked"

    active = json.loads(cli("keytool", "list", "--json", cwd=home).stdout)[0]["kid"]
    code, said = _on_terminal([script("keytool"), "revoke", active], "", home)
    assert code == 1 and "is the active signing key" in said
    assert json.loads(cli("keytool", "list", "--json", cwd=home).stdout)[0]["status"] == "active"
    code, said = _on_terminal([script("keytool"), "revoke", active, "--yes"], "", home)
    assert code == 0 and "revoked key" in said and "active signing key" not in said


def test_license_list_has_a_header_and_hides_keys_unless_asked(tmp_path: Path) -> None:
    home = provider_home(tmp_path, ("--product", "ispmanager", "--customer", "Bob's VPS", "--expires", "2099-12-31"))
    (row,) = json.loads(cli("issuer", "license", "list", "--json", cwd=home).stdout)
    assert "activation_key" not in row
    key = json.loads(cli("issuer", "license", "show", row["license_id"], "--json", cwd=home).stdout)["activation_key"]
    lines = cli("issuer", "license", "list", cwd=home).stdout.splitlines()
    assert lines[0].split() == ["LICENSE", "PRODUCT", "CUSTOMER", "STATUS", "LAST", "DAY", "HOST"]
    assert row["license_id"] in lines[1] and "Bob's VPS" in lines[1] and "issued" in lines[1]
    assert "2099-12-31" in lines[1] and "2100-01-01" not in lines[1]
    assert key not in "\n".join(lines)
    shown = cli("issuer", "license", "list", "--show-keys", cwd=home).stdout
    assert shown.splitlines()[0].endswith("ACTIVATION KEY") and key in shown
    assert json.loads(cli("issuer", "license", "list", "--show-keys", "--json", cwd=home).stdout)[0]["activation_key"] == key
