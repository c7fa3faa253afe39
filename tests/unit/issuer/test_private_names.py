"""A module's private names (``_name``) stay its own: no module of licet imports one from another.

Shared plumbing gets a public name in the module that owns it (the console and the
license server share ``issuer.web.plumbing`` and ``issuer.web.problems``, not each
other's helpers). Reaching ``module._name`` through an imported module counts too.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
SOURCES = sorted(path for package in ("issuer", "verifier", "keytool") for path in (ROOT / package).rglob("*.py"))
OURS = ("issuer", "verifier", "keytool")


def _private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def private_reaches(path: Path) -> list[str]:
    """``from ours import _x`` and ``ours_module._x`` in ``path``, with their lines."""
    tree = ast.parse(path.read_text())
    found, modules = [], set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.level or (node.module or "").split(".")[0] in OURS):
            found += [f"{node.lineno}: {alias.name}" for alias in node.names if _private(alias.name)]
            modules |= {alias.asname or alias.name for alias in node.names}
        elif isinstance(node, ast.Import):
            modules |= {(alias.asname or alias.name).split(".")[0] for alias in node.names if alias.name.split(".")[0] in OURS}
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and _private(node.attr) and isinstance(node.value, ast.Name) and node.value.id in modules:
            found.append(f"{node.lineno}: {node.value.id}.{node.attr}")
    return found


def test_the_walk_finds_a_private_import(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text("from issuer.web.license_server import _DOCUMENTED\nfrom issuer.web import problems\nproblems._refusals(())\n")
    assert private_reaches(sample) == ["1: _DOCUMENTED", "3: problems._refusals"]


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_module_takes_another_modules_private_names(path: Path) -> None:
    assert private_reaches(path) == [], path
