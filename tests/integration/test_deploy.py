"""The deployment files under deploy/: each one's command line and environment run for real.

The systemd unit is checked by `systemd-analyze verify` (skipped where systemd
is not installed) and its ExecStart runs here with its Environment=, the state
folder moved into a temporary one. No container engine runs on the test
machine, so the Dockerfile is not built: its ENV, ENTRYPOINT/CMD and
HEALTHCHECK run against the installed console scripts instead, and what it
copies and installs is checked against the checkout.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
import tomllib
import urllib.request
from pathlib import Path

import pytest
from clirun import cli, script
from servers import LicenseServer

from issuer.cli import DEFAULT_PORT
from verifier.request import request_code

ROOT = Path(__file__).resolve().parents[2]
UNIT = ROOT / "deploy" / "licet-issuer.service"
DOCKERFILE = ROOT / "deploy" / "Dockerfile"
STATE = "/var/lib/licet"
SERVER_PORT = str(DEFAULT_PORT)


def _unit() -> dict[str, list[str]]:
    settings: dict[str, list[str]] = {}
    for raw in UNIT.read_text().splitlines():
        line = raw.strip()
        if line and not line.startswith(("#", "[")):
            key, _, value = line.partition("=")
            settings.setdefault(key, []).append(value)
    return settings


def _dockerfile() -> list[tuple[str, str]]:
    joined = DOCKERFILE.read_text().replace("\\\n", " ")
    lines = [line.strip() for line in joined.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    return [(line.split(None, 1)[0], line.split(None, 1)[1]) for line in lines]


def _served(argv: list[str], port: int) -> list[str]:
    """The deployment's command line, on loopback and a free port (tests listen on 127.0.0.1 only)."""
    out = list(argv)
    assert out[out.index("--host") + 1] == "0.0.0.0"
    assert out[out.index("--port") + 1] == SERVER_PORT
    out[out.index("--host") + 1] = "127.0.0.1"
    out[out.index("--port") + 1] = str(port)
    return out


def _provider_state(tmp_path: Path, env: dict[str, str]) -> str:
    """Keys and ledger made with the CLIs, located only through the deployment's LICET_* variables."""
    for args in (("keytool", "new"), ("keytool", "export"), ("issuer", "init", "--name", "acme")):
        cli(*args, cwd=tmp_path, env=env)
    created = cli("issuer", "license", "create", "--product", "ispmanager", "--json", cwd=tmp_path, env=env)
    return str(json.loads(created.stdout)["activation_key"])


def _activates(url: str, key: str) -> None:
    body = json.dumps({"request_code": request_code("ispmanager", key, machine_id="deployed")}).encode()
    request = urllib.request.Request(
        url + "/v1/activations", data=body, headers={"Content-Type": "application/json"}, method="POST"
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 200
        assert json.loads(response.read())["token"].count(".") == 2


def _clean_env(extra: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LICET_")}
    env.update(extra)
    return env


def test_systemd_unit_is_hardened_and_verifies(tmp_path: Path) -> None:
    unit = _unit()
    hardening = {
        "NoNewPrivileges": "yes", "ProtectSystem": "strict", "ProtectHome": "yes", "PrivateTmp": "yes",
        "PrivateDevices": "yes", "CapabilityBoundingSet": "", "RestrictSUIDSGID": "yes", "UMask": "0077",
        "User": "licet",
    }
    for key, value in hardening.items():
        assert unit.get(key) == [value], key
    assert unit["ReadWritePaths"] == [STATE] and unit["StateDirectory"] == ["licet"]
    assert "@system-service" in unit["SystemCallFilter"]
    assert not any("PASSPHRASE=" in e for e in unit.get("Environment", [])), "no secret in the unit"

    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed here; the structural checks above ran")
    # verify also checks that ExecStart's program exists: point it at this venv's issuer.
    copy = tmp_path / UNIT.name
    copy.write_text(UNIT.read_text().replace("/opt/licet/bin/issuer", script("issuer")))
    proc = subprocess.run([analyze, "verify", str(copy)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and proc.stderr == "" and proc.stdout == "", proc


def test_systemd_units_command_serves_with_its_environment(tmp_path: Path) -> None:
    unit = _unit()
    env = dict(e.split("=", 1) for e in unit["Environment"])
    assert env == {"LICET_KEYS": f"{STATE}/keys", "LICET_LEDGER": f"{STATE}/ledger"}
    state = tmp_path / "state"
    moved = {k: v.replace(STATE, str(state)) for k, v in env.items()}
    key = _provider_state(tmp_path, moved)

    (exec_start,) = unit["ExecStart"]
    argv = shlex.split(exec_start)
    assert argv[0] == "/opt/licet/bin/issuer" and argv[1] == "serve"
    argv[0] = script("issuer")
    elsewhere = tmp_path / "cwd"  # WorkingDirectory is not where the files are found: the variables are
    elsewhere.mkdir()
    server = LicenseServer(elsewhere, command=lambda port: _served(argv, port), env=_clean_env(moved))
    try:
        _activates(server.url, key)
    finally:
        server.stop()


def test_dockerfile_installs_this_checkout_and_serves_as_an_unprivileged_user(tmp_path: Path) -> None:
    instructions = _dockerfile()
    kinds = [k for k, _ in instructions]
    assert kinds[0] == "FROM" and instructions[0][1].startswith("python:3.")
    for kind, value in instructions:
        if kind == "COPY":
            *sources, _ = value.split()
            assert all((ROOT / s).exists() for s in sources), value
    installs = [v for k, v in instructions if k == "RUN" and "pip install" in v]
    assert len(installs) == 1 and "'/src[server]'" in installs[0]
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    assert "server" in extras
    users = [v for k, v in instructions if k == "USER"]
    assert users == ["licet"] and kinds.index("USER") > kinds.index("RUN")
    assert [v for k, v in instructions if k == "EXPOSE"] == [SERVER_PORT]

    env: dict[str, str] = {}
    for kind, value in instructions:
        if kind == "ENV":
            env.update(pair.split("=", 1) for pair in shlex.split(value))
    state = tmp_path / "state"
    moved = {k: v.replace(STATE, str(state)) for k, v in env.items() if k.startswith("LICET_")}
    assert set(moved) == {"LICET_KEYS", "LICET_LEDGER"}
    key = _provider_state(tmp_path, moved)

    entrypoint = json.loads(next(v for k, v in instructions if k == "ENTRYPOINT"))
    cmd = json.loads(next(v for k, v in instructions if k == "CMD"))
    argv = [script(entrypoint[0]), *entrypoint[1:], *cmd]
    assert argv[1:3] == ["issuer", "serve"]
    server = LicenseServer(tmp_path, command=lambda port: _served(argv, port), env=_clean_env(moved))
    try:
        _activates(server.url, key)
        health = next(v for k, v in instructions if k == "HEALTHCHECK")
        check = json.loads(health.split("CMD", 1)[1])
        check = [c.replace(f"127.0.0.1:{SERVER_PORT}", f"127.0.0.1:{server.port}") for c in check]
        assert check[0] == "python"
        proc = subprocess.run([sys.executable, *check[1:]], capture_output=True, timeout=30)
        assert proc.returncode == 0, proc.stderr
    finally:
        server.stop()


def test_license_server_and_panel_callback_default_to_distinct_ports() -> None:
    import typer.main

    from issuer.cli import app
    from verifier.cli import DEFAULT_CALLBACK_PORT, build_parser

    serve = typer.main.get_command(app).commands["serve"]  # type: ignore[attr-defined]
    (port,) = [p for p in serve.params if p.name == "port"]
    assert port.default == DEFAULT_PORT == 8470
    parsed = build_parser().parse_args(["activate", "--server", "u", "--product", "p", "--trusted-keys", "t"])
    assert parsed.callback_port == DEFAULT_CALLBACK_PORT == 8472
