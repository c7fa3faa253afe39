"""Every console command once through its installed script, in a real subprocess.

Most CLI tests run a command's options and refusals in-process
(``clirun.cli``); this walk is what proves the installed scripts themselves:
the entry points, argument parsing, exit codes, stdout and stderr, the
environment variables. Each walk ends by comparing the commands it ran with
the commands the CLI has, so a new command without an end-to-end run fails here.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest
from clirun import cli, provider_home
from consoles import ConsoleServer
from servers import LicenseServer
from support import PRODUCT

pytestmark = pytest.mark.e2e


class Walk:
    """Runs commands through the installed scripts and remembers which ones ran."""

    def __init__(self, tool: str) -> None:
        self.tool = tool
        self.ran: set[str] = set()

    def __call__(self, command: str, *args: str, cwd: Path, **kwargs: object) -> str:
        proc = cli(self.tool, *command.split(), *args, cwd=cwd, process=True, **kwargs)  # type: ignore[arg-type]
        self.ran.add(command)
        assert "Traceback" not in proc.stderr, proc.stderr
        return proc.stdout

    def covered(self, commands: set[str]) -> None:
        assert self.ran == commands, f"not run end to end: {sorted(commands - self.ran)}"


def typer_commands(app: object) -> set[str]:
    import typer

    def walk(command: object, prefix: tuple[str, ...]) -> set[str]:
        children = getattr(command, "commands", None)
        if not children:
            return {" ".join(prefix)}
        return set().union(*(walk(child, (*prefix, name)) for name, child in children.items()))

    return walk(typer.main.get_command(app), ())  # type: ignore[arg-type]


def argparse_commands(parser: argparse.ArgumentParser, prefix: tuple[str, ...] = ()) -> set[str]:
    found: set[str] = set()
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                found |= argparse_commands(sub, (*prefix, name)) or {" ".join((*prefix, name))}
    return found


def test_every_keytool_command_runs_from_the_installed_script(tmp_path: Path) -> None:
    from keytool.cli import app

    run = Walk("keytool")
    first = json.loads(run("new", "--json", cwd=tmp_path))
    run("export", cwd=tmp_path)
    assert (tmp_path / "keys" / "trusted_keys.json").exists()
    second = json.loads(run("rotate", "--json", cwd=tmp_path))
    assert second["kid"] != first["kid"]
    run("revoke", first["kid"], "--yes", cwd=tmp_path)
    listed = json.loads(run("list", "--json", cwd=tmp_path))
    assert {k["kid"]: k["status"] for k in listed}[first["kid"]] == "revoked"
    assert cli("licet", "keytool", "list", cwd=tmp_path, process=True).stdout.count("\n") >= 2
    run.covered(typer_commands(app))


# The issuer's commands run in four walks, each in a provider folder of its own,
# so xdist can spread the ~40 subprocesses over its workers; the walks together
# must run every command the CLI defines (test_the_issuer_walks_cover_every_command).
ISSUER_WALKS: dict[str, set[str]] = {
    "licenses": {"init", "license create", "activate", "renew", "license show", "license list", "license set",
                 "license history", "license regenerate", "license revoke", "revocations export"},
    "ledger-and-accounts": {"ledger copy", "ledger upgrade", "admin user add", "admin user list",
                            "admin user remove", "admin token create", "admin token list", "admin token revoke",
                            "ratelimit list", "ratelimit clear"},
    "webhooks": {"webhook add", "webhook list", "webhook test", "webhook pause", "webhook resume",
                 "webhook rotate-secret", "webhook deliver", "webhook deliveries", "webhook redeliver",
                 "webhook remove"},
    "servers": {"serve", "console"},
}


def issuer_licenses_walk(run: Walk, home: Path) -> None:
    cli("keytool", "new", cwd=home, process=True)
    cli("keytool", "export", cwd=home, process=True)
    run("init", "--name", "acme-hosting", cwd=home)
    created = json.loads(run("license create", "--product", PRODUCT, "--days", "365", "--json", cwd=home))
    lid = created["license_id"]
    other = json.loads(run("license create", "--product", PRODUCT, "--json", cwd=home))
    code = cli("verifier", "request", "--product", PRODUCT, "--key", "-", "--machine-id", "box-1",
               cwd=home, input=created["activation_key"], process=True).stdout.strip()
    token = run("activate", "-", cwd=home, input=code + "\n").strip()
    assert token.count(".") == 2
    (home / "box").mkdir()
    trust = ("--product", PRODUCT, "--trusted-keys", str(home / "keys" / "trusted_keys.json"),
             "--machine-id", "box-1", "--store", str(home / "box" / "t"))
    cli("verifier", "install", token, *trust, cwd=home, process=True)
    renewal = cli("verifier", "renew", "--offline", "--force", *trust, cwd=home, process=True).stdout.strip()
    assert run("renew", "-", cwd=home, input=renewal + "\n").strip().count(".") == 2
    assert json.loads(run("license show", lid, "--json", cwd=home))["license_id"] == lid
    assert {row["license_id"] for row in json.loads(run("license list", "--json", cwd=home))} == {lid, other["license_id"]}
    run("license set", lid, "--customer", "Example Ltd", cwd=home)
    assert any(h["action"] == "activated" for h in json.loads(run("license history", lid, "--json", cwd=home)))
    run("license regenerate", other["license_id"], cwd=home)
    run("license revoke", other["license_id"], "--yes", cwd=home)
    exported = json.loads(run("revocations export", "--json", cwd=home))["revocations"]
    assert exported.count(".") == 2


def setup(name: str, *args: str, cwd: Path, **kwargs: object) -> str:
    """A command that only prepares a walk, run in-process: a walk of its own runs it end to end."""
    return cli(name, *args, cwd=cwd, process=False, **kwargs).stdout  # type: ignore[arg-type]


def activated_and_revoked_home(home: Path) -> Path:
    """A provider folder with an activated license and a revoked one, for the ledger copy."""
    provider_home(home, ("--product", PRODUCT, "--days", "365"), ("--product", PRODUCT), process=False)
    first, second = (row["license_id"] for row in json.loads(setup("issuer", "license", "list", "--json", cwd=home)))
    key = json.loads(setup("issuer", "license", "show", first, "--json", cwd=home))["activation_key"]
    code = setup("verifier", "request", "--product", PRODUCT, "--key", key, "--machine-id", "box-1", cwd=home)
    assert setup("issuer", "activate", code.strip(), cwd=home).count(".") == 2
    setup("issuer", "license", "revoke", second, "--yes", cwd=home)
    return home


def issuer_ledger_and_accounts_walk(run: Walk, home: Path, pg_url: str) -> None:
    activated_and_revoked_home(home)
    run("ledger copy", "--from", "ledger", "--to", pg_url, cwd=home)
    run("ledger upgrade", "--ledger", pg_url, cwd=home)
    run("admin user add", "alice", cwd=home, input="a long enough password\n")
    assert [u["name"] for u in json.loads(run("admin user list", "--json", cwd=home))] == ["alice"]
    run("admin user remove", "alice", cwd=home)
    run("admin token create", "billing", "--scope", "read", cwd=home)
    assert [t["name"] for t in json.loads(run("admin token list", "--json", cwd=home))] == ["billing"]
    run("admin token revoke", "billing", cwd=home)
    assert json.loads(run("ratelimit list", "--json", cwd=home)) == []
    run("ratelimit clear", cwd=home)


def issuer_webhooks_walk(run: Walk, home: Path) -> None:
    provider_home(home, ("--product", PRODUCT), process=False)
    hook = json.loads(run("webhook add", "http://127.0.0.1:9/hooks", "--allow-private", "--json", cwd=home))
    assert [h["id"] for h in json.loads(run("webhook list", "--json", cwd=home))["items"]] == [hook["id"]]
    run("webhook test", hook["id"], cwd=home)
    run("webhook pause", hook["id"], cwd=home)
    run("webhook resume", hook["id"], cwd=home)
    assert json.loads(run("webhook rotate-secret", hook["id"], "--json", cwd=home))["id"] == hook["id"]
    run("webhook deliver", "--once", cwd=home)  # nobody listens on port 9: exit 0 all the same
    queued = json.loads(run("webhook deliveries", hook["id"], "--json", cwd=home))["items"]
    assert queued[0]["attempts"][0]["http_status"] is None and queued[0]["status"] == "pending"
    run("webhook redeliver", queued[0]["delivery_id"], cwd=home)
    run("webhook remove", hook["id"], cwd=home)


def issuer_servers_walk(run: Walk, home: Path) -> None:
    provider_home(home, ("--product", PRODUCT), process=False)
    # The two servers run the installed script too (servers.py, consoles.py).
    server = LicenseServer(home)
    server.stop()
    run.ran.add("serve")
    console = ConsoleServer(home)
    console.stop()
    run.ran.add("console")


@pytest.mark.parametrize("walk", ISSUER_WALKS)
def test_every_issuer_command_runs_from_the_installed_script(walk: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    home = tmp_path / "provider"
    home.mkdir()
    run = Walk("issuer")
    if walk == "licenses":
        issuer_licenses_walk(run, home)
    elif walk == "ledger-and-accounts":
        issuer_ledger_and_accounts_walk(run, home, request.getfixturevalue("pg_url"))
    elif walk == "webhooks":
        issuer_webhooks_walk(run, home)
    else:
        issuer_servers_walk(run, home)
    run.covered(ISSUER_WALKS[walk])


def test_the_issuer_walks_cover_every_command() -> None:
    """A new issuer command without an end-to-end run in one of the walks fails here."""
    from issuer.cli import app

    walked = set().union(*ISSUER_WALKS.values())
    assert walked == typer_commands(app), f"not run end to end: {sorted(typer_commands(app) - walked)}"


def test_every_verifier_command_runs_from_the_installed_script(tmp_path: Path) -> None:
    from verifier.cli import build_parser

    (tmp_path / "provider").mkdir()
    # The issuer's side is prepared in-process: the issuer's walks run it end to end.
    home = provider_home(tmp_path / "provider", ("--product", PRODUCT, "--days", "365"), process=False)
    lid = json.loads(setup("issuer", "license", "list", "--json", cwd=home))[0]["license_id"]
    key = json.loads(setup("issuer", "license", "show", lid, "--json", cwd=home))["activation_key"]
    box = tmp_path / "box"
    box.mkdir()
    env = {"LICET_PRODUCT": PRODUCT, "LICET_TRUSTED_KEYS": str(home / "keys" / "trusted_keys.json"),
           "LICET_MACHINE_ID": "box-1"}
    run = Walk("verifier")
    assert "fingerprint" in run("fingerprint", "--json", cwd=box, env=env)
    code = run("request", "--key", key, cwd=box, env=env).strip()
    token = setup("issuer", "activate", code, cwd=home).strip()
    run("install", token, cwd=box, env=env)
    assert json.loads(run("status", "--json", cwd=box, env=env))["state"] == "valid"
    server = LicenseServer(home)
    try:
        run("renew", "--server", server.url, "--force", cwd=box, env=env)
        setup("issuer", "license", "regenerate", lid, cwd=home)
        fresh = json.loads(setup("issuer", "license", "show", lid, "--json", cwd=home))
        other = tmp_path / "other"
        other.mkdir()
        run("activate", "--server", server.url, "--key", fresh["activation_key"], cwd=other,
            env={**env, "LICET_MACHINE_ID": "box-2"})
    finally:
        server.stop()
    setup("issuer", "revocations", "export", "--out", str(box / "revocations.jwt"), cwd=home)
    run("revocations install", str(box / "revocations.jwt"), cwd=box, env=env)
    run.covered(argparse_commands(build_parser()))


def test_in_process_calls_run_the_entry_points_the_scripts_run() -> None:
    """clirun's in-process calls are only as good as their map to [project.scripts]."""
    import tomllib

    import clirun

    scripts = tomllib.loads((Path(__file__).resolve().parents[2] / "pyproject.toml").read_text())["project"]["scripts"]
    assert {name: target.removesuffix(":main") for name, target in scripts.items()} == clirun._ENTRY_POINTS
