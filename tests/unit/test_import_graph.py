"""The panel's package as a graph of imports: no circle, nothing of the provider's, few libraries.

Every import statement in ``verifier/`` counts, those inside functions (lazy
imports) included: a lazy import still ties two modules together, it only
hides the tie from the interpreter at start-up.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = "verifier"
# What a panel installs besides the standard library: cryptography, and segno for QR codes.
LIBRARIES = {"cryptography", "segno"}


def module_names() -> dict[str, Path]:
    """Every module of the package by dotted name (a package by its own name)."""
    names = {}
    for path in sorted((ROOT / PACKAGE).rglob("*.py")):
        parts = path.relative_to(ROOT).with_suffix("").parts
        names[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return names


def imported(path: Path, name: str) -> set[str]:
    """The dotted names a module imports, at any depth of its code (relative imports resolved)."""
    found: set[str] = set()
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            # `from a import b` imports a.b when b is a module, else a name of a.
            found.update(f"{base}.{alias.name}" for alias in node.names)
            found.add(base)
    return found


def graph() -> dict[str, set[str]]:
    modules = module_names()
    edges: dict[str, set[str]] = {}
    for name, path in modules.items():
        targets = set()
        for target in imported(path, name):
            # The longest module the import names: verifier.errors.input, not verifier.errors.
            while target and target not in modules:
                target = target.rpartition(".")[0]
            if target and target != name:
                targets.add(target)
        edges[name] = targets
    return edges


def circles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in sorted(edges[node]):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return found


def test_the_walk_sees_lazy_imports_and_every_module() -> None:
    edges = graph()
    assert {"verifier.errors.input", "verifier.jws", "verifier.wire", "verifier.timefmt"} <= set(edges)
    # Verifier.activate imports the wire inside the method: the walk must see it.
    assert "verifier.wire" in edges["verifier.verify"]
    assert "verifier.client" in edges["verifier"]  # verifier.__getattr__ loads the client lazily


def test_no_import_circle_among_the_verifiers_modules() -> None:
    assert circles(graph()) == []


def test_the_leaves_stay_leaves() -> None:
    edges = graph()
    assert edges["verifier.timefmt"] == set()  # how a time is written needs nothing of licet
    assert not edges["verifier.wire"] & {"verifier.client", "verifier.verify"}
    assert not edges["verifier.clock"] & {"verifier.errors.activation", "verifier.errors.token"}


def test_the_verifier_imports_nothing_of_the_provider_and_only_its_libraries() -> None:
    outside: dict[str, set[str]] = {}
    for name, path in module_names().items():
        for target in imported(path, name):
            top = target.split(".")[0]
            if top != PACKAGE and top != "__future__" and top not in sys.stdlib_module_names:
                outside.setdefault(top, set()).add(name)
    assert not outside.keys() & {"issuer", "keytool"}, outside
    assert outside.keys() <= LIBRARIES, outside  # no PyJWT, no CLI, storage or web library
