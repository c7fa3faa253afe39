"""Run the installed console scripts in real subprocesses."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

BIN = Path(sys.executable).parent


def script(name: str) -> str:
    path = BIN / name
    assert path.exists(), f"console script {name} is not installed next to {sys.executable}"
    return str(path)


def cli(
    name: str,
    *args: str,
    cwd: Path,
    input: str | None = None,
    env: dict[str, str] | None = None,
    check: int | None = 0,
) -> subprocess.CompletedProcess[str]:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("LICET_")}
    full_env.update(env or {})
    proc = subprocess.run(
        [script(name), *args], cwd=cwd, input=input, env=full_env, capture_output=True, text=True, timeout=120
    )
    if check is not None:
        assert proc.returncode == check, f"{name} {args}: rc={proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    return proc


def assert_one_line_refusal(proc: subprocess.CompletedProcess[str], needle: str, code: int = 1) -> None:
    assert proc.returncode == code, proc
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert needle in lines[0], proc.stderr
    assert "Traceback" not in proc.stderr


def provider_home(folder: Path, *licenses: tuple[str, ...]) -> Path:
    """A provider folder made with the real console scripts: keys, trust file, ledger."""
    cli("keytool", "new", cwd=folder)
    cli("keytool", "export", cwd=folder)
    cli("issuer", "init", "--name", "acme-hosting", cwd=folder)
    for args in licenses:
        cli("issuer", "license", "create", *args, cwd=folder)
    return folder
