"""issuer's folders are layers: every import, lazy ones included, points down, and none goes round."""

from __future__ import annotations

import ast
import sys

import pytest
from importgraph import circles, graph, modules

GRAPH = graph("issuer")
MODULES = GRAPH.keys()


def test_the_walk_sees_lazy_imports() -> None:
    assert "issuer.ledger.postgres" in GRAPH["issuer.ledger"]  # imported inside open_ledger only
    assert "issuer.web.console_app" in GRAPH["issuer.admin_cli"]  # imported inside `issuer console`


def test_no_module_of_issuer_imports_itself_back_through_others() -> None:
    assert circles(GRAPH) == []


def test_the_walk_finds_a_circle_when_there_is_one() -> None:
    assert circles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


NO_IO = {
    "os",
    "io",
    "pathlib",
    "shutil",
    "socket",
    "subprocess",
    "urllib",
    "http",
    "sqlite3",
    "tempfile",
}


def _in(name: str, *packages: str) -> bool:
    return any(name == p or name.startswith(p + ".") for p in packages)


@pytest.mark.parametrize("name", sorted(n for n in MODULES if _in(n, "issuer.web")))
def test_web_never_imports_the_ledger(name: str) -> None:
    assert not {i for i in GRAPH[name] if _in(i, "issuer.ledger")}, name


@pytest.mark.parametrize("name", sorted(n for n in MODULES if _in(n, "issuer.policy")))
def test_policy_imports_only_records_errors_addresses_and_itself(name: str) -> None:
    # addresses is a value module like records: canonical client addresses and rate buckets.
    allowed = ("issuer.policy", "issuer.records", "issuer.errors", "issuer.addresses", "verifier")
    outside = {i for i in GRAPH[name] if not _in(i, *allowed)}
    # The standard library's time, text and data modules only: nothing that reaches a file or the network.
    assert {i for i in outside if i not in sys.stdlib_module_names or i in NO_IO} == set(), name


@pytest.mark.parametrize("name", sorted(n for n in MODULES if _in(n, "issuer.ledger")))
def test_the_ledger_keeps_and_decides_nothing_it_imports_no_rule_capability_or_facade(
    name: str,
) -> None:
    above = (
        "issuer.policy",
        "issuer.licensing",
        "issuer.service",
        "issuer.facade",
        "issuer.web",
        "issuer.cli",
    )
    assert {i for i in GRAPH[name] if _in(i, *above)} == set(), name


@pytest.mark.parametrize("name", sorted(n for n in MODULES if _in(n, "issuer.licensing")))
def test_capabilities_never_import_the_facade_the_web_or_the_commands(name: str) -> None:
    above = (
        "issuer.facade",
        "issuer.config",
        "issuer.web",
        "issuer.cli",
        "issuer.admin_cli",
        "issuer.umbrella",
    )
    assert {i for i in GRAPH[name] if _in(i, *above)} == set(), name


@pytest.mark.parametrize("name", sorted(n for n in MODULES if _in(n, "issuer.licensing")))
def test_capabilities_reach_the_ledger_only_through_its_ports(name: str) -> None:
    # Never a backend or one of its parts: a capability works the same on every backend.
    assert {i for i in GRAPH[name] if _in(i, "issuer.ledger")} <= {"issuer.ledger.api"}, name


def test_accounts_need_of_the_ledger_only_the_account_store() -> None:
    tree = ast.parse(modules("issuer")["issuer.licensing.accounts"].read_text())
    names = {
        alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and node.module and _in(node.module, "issuer.ledger")
        for alias in node.names
    }
    assert names == {"AccountStore"}


BACKENDS = ("issuer.ledger.folder", "issuer.ledger.postgres")


def _backend_of(name: str) -> str | None:
    """The backend a module of the ledger belongs to (``issuer.ledger.folder_log`` → folder), if any."""
    return next((b for b in BACKENDS if name == b or name.startswith(b + "_")), None)


@pytest.mark.parametrize("name", sorted(n for n in MODULES if _backend_of(n)))
def test_the_two_backends_import_nothing_of_each_other(name: str) -> None:
    mine = _backend_of(name)
    assert {i for i in GRAPH[name] if _backend_of(i) not in (None, mine)} == set(), name


@pytest.mark.parametrize("name", sorted(n for n in MODULES if _backend_of(n) and n not in BACKENDS))
def test_a_backend_part_sits_below_its_backend_and_the_door(name: str) -> None:
    # A part (accounts, revocation list, log, schema, ...) is handed what it needs; it never reaches back up.
    above = {"issuer.ledger", "issuer.ledger.copy", *BACKENDS}
    assert GRAPH[name] & above == set(), name
