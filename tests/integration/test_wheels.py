"""Both distributions built from this checkout; the panel's one installed alone in a fresh venv.

`licet` is the provider's distribution (keytool, issuer, verifier, the `licet`
command); `licet-verifier` (packaging/licet-verifier) is what a panel ships:
the verifier package alone, with cryptography as its only dependency. The wheels are built with pip (the build backend comes from the
package registry through pip's cache), the dependencies of the fresh venv are
pinned to the versions this venv runs so pip reuses what it already fetched.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tomllib
import venv
import zipfile
from email.parser import Parser
from importlib.metadata import version
from pathlib import Path

import pytest
from clirun import cli, provider_home

ROOT = Path(__file__).resolve().parents[2]
SLIM = "licet-verifier"
PRODUCT = "ispmanager"
# What a panel must never have to install just to verify a token.
PROVIDER_ONLY = ("typer", "click", "rich", "tinydb", "fastapi", "starlette", "uvicorn", "httpx")

pytestmark = pytest.mark.slow
#: The tests that read the built wheels run on one worker, so pip builds them once a run.
WHEELS = pytest.mark.xdist_group("wheels")


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith(("LICET_", "PYTHON", "VIRTUAL_ENV"))}


def _pip(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "--disable-pip-version-check", *args],
        cwd=cwd, env=_env(), capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, f"pip {args}: {proc.stdout}\n{proc.stderr}"
    return proc


@pytest.fixture(scope="module")
def wheels(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    # Built from a copy: a build writes build/ and *.egg-info/ into its source folder.
    src = tmp_path_factory.mktemp("src")
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, src / name)
    ignore = shutil.ignore_patterns("__pycache__", "build", "*.egg-info")
    for name in ("verifier", "keytool", "issuer", "packaging"):
        shutil.copytree(ROOT / name, src / name, symlinks=True, ignore=ignore)
    out = tmp_path_factory.mktemp("wheels")
    _pip("wheel", "--no-deps", "--quiet", "-w", str(out), str(src), str(src / "packaging" / SLIM), cwd=src)
    built = {p.name.split("-")[0]: p for p in out.glob("*.whl")}
    assert set(built) == {"licet", "licet_verifier"}, sorted(out.iterdir())
    return {"licet": built["licet"], SLIM: built["licet_verifier"]}


def _metadata(wheel: Path) -> tuple[list[str], object, str]:
    with zipfile.ZipFile(wheel) as zf:
        names = zf.namelist()
        info = next(n for n in names if n.endswith(".dist-info/METADATA"))
        meta = Parser().parsestr(zf.read(info).decode())
        entry = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
        return names, meta, zf.read(entry).decode()


@WHEELS
def test_slim_wheel_holds_only_the_verifier_and_depends_only_on_cryptography(
    wheels: dict[str, Path],
) -> None:
    names, meta, entry_points = _metadata(wheels[SLIM])
    packages = {n.split("/")[0] for n in names if not n.split("/")[0].endswith(".dist-info")}
    assert packages == {"verifier"}
    assert "verifier/py.typed" in names
    requires = meta.get_all("Requires-Dist")  # type: ignore[attr-defined]
    base = sorted(r.split(">")[0].split("<")[0].lower() for r in requires if "extra ==" not in r)
    assert base == ["cryptography"]
    assert [r for r in requires if "extra ==" in r] == [r for r in requires if r.startswith("segno")]
    assert meta.get_all("Provides-Extra") == ["qr"]  # type: ignore[attr-defined]
    # The same bounds as licet's own: one distribution cannot drift from the other.
    root = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    slim = tomllib.loads((ROOT / "packaging" / SLIM / "pyproject.toml").read_text())["project"]["dependencies"]
    assert sorted(slim) == sorted(d for d in root if d.lower().startswith("cryptography"))
    assert meta["Version"] == version("licet")  # type: ignore[index]
    scripts = [line.split("=")[0].strip() for line in entry_points.splitlines() if "=" in line]
    assert scripts == ["verifier"]


@WHEELS
def test_provider_wheel_holds_all_three_packages_and_the_licet_command(wheels: dict[str, Path]) -> None:
    names, meta, entry_points = _metadata(wheels["licet"])
    assert {n.split("/")[0] for n in names if "/" in n and ".dist-info" not in n} == {"verifier", "keytool", "issuer"}
    scripts = sorted(line.split("=")[0].strip() for line in entry_points.splitlines() if "=" in line)
    assert scripts == ["issuer", "keytool", "licet", "verifier"]
    assert "server" in meta.get_all("Provides-Extra")  # type: ignore[attr-defined]


@WHEELS
def test_slim_package_alone_verifies_a_real_token_in_a_fresh_venv(
    wheels: dict[str, Path], tmp_path: Path
) -> None:
    fresh = tmp_path / "panel-venv"
    venv.create(fresh, with_pip=False)  # this venv's pip installs into it (pip --python)
    py = fresh / "bin" / "python"
    pins = tmp_path / "pins.txt"
    pins.write_text("".join(f"{d}=={version(d)}\n" for d in ("cryptography", "cffi", "pycparser")))
    _pip("--python", str(py), "install", "--quiet", "--constraint", str(pins), str(wheels[SLIM]), cwd=tmp_path)

    listed = json.loads(_pip("--python", str(py), "list", "--format", "json", cwd=tmp_path).stdout)
    installed = {d["name"].lower() for d in listed}
    assert {"licet-verifier", "cryptography"} <= installed
    assert installed <= {"licet-verifier", "cryptography", "cffi", "pycparser"}, installed

    # Provider side, with this venv's tools, in its own folder.
    provider = tmp_path / "provider"
    provider.mkdir()
    provider_home(provider)
    created = json.loads(
        cli("issuer", "license", "create", "--product", PRODUCT, "--feature", "dns", "--json", cwd=provider).stdout
    )
    trust = provider / "keys" / "trusted_keys.json"

    panel = tmp_path / "panel"
    panel.mkdir()

    def slim(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(fresh / "bin" / "verifier"), *args], cwd=panel, env=_env(), capture_output=True, text=True, timeout=60
        )

    request = slim("request", "--product", PRODUCT, "--key", created["activation_key"], "--machine-id", "slim-box")
    assert request.returncode == 0, request.stderr
    token = cli("issuer", "activate", request.stdout.strip(), cwd=provider).stdout.strip()
    common = ("--product", PRODUCT, "--trusted-keys", str(trust), "--machine-id", "slim-box")
    installed_token = slim("install", token, *common)
    assert installed_token.returncode == 0, installed_token.stderr
    status = slim("status", *common, "--json")
    assert status.returncode == 0, status.stderr
    assert json.loads(status.stdout)["state"] == "valid"
    assert json.loads(status.stdout)["license_id"] == created["license_id"]

    # The library, as a panel imports it, from the fresh venv and nowhere else.
    code = (
        "import json, sys, verifier\n"
        "from verifier import TrustedKeys, Verifier\n"
        f"v = Verifier({PRODUCT!r}, TrustedKeys.from_file(sys.argv[1]), machine_id='slim-box')\n"
        "lic = v.verify(open(sys.argv[2]).read().strip())\n"
        "print(json.dumps({'license': lic.license_id, 'dns': lic.has('dns'), 'file': verifier.__file__,\n"
        "                  'modules': sorted({m.split('.')[0] for m in sys.modules})}))\n"
    )
    (panel / "token.txt").write_text(token)
    proc = subprocess.run(
        [str(py), "-c", code, str(trust), str(panel / "token.txt")],
        cwd=panel, env=_env(), capture_output=True, text=True, timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    seen = json.loads(proc.stdout)
    assert seen["license"] == created["license_id"] and seen["dns"] is True
    assert Path(seen["file"]).is_relative_to(fresh)
    assert not set(seen["modules"]) & {*PROVIDER_ONLY, "keytool", "issuer"}

    # Nothing of the provider's is there: no modules, no commands.
    for module in (*PROVIDER_ONLY, "keytool", "issuer"):
        missing = subprocess.run([str(py), "-c", f"import {module}"], cwd=panel, env=_env(), capture_output=True, text=True)
        assert missing.returncode == 1 and "ModuleNotFoundError" in missing.stderr, module
    for command in ("keytool", "issuer", "licet"):
        assert not (fresh / "bin" / command).exists(), command


def test_the_editable_install_make_demo_runs_prints_no_setuptools_warning(tmp_path: Path) -> None:
    # `make demo` runs `pip install -e .` in the checkout: setuptools must find nothing to
    # warn about in pyproject.toml (data folders as packages, the flat layout declared).
    src = tmp_path / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, src / name)
    ignore = shutil.ignore_patterns("__pycache__", "build", "*.egg-info")
    for name in ("verifier", "keytool", "issuer"):
        shutil.copytree(ROOT / name, src / name, symlinks=True, ignore=ignore)
    fresh = tmp_path / "venv"
    venv.create(fresh, with_pip=False)
    proc = _pip("--python", str(fresh / "bin" / "python"), "install", "--quiet", "--no-deps", "-e", str(src), cwd=tmp_path)
    said = proc.stdout + proc.stderr
    assert "Warning" not in said and "!!" not in said and "deprecat" not in said.lower(), said
