"""Guards on the source itself: patterns that must never appear, and pins that must hold."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
import tomllib
from importlib.metadata import version
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("verifier", "keytool", "issuer")


def sources(package: str) -> list[Path]:
    return sorted((ROOT / package).rglob("*.py"))


@pytest.mark.parametrize("path", sources("verifier"), ids=lambda p: p.name)
def test_verifier_never_turns_signature_checks_off(path: Path) -> None:
    text = path.read_text()
    assert "verify_signature" not in text
    assert "get_unverified_header" not in text
    assert "jwt.decode" not in text  # the verifier parses and pins everything itself


@pytest.mark.parametrize("path", [p for pkg in PACKAGES for p in sources(pkg)], ids=lambda p: f"{p.parent.name}/{p.name}")
def test_no_algorithm_is_taken_from_a_token_header(path: Path) -> None:
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            for keyword in node.keywords:
                if keyword.arg in ("algorithms", "algorithm"):
                    # Only the pinned constant may choose an algorithm.
                    assert isinstance(keyword.value, ast.Name) and keyword.value.id == "ALGORITHM", (
                        f"{path}:{node.lineno} chooses an algorithm from something other than ALGORITHM"
                    )


def test_header_alg_is_only_ever_compared_with_the_pinned_constant() -> None:
    text = "\n".join(path.read_text() for path in sources("verifier"))  # verifier/jws.py reads it
    uses = re.findall(r".*header\.get\(\"alg\"\).*", text)
    assert uses and all("!= ALGORITHM" in use for use in uses)


def test_ruff_security_rules_are_clean_on_the_packages() -> None:
    ruff = Path(sys.executable).parent / "ruff"
    proc = subprocess.run([str(ruff), "check", "--select", "S", *PACKAGES], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def _floor(requirement: str) -> tuple[str, tuple[int, ...]] | None:
    match = re.match(r"\s*([A-Za-z0-9_.-]+)(?:\[[^\]]*\])?\s*>=\s*([0-9.]+)", requirement)
    if not match:
        return None
    return match.group(1), tuple(int(part) for part in match.group(2).split("."))


def _installed(name: str) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", version(name))[:3])


def test_installed_dependencies_meet_the_pinned_floors() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    requirements = project["dependencies"] + project["optional-dependencies"]["server"]
    floors = [f for f in map(_floor, requirements) if f is not None]
    assert {name.lower() for name, _ in floors} >= {"pyjwt", "cryptography", "h11", "starlette"}
    for name, floor in floors:
        assert _installed(name)[: len(floor)] >= floor, f"{name} {version(name)} is below the pinned {floor}"


def test_every_test_named_in_security_md_exists() -> None:
    named = set(re.findall(r"`?(test_[a-z0-9_]+)`?", (ROOT / "SECURITY.md").read_text()))
    defined = set()
    for path in (ROOT / "tests").rglob("test_*.py"):
        defined |= set(re.findall(r"^def (test_[a-z0-9_]+)", path.read_text(), re.M))
        defined.add(path.stem)  # a whole file may be named (e.g. test_server_rules.py)
    missing = sorted(named - defined)
    assert not missing, f"SECURITY.md names tests that do not exist: {missing}"


@pytest.mark.parametrize("path", [p for pkg in (*PACKAGES, "tests", "bench", "examples") for p in sorted((ROOT / pkg).rglob("*.py"))], ids=lambda p: f"{p.parent.name}/{p.name}")
def test_no_module_imports_another_packages_private_modules(path: Path) -> None:
    """A package reaches another only through its public modules (names without a leading _)."""
    own = path.relative_to(ROOT).parts[0]
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module]
            if own in PACKAGES:  # tests may reach a module's private helpers, packages may not
                names += [f"{node.module}.{a.name}" for a in node.names]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        for name in names:
            parts = name.split(".")
            if parts[0] in PACKAGES and parts[0] != own:
                private = [p for p in parts[1:] if p.startswith("_") and not p.startswith("__")]
                assert not private, f"{path}:{node.lineno} imports private {name}"


def test_web_routes_call_the_issuer_facade_never_the_ledger() -> None:
    tree = ast.parse((ROOT / "issuer" / "web" / "license_server.py").read_text())
    imported = {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    assert not {"issuer.ledger", "issuer.ledger.postgres", "issuer.ledger.api"} & imported
    touched = [  # `config.ledger` is only the folder's name, handed to the façade
        node.lineno
        for node in ast.walk(tree)
        if isinstance(node, ast.Attribute) and node.attr == "ledger"
        and not (isinstance(node.value, ast.Name) and node.value.id == "config")
    ]
    assert touched == [], f"issuer/web/license_server.py reaches the ledger at lines {touched}"


# The text of the patterns is spelled so that this file does not match them itself.
OUTSIDE_DOCUMENTS = re.compile(r"\bS[P]EC\b|\u00a7|\b[Ii]ssue\s+#?\d|\bSTYLE\.md|\bCOMMON\.md")
PROJECT_SOURCES = [
    p
    for folder in (*PACKAGES, "tests", "bench", "examples")
    for p in sorted((ROOT / folder).rglob("*"))
    if p.suffix in (".py", ".sh", ".html", ".toml") and ".venv" not in p.parts
]


@pytest.mark.parametrize("path", PROJECT_SOURCES, ids=lambda p: str(p.relative_to(ROOT)))
def test_code_and_tests_state_rules_instead_of_pointing_at_outside_documents(path: Path) -> None:
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        assert not OUTSIDE_DOCUMENTS.search(line), f"{path.relative_to(ROOT)}:{number} points outside the project: {line.strip()}"


def test_only_the_ledger_backends_import_their_storage_libraries() -> None:
    """Storage stays behind the Ledger interface: tinydb in the folder backend, psycopg in the PostgreSQL one."""
    postgres = {  # the backend, its parts and its connections
        "issuer/ledger/postgres.py", "issuer/ledger/postgres_accounts.py", "issuer/ledger/postgres_revocations.py",
        "issuer/ledger/postgres_schema.py", "issuer/ledger/connections.py", "issuer/ledger/webhooks_pg.py",
    }
    folder = {  # the backend and its parts, over the shard files
        "issuer/ledger/folder.py", "issuer/ledger/folder_accounts.py", "issuer/ledger/folder_attempts.py",
        "issuer/ledger/folder_log.py", "issuer/ledger/shards.py", "issuer/ledger/webhooks_folder.py",
        "issuer/ledger/webhooks_outbox.py",
    }
    owners = {"tinydb": folder, "psycopg": postgres, "psycopg_pool": postgres}
    for package in PACKAGES:
        for path in sources(package):
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.ImportFrom) and node.module:
                    roots = {node.module.split(".")[0]}
                elif isinstance(node, ast.Import):
                    roots = {a.name.split(".")[0] for a in node.names}
                else:
                    continue
                for root in roots & owners.keys():
                    assert str(path.relative_to(ROOT)) in owners[root], f"{path}:{node.lineno} imports {root}"


def test_extras_are_named_as_installable_from_the_checkout_never_by_an_unpublished_name() -> None:
    # licet is not on a package index: a missing-extra hint (and the README) says
    # pip install '.[console]' in the checkout, never 'licet[console]'.
    texts = {p: p.read_text() for pkg in PACKAGES for p in sources(pkg)}
    texts[ROOT / "README.md"] = (ROOT / "README.md").read_text()
    for path, text in texts.items():
        assert not re.search(r"pip install ['\"]?licet\[", text), path
    hints = re.findall(r"needs? the '(\w+)' extra: (?:\"\s*\")?pip install '\.\[(\w+)\]'", "\n".join(texts.values()))
    assert {extra for extra, _ in hints} >= {"server", "console", "postgres"} and all(a == b for a, b in hints), hints
    readme = texts[ROOT / "README.md"]
    for extra in ("server", "console", "postgres"):
        assert re.search(rf"pip install '\.\[[\w,]*{extra}[\w,]*\]'", readme), extra
