"""The console and admin API translate HTTP to calls of the Issuer façade and its capabilities: never the ledger or its parts."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

WEB = Path(__file__).resolve().parents[3] / "issuer" / "web"


@pytest.mark.parametrize("path", sorted(WEB.glob("*.py")), ids=lambda p: p.name)
def test_web_modules_call_the_facade_and_its_capabilities_only(path: Path) -> None:
    tree = ast.parse(path.read_text())
    imported = {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    imported |= {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    assert not imported & {"issuer.ledger", "issuer.licensing.accounts", "tinydb", "argon2"}, path
    # `iss.accounts` is the Accounts capability, which routes call like the others;
    # the façade's private parts (minter, list cache) are as out of reach as the ledger.
    reached = [  # `config.ledger` is the ledger folder's name, handed to the façade
        node.lineno for node in ast.walk(tree)
        if isinstance(node, ast.Attribute) and node.attr in ("ledger", "_secret", "_minter", "_lists")
        and not (isinstance(node.value, ast.Name) and node.value.id == "config")
    ]
    assert reached == [], f"{path.name} reaches past the façade at lines {reached}"


@pytest.mark.parametrize("path", sorted((WEB / "templates").glob("*.html")), ids=lambda p: p.name)
def test_templates_read_only_what_routes_hand_them(path: Path) -> None:
    text = path.read_text()
    for forbidden in ("ledger", "accounts", "_secret", "|safe", "autoescape false", "Markup"):
        assert forbidden not in text, f"{path.name} uses {forbidden}"
