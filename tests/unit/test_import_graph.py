"""The panel's package as a graph of imports: no circle, nothing of the provider's, few libraries.

Every import statement in ``verifier/`` counts, those inside functions (lazy
imports) included: a lazy import still ties two modules together, it only
hides the tie from the interpreter at start-up.
"""

from __future__ import annotations

import sys

from importgraph import circles, graph

PACKAGE = "verifier"
# What a panel installs besides the standard library: cryptography, and segno for QR codes.
LIBRARIES = {"cryptography", "segno"}
GRAPH = graph(PACKAGE)


def ours(name: str) -> set[str]:
    """The modules of the verifier that ``name`` imports."""
    return GRAPH[name] & GRAPH.keys()


def test_the_walk_sees_lazy_imports_and_every_module() -> None:
    assert {"verifier.errors.input", "verifier.jws", "verifier.wire", "verifier.timefmt"} <= set(
        GRAPH
    )
    # Verifier.activate imports the wire inside the method: the walk must see it.
    assert "verifier.wire" in GRAPH["verifier.verify"]
    assert "verifier.client" in GRAPH["verifier"]  # verifier.__getattr__ loads the client lazily


def test_no_import_circle_among_the_verifiers_modules() -> None:
    assert circles(GRAPH) == []


def test_the_leaves_stay_leaves() -> None:
    assert ours("verifier.timefmt") == set()  # how a time is written needs nothing of licet
    assert not ours("verifier.wire") & {"verifier.client", "verifier.verify"}
    assert not ours("verifier.clock") & {"verifier.errors.activation", "verifier.errors.token"}


def test_the_verifier_imports_nothing_of_the_provider_and_only_its_libraries() -> None:
    outside: dict[str, set[str]] = {}
    for name, targets in GRAPH.items():
        for top in targets - GRAPH.keys():
            if top != PACKAGE and top != "__future__" and top not in sys.stdlib_module_names:
                outside.setdefault(top, set()).add(name)
    assert not outside.keys() & {"issuer", "keytool"}, outside
    assert outside.keys() <= LIBRARIES, outside  # no PyJWT, no CLI, storage or web library


def test_no_import_circle_among_all_of_licets_modules() -> None:
    assert circles(graph("verifier", "keytool", "issuer")) == []
