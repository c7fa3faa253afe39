"""What the issuer's command groups share: --ledger, --keys, --json, --trusted-proxy, the actor.

A module of its own because ``issuer.cli`` imports the ``issuer admin`` group
from :mod:`issuer.admin_cli`, which could not import them back from there.
"""

from __future__ import annotations

import getpass
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from issuer.facade import Issuer
from keytool.passphrase import read_passphrase

__all__ = [
    "Json",
    "KeysDir",
    "LeaseDays",
    "LedgerDir",
    "MachineIds",
    "PassphraseFile",
    "Qr",
    "QrPng",
    "TokenOut",
    "TrustedProxies",
    "cli_actor",
    "open_issuer",
]

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


def open_issuer(ledger: str, keys: Path, passphrase_file: Path | None = None) -> Issuer:
    """The façade a command works through, acting as the command line's user."""
    return Issuer(ledger, keys, passphrase=read_passphrase(passphrase_file), actor=cli_actor())


PassphraseFile = Annotated[
    Path | None,
    typer.Option(
        "--passphrase-file",
        help="Passphrase of the signing key (or LICET_KEY_PASSPHRASE[_FILE]); "
        "default: the key is not encrypted.",
    ),
]
LeaseDays = Annotated[
    int | None,
    typer.Option(
        "--lease-days",
        help="Lease in days: tokens must be renewed within it (0 = no lease, until expiry; "
        "default: the ledger's). A token never outlives the next possible key regeneration "
        "(a month), so a longer lease gives tokens of about 30 days; 'license show' says "
        "the effective lease.",
    ),
]
Qr = Annotated[bool, typer.Option("--qr", help="Also print the token as a QR code.")]
QrPng = Annotated[
    Path | None,
    typer.Option("--qr-png", help="Write the token's QR code as a PNG file (default: none)."),
]
TokenOut = Annotated[
    Path | None,
    typer.Option("--out", help="Write the token to this file (default: print it)."),
]


class MachineIds(StrEnum):
    """Whether activations with a custom machine id (``--machine-id``) are accepted."""

    ACCEPT = "accept"
    REFUSE = "refuse"
