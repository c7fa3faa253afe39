"""``keytool``: the provider's signing keys (new, list, rotate, revoke, export)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from typer.exceptions import TyperException

from keytool.keyring import TRUSTED_KEYS_FILE, KeyRecord, Keyring
from keytool.passphrase import read_passphrase
from verifier.cliutil import CONTEXT_SETTINGS, PathOption, confirm, print_json, run
from verifier.clock import format_utc

app = typer.Typer(
    rich_markup_mode=None,  # plain help: no boxes, no <bool> after a flag
    help="Manage the provider's Ed25519 signing keys.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings=CONTEXT_SETTINGS,
)

KeysDir = Annotated[
    Path, typer.Option("--keys", envvar="LICET_KEYS", help="Keys folder.", show_default=True)
]
PassphraseFile = Annotated[
    Path | None,
    typer.Option(
        "--passphrase-file",
        help="Encrypt the private key with the passphrase in this file "
        "(or set LICET_KEY_PASSPHRASE[_FILE]); default: not encrypted.",
    ),
]
Json = Annotated[bool, typer.Option("--json", help="Print JSON (default: text).")]
_KEYS_OPTION: PathOption = ("--keys", "LICET_KEYS", "./keys")
# The refusals about a missing keys folder say where its path came from.
_PATHS = {"keyring-missing": _KEYS_OPTION, "no-active-key": _KEYS_OPTION}


def _view(record: KeyRecord) -> dict[str, Any]:
    return {
        "kid": record.kid,
        "status": record.status,
        "created_at": format_utc(record.created_at),
        "retired_at": format_utc(record.retired_at),
        "revoked_at": format_utc(record.revoked_at),
    }


@app.command()
def new(
    keys: KeysDir = Path("keys"), passphrase_file: PassphraseFile = None, json: Json = False
) -> None:
    """Create the first signing key; it becomes the active one."""
    record = Keyring(keys).new(read_passphrase(passphrase_file))
    if json:
        print_json({**_view(record), "keys": str(keys.resolve())})
        return
    print(f"created key {record.kid} (active) in {keys.resolve()}")


@app.command("list")
def list_keys(keys: KeysDir = Path("keys"), json: Json = False) -> None:
    """List every key with its status and dates."""
    records = Keyring(keys).records()
    if json:
        print_json([_view(r) for r in records])
        return
    print(f"{'KID':<16}  {'STATUS':<8}  {'CREATED':<20}  UNTIL")
    for r in records:
        until = format_utc(r.retired_at or r.revoked_at) or "-"
        print(f"{r.kid:<16}  {r.status:<8}  {format_utc(r.created_at):<20}  {until}")


@app.command()
def rotate(
    keys: KeysDir = Path("keys"), passphrase_file: PassphraseFile = None, json: Json = False
) -> None:
    """Make a new active key; the previous active key is retired."""
    ring = Keyring(keys)
    previous = ring.active().kid
    record = ring.rotate(read_passphrase(passphrase_file))
    if json:
        print_json({**_view(record), "retired": previous})
        return
    print(f"created key {record.kid} (active); key {previous} retired")
    print("run 'keytool export' and ship the new trusted keys to panels")


@app.command()
def revoke(
    kid: Annotated[str, typer.Argument(help="Key id.")],
    keys: KeysDir = Path("keys"),
    yes: Annotated[
        bool, typer.Option("--yes", "-y", help="Revoke the active key without asking.")
    ] = False,
    json: Json = False,
) -> None:
    """Revoke a key: tokens it signed stop verifying wherever the new trust set goes."""
    ring = Keyring(keys)
    if any(r.kid == kid and r.status == "active" for r in ring.records()):
        confirm(
            f"{kid} is the active signing key: nothing can be signed until 'keytool rotate'. "
            "Revoke it?",
            yes,
        )
    record = ring.revoke(kid)
    if json:
        print_json(_view(record))
        return
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
    json: Json = False,
) -> None:
    """Write the public trust set (JWKS) that panels verify tokens with."""
    ring = Keyring(keys)
    if out == Path("-"):
        print_json(ring.trusted_keys().to_jwks())
        return
    path = ring.export(out or keys / TRUSTED_KEYS_FILE, force=force)
    if json:
        kids = [k["kid"] for k in ring.trusted_keys().to_jwks()["keys"]]
        print_json({"path": str(path.resolve()), "kids": kids})
        return
    print(f"wrote trusted keys to {path.resolve()}")


def main(argv: list[str] | None = None, prog: str = "keytool") -> None:
    """Console-script entry point (``argv`` and ``prog`` for ``licet keytool``)."""
    run(
        prog,
        lambda: app(args=argv, prog_name=prog, standalone_mode=False),
        argv=argv,
        paths=_PATHS,
        usage_errors=(TyperException,),
    )
