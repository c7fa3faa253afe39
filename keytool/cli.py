"""``keytool``: the provider's signing keys (new, list, rotate, revoke, export)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from typer.exceptions import TyperException

from keytool.keyring import TRUSTED_KEYS_FILE, Keyring
from keytool.passphrase import read_passphrase
from verifier.cliutil import print_json, run

app = typer.Typer(
    help="Manage the provider's Ed25519 signing keys.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

KeysDir = Annotated[
    Path, typer.Option("--keys", envvar="LICET_KEYS", help="Keys folder.", show_default=True)
]
PassphraseFile = Annotated[
    Path | None,
    typer.Option(
        "--passphrase-file",
        help="Encrypt the private key with the passphrase in this file "
        "(or set LICET_KEY_PASSPHRASE[_FILE]).",
    ),
]
Json = Annotated[bool, typer.Option("--json", help="Print JSON.")]


@app.command()
def new(keys: KeysDir = Path("keys"), passphrase_file: PassphraseFile = None) -> None:
    """Create the first signing key; it becomes the active one."""
    record = Keyring(keys).new(read_passphrase(passphrase_file))
    print(f"created key {record.kid} (active) in {keys}")


@app.command("list")
def list_keys(keys: KeysDir = Path("keys"), json: Json = False) -> None:
    """List every key with its status and dates."""
    records = Keyring(keys).records()
    if json:
        print_json([r.to_dict() for r in records])
        return
    for r in records:
        until = r.retired_at or r.revoked_at
        print(
            f"{r.kid}  {r.status:<8} since {r.created_at:%Y-%m-%d}"
            + (f" until {until:%Y-%m-%d}" if until else "")
        )


@app.command()
def rotate(keys: KeysDir = Path("keys"), passphrase_file: PassphraseFile = None) -> None:
    """Make a new active key; the previous active key is retired."""
    record = Keyring(keys).rotate(read_passphrase(passphrase_file))
    print(f"created key {record.kid} (active); previous key retired")
    print("run 'keytool export' and ship the new trusted keys to panels")


@app.command()
def revoke(
    kid: Annotated[str, typer.Argument(help="Key id.")], keys: KeysDir = Path("keys")
) -> None:
    """Revoke a key: tokens it signed stop verifying wherever the new trust set goes."""
    Keyring(keys).revoke(kid)
    print(f"revoked key {kid}; run 'keytool export' and ship the new trusted keys to panels")


@app.command()
def export(
    keys: KeysDir = Path("keys"),
    out: Annotated[
        Path | None,
        typer.Option(
            "--out", help=f"Output file (default KEYS/{TRUSTED_KEYS_FILE}; - for stdout)."
        ),
    ] = None,
    force: Annotated[
        bool,
        typer.Option(
            "--force", help="Replace an existing file that is not an earlier export (never keys)."
        ),
    ] = False,
) -> None:
    """Write the public trust set (JWKS) that panels verify tokens with."""
    ring = Keyring(keys)
    if out == Path("-"):
        print_json(ring.trusted_keys().to_jwks())
        return
    path = ring.export(out or keys / TRUSTED_KEYS_FILE, force=force)
    print(f"wrote trusted keys to {path}")


def main() -> None:
    """Console-script entry point."""
    run("keytool", lambda: app(standalone_mode=False), usage_errors=(TyperException,))
