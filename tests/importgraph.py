"""licet's modules as a graph of imports, for the architecture tests.

Every import statement counts, those inside functions and under TYPE_CHECKING
included: a lazy import still ties two modules together, it only hides the tie
from the interpreter at start-up.
"""

from __future__ import annotations

import ast
from collections.abc import Mapping
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def modules(*packages: str) -> dict[str, Path]:
    """Every module of ``packages`` by dotted name (a package by its own name)."""
    found = {}
    for package in packages:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = path
    return found


def _owner(target: str, known: Mapping[str, Path]) -> str:
    """The module of ours that importing ``target`` runs (``issuer.policy.redeem`` → ``issuer.policy``);
    another package counts by its top name (verifier, tinydb, datetime, ...)."""
    name = target
    while name and name not in known:
        name = name.rpartition(".")[0]
    return name or target.split(".")[0]


def imports(name: str, known: Mapping[str, Path]) -> set[str]:
    """What module ``name`` imports anywhere in its text: our modules by name, others by top name."""
    path = known[name]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
                base = ".".join(package[: len(package) - node.level + 1] + ([base] if base else []))
            # `from issuer.web import apidoc` imports the module issuer.web.apidoc
            targets = [
                f"{base}.{a.name}" if f"{base}.{a.name}" in known else base for a in node.names
            ]
        else:
            continue
        found |= {_owner(target, known) for target in targets if target}
    return found - {name}


def graph(*packages: str) -> dict[str, set[str]]:
    """Each module of ``packages`` and what it imports (see :func:`imports`)."""
    known = modules(*packages)
    return {name: imports(name, known) for name in known}


def circles(edges: Mapping[str, set[str]]) -> list[list[str]]:
    """The strongly connected groups of more than one module (Tarjan): each holds at least one circle.

    Names outside ``edges`` (other packages, the standard library) are not followed.
    """
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    groups: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in sorted(edges[node] & edges.keys()):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return groups
