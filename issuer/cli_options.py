"""What the issuer's command groups share: --ledger, --keys, --json, --trusted-proxy, the actor.

A module of its own because ``issuer.cli`` imports the ``issuer admin`` group
from :mod:`issuer.admin_cli`, which could not import them back from there.
"""

from __future__ import annotations

import getpass
from pathlib import Path
from typing import Annotated

import typer

__all__ = ["Json", "KeysDir", "LedgerDir", "TrustedProxies", "cli_actor"]

KeysDir = Annotated[Path, typer.Option("--keys", envvar="LICET_KEYS", help="Keys folder.")]
LedgerDir = Annotated[
    str,
    typer.Option(
        "--ledger",
        envvar="LICET_LEDGER",
        help="Ledger folder, or postgresql://user@host/db (password via PGPASSWORD/PGPASSFILE).",
    ),
]
Json = Annotated[bool, typer.Option("--json", help="Print JSON (default: text).")]
#: ``issuer serve`` and ``issuer console`` believe forwarded addresses from the same proxies.
TrustedProxies = Annotated[
    list[str] | None,
    typer.Option(
        "--trusted-proxy",
        help="Believe X-Forwarded-For from this peer (address or network), repeatable "
        "(default: none).",
    ),
]


def cli_actor() -> str:
    """Who the audit trail names for a change made from the command line: ``cli:<os user>``."""
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return "cli"
