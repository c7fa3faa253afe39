"""A newcomer's set-up: the `licet` command where another `keytool` comes first, and `make demo`."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

from clirun import script

ROOT = Path(__file__).resolve().parents[2]


def _fake_jdk_keytool(folder: Path) -> Path:
    """A `keytool` like the JDK's, first on PATH: it knows none of licet's commands."""
    bindir = folder / "jdk" / "bin"
    bindir.mkdir(parents=True)
    fake = bindir / "keytool"
    fake.write_text('#!/bin/sh\necho "Illegal option:  $1" >&2\nexit 1\n')
    fake.chmod(0o755)
    return bindir


def _run(args: list[str], cwd: Path, path: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LICET_")}
    env["PATH"] = path
    return subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=120)


def test_licet_keytool_works_where_another_keytool_is_first_on_path(tmp_path: Path) -> None:
    venv_bin = str(Path(script("licet")).parent)
    path = f"{_fake_jdk_keytool(tmp_path)}:{venv_bin}:{os.environ.get('PATH', '')}"
    home = tmp_path / "provider"
    home.mkdir()

    shadowed = _run(["keytool", "new"], home, path)  # what a newcomer hit after `make demo`
    assert shadowed.returncode == 1 and "Illegal option" in shadowed.stderr
    assert not (home / "keys").exists()

    steps = [
        ["licet", "keytool", "new"],
        ["licet", "keytool", "export"],
        ["licet", "issuer", "init", "--name", "acme"],
    ]
    for args in steps:
        proc = _run(args, home, path)
        assert proc.returncode == 0, (args, proc.stderr)
    created = json.loads(
        _run(["licet", "issuer", "license", "create", "--product", "ispmanager", "--json"], home, path).stdout
    )
    code = _run(
        ["licet", "verifier", "request", "--product", "ispmanager", "--key", created["activation_key"],
         "--machine-id", "box"], home, path,
    ).stdout.strip()
    token = _run(["licet", "issuer", "activate", code], home, path).stdout.strip()
    common = ["--product", "ispmanager", "--trusted-keys", "keys/trusted_keys.json", "--machine-id", "box"]
    assert _run(["licet", "verifier", "install", token, *common], home, path).returncode == 0
    status = _run(["licet", "verifier", "status", *common, "--json"], home, path)
    assert status.returncode == 0 and json.loads(status.stdout)["license_id"] == created["license_id"]
    keys = json.loads(_run(["licet", "keytool", "list", "--json"], home, path).stdout)
    assert [k["status"] for k in keys] == ["active"]


def test_licet_names_itself_in_help_and_refusals(tmp_path: Path) -> None:
    path = f"{Path(script('licet')).parent}:{os.environ.get('PATH', '')}"
    for tool in ("keytool", "issuer", "verifier"):
        helped = _run(["licet", tool, "--help"], tmp_path, path)
        assert helped.returncode == 0 and f"licet {tool}" in helped.stdout, helped
    refused = _run(["licet", "issuer", "license", "list"], tmp_path, path)
    assert refused.returncode == 1 and refused.stderr.startswith("licet issuer: "), refused.stderr
    unknown = _run(["licet", "keytol", "new"], tmp_path, path)
    assert unknown.returncode == 2
    assert unknown.stderr.strip() == (
        "licet: unknown tool 'keytol': expected keytool, issuer or verifier (see 'licet --help')"
    )
    assert _run(["licet"], tmp_path, path).returncode == 2
    overview = _run(["licet", "--help"], tmp_path, path)
    assert overview.returncode == 0 and all(t in overview.stdout for t in ("keytool", "issuer", "verifier"))


def test_make_demo_installs_only_what_the_demo_runs(tmp_path: Path) -> None:
    # A dry run (make -n) in a copy without .venv: the commands a fresh machine would run.
    make = shutil.which("make")
    assert make is not None
    shutil.copy2(ROOT / "Makefile", tmp_path / "Makefile")
    shutil.copy2(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")

    def installs(target: str) -> list[str]:
        proc = subprocess.run([make, "-n", target], cwd=tmp_path, capture_output=True, text=True, timeout=60)
        assert proc.returncode == 0, proc.stderr
        return [line.split("install", 1)[1].split()[-1] for line in proc.stdout.splitlines()
                if "pip install" in line and "--upgrade pip" not in line]

    assert installs("demo") == ["."]
    assert installs("demo-online") == ["'.[server]'"]
    assert installs("test") == ["'.[test]'"]


def test_nothing_the_tools_write_in_the_keys_folder_can_be_committed(tmp_path: Path) -> None:
    git = shutil.which("git")
    assert git is not None
    (tmp_path / "keys").mkdir()
    for name in (".gitignore", "README.md"):
        shutil.copy2(ROOT / "keys" / name, tmp_path / "keys" / name)
    subprocess.run([git, "init", "-q"], cwd=tmp_path, check=True)
    path = f"{Path(script('licet')).parent}:{os.environ.get('PATH', '')}"
    for args in (["keytool", "new"], ["keytool", "rotate"], ["keytool", "export"], ["issuer", "init", "--name", "acme"]):
        assert _run(args, tmp_path, path).returncode == 0, args
    written = {p.name for p in (tmp_path / "keys").iterdir()} - {".gitignore", "README.md"}
    assert {".keyring.lock", "keyring.json", "trusted_keys.json", "activation-keys.secret"} <= written
    assert sum(name.endswith(".pem") for name in written) == 2
    status = subprocess.run(
        [git, "status", "--porcelain", "--untracked-files=all", "--", "keys"],
        cwd=tmp_path, capture_output=True, text=True, check=True,
    )
    # The exported trust set is public (panels ship it); nothing else may be committed.
    assert sorted(status.stdout.splitlines()) == ["?? keys/.gitignore", "?? keys/README.md", "?? keys/trusted_keys.json"]
