"""``licet``: the three tools under one name (``licet keytool|issuer|verifier ...``).

Another program called ``keytool`` (the JDK's) is often first on ``PATH``;
``licet keytool new`` cannot be mistaken for it. Each tool runs exactly as its
own command would, with ``licet TOOL`` as its name in help and messages.

Example::

    licet keytool new
    licet issuer license create --product ispmanager --days 365
    licet verifier status --product ispmanager --trusted-keys trusted_keys.json
"""

from __future__ import annotations

import sys
from collections.abc import Callable

from verifier import __version__
from verifier.cliutil import EXIT_USAGE, fail, print_json, refusal_document, wants_json

_USAGE = """\
usage: licet [-h] [--version] TOOL [ARGS...]

licet: licensing for server software (Ed25519-signed offline activation tokens).

tools:
  keytool   the provider's signing keys: new, list, rotate, revoke, export
  issuer    licenses, activation keys, air-gapped activation, the license server
  verifier  the customer's server: fingerprint, request, install, status, activate

'licet TOOL --help' shows a tool's commands.
"""


def _tool(name: str) -> Callable[[list[str], str], None] | None:
    # Imported on demand: 'licet verifier' must not load typer or the ledger.
    if name == "keytool":
        from keytool.cli import main as keytool_main

        return keytool_main
    if name == "issuer":
        from issuer.cli import main as issuer_main

        return issuer_main
    if name == "verifier":
        from verifier.cli import main as verifier_main

        return verifier_main
    return None


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point: dispatch ``licet TOOL ARGS...`` to the tool."""
    args = sys.argv[1:] if argv is None else argv
    if not args or args[0] in ("-h", "--help"):
        print(_USAGE, end="", file=sys.stdout if args else sys.stderr)
        raise SystemExit(0 if args else EXIT_USAGE)
    if args[0] == "--version":
        print(f"licet {__version__}")
        raise SystemExit(0)
    tool = _tool(args[0])
    if tool is None:
        why = f"unknown tool {args[0]!r}: expected keytool, issuer or verifier (see 'licet --help')"
        if wants_json(args):
            print_json(refusal_document("usage", why))
        fail("licet", why, EXIT_USAGE)
    tool(args[1:], f"licet {args[0]}")
