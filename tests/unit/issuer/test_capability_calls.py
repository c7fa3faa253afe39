"""The commands and the routes call the capability they use, not the façade's one-line delegations.

``Issuer`` keeps the README's methods for the Python API, each handing the call
to a capability (``return self.activations.redeem(...)``). Code inside licet names
the capability itself (``iss.activations.redeem(...)``), so each command and route
says what it uses, and a test that injects a fault patches the method that runs.

The rule, read from the source: a façade method *merely delegates* when its body
(docstring aside) is one statement whose value is a call of
``self.<capability>.<method>(...)`` (a trailing ``.token`` and the like allowed),
a capability being a public attribute of ``Issuer`` set to an instance of a class
from ``issuer.licensing``. In the modules below, no method of such a name is
called, or handed to something that calls it later (``run_in_threadpool``), except
through a capability (``x.<capability>.<method>``); a record's field of the same
name (``summary.licenses``, ``body.events``) is only read, never called.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ISSUER = Path(__file__).resolve().parents[3] / "issuer"
CALLERS = sorted([*(ISSUER / "web").glob("*.py"), *(ISSUER / name for name in ("cli.py", "license_cli.py", "admin_cli.py", "webhook_cli.py"))])


def _facade() -> ast.ClassDef:
    tree = ast.parse((ISSUER / "facade.py").read_text())
    return next(node for node in tree.body if isinstance(node, ast.ClassDef) and node.name == "Issuer")


def capabilities() -> set[str]:
    """Public attributes of ``Issuer`` that hold an instance of a class from ``issuer.licensing``."""
    tree = ast.parse((ISSUER / "facade.py").read_text())
    licensing = {
        alias.asname or alias.name
        for node in tree.body
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("issuer.licensing")
        for alias in node.names
    }
    return {
        target.attr
        for node in ast.walk(_facade())
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Call)
        and isinstance(node.value.func, ast.Name) and node.value.func.id in licensing
        for target in node.targets
        if isinstance(target, ast.Attribute) and isinstance(target.value, ast.Name)
        and target.value.id == "self" and not target.attr.startswith("_")
    }


def _delegated_call(body: list[ast.stmt], held: set[str]) -> bool:
    statements = body[1:] if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) else body
    if len(statements) != 1 or not isinstance(statements[0], (ast.Return, ast.Expr)) or statements[0].value is None:
        return False
    value = statements[0].value
    while isinstance(value, ast.Attribute):  # `.token` of what the capability answers
        value = value.value
    func = value.func if isinstance(value, ast.Call) else None
    return (
        isinstance(func, ast.Attribute)
        and isinstance(func.value, ast.Attribute)
        and func.value.attr in held
        and isinstance(func.value.value, ast.Name)
        and func.value.value.id == "self"
    )


def delegations() -> set[str]:
    """The façade's methods that merely hand the call to a capability."""
    held = capabilities()
    return {
        node.name
        for node in _facade().body
        if isinstance(node, ast.FunctionDef) and not node.name.startswith("_") and _delegated_call(node.body, held)
    }


def test_the_rule_reads_the_facade() -> None:
    assert {"licensing", "activations", "revocation_lists", "rate_limits", "accounts"} <= capabilities()
    found = delegations()
    # one of each kind: plain, with a parsed argument and `.token`, with the actor added
    assert {"redeem", "search", "activate", "renew", "add_user", "login", "signed_revocations"} <= found
    # not delegations: they build an acting issuer or write files
    assert not {"session", "authenticate_token", "with_actor", "save_token", "signing_keys"} & found


#: Functions that take a callable and call it later (so `run_in_threadpool(iss.redeem, ...)` counts).
CALLERS_OF_CALLABLES = {"run_in_threadpool", "partial", "to_thread", "submit"}


def _reached(tree: ast.AST) -> list[ast.Attribute]:
    """Attributes called (``x.name(...)``) or handed to something that calls them later."""
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        if isinstance(node.func, ast.Attribute):
            found.append(node.func)
        name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
        if name in CALLERS_OF_CALLABLES:
            found += [arg for arg in node.args if isinstance(arg, ast.Attribute)]
    return found


@pytest.mark.parametrize("path", CALLERS, ids=lambda p: str(p.relative_to(ISSUER)))
def test_commands_and_routes_call_the_capability_not_the_facade_delegation(path: Path) -> None:
    held, delegating = capabilities(), delegations()
    reached = [
        f"{node.lineno}: .{node.attr}"
        for node in _reached(ast.parse(path.read_text()))
        if node.attr in delegating and not (isinstance(node.value, ast.Attribute) and node.value.attr in held)
    ]
    assert reached == [], f"{path.name} calls façade delegations: {reached}"


def test_the_rule_sees_a_delegation_called_or_handed_on() -> None:
    tree = ast.parse("iss.redeem(k)\nrun_in_threadpool(iss.search, q)\niss.activations.redeem(k)\nf(e.events)")
    assert sorted(node.attr for node in _reached(tree)) == ["redeem", "redeem", "search"]
