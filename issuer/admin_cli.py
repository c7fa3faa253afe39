"""``issuer admin`` (console users, API tokens) and ``issuer console`` (the web console).

Passwords are never command-line arguments: they come from ``--password-file``,
else one line of stdin when it is not a terminal, else a prompt asked twice.
"""

from __future__ import annotations

import getpass
import sys
from pathlib import Path
from typing import Annotated

import typer

from issuer.cli_options import Json, KeysDir, LedgerDir, TrustedProxies, cli_actor
from issuer.facade import Issuer
from issuer.webhook_cli import delivering
from verifier.cliutil import print_json
from verifier.clock import format_utc
from verifier.errors import BadInputError
from verifier.fileio import os_error_words

#: What ``issuer console`` and its login page say while nobody can log in.
NO_USERS = "no console users yet: issuer admin user add NAME"

admin_app = typer.Typer(
    help="Console users and admin API tokens.", no_args_is_help=True, rich_markup_mode=None
)
user_app = typer.Typer(
    help="Add, list and remove console users.", no_args_is_help=True, rich_markup_mode=None
)
token_app = typer.Typer(
    help="Create, list and revoke admin API tokens.", no_args_is_help=True, rich_markup_mode=None
)
admin_app.add_typer(user_app, name="user")
admin_app.add_typer(token_app, name="token")

_MAX_PASSWORD_FILE = 4096


def _issuer(ledger: str, keys: Path) -> Issuer:
    return Issuer(ledger, keys, actor=cli_actor())


def _read_password(password_file: Path | None) -> str:
    if password_file is not None:
        try:
            with open(password_file, "rb") as handle:
                data = handle.read(_MAX_PASSWORD_FILE + 1)
        except OSError as err:  # reading, not writing: a missing file is "no such file"
            raise BadInputError(
                f"cannot read password file {password_file}: {os_error_words(err)}"
            ) from err
        if len(data) > _MAX_PASSWORD_FILE:
            raise BadInputError(f"{password_file} is too large for a password file")
        try:
            lines = data.decode("utf-8", errors="strict").splitlines()
        except UnicodeDecodeError:
            raise BadInputError(f"password file {password_file} is not UTF-8 text") from None
        return lines[0] if lines else ""
    if not sys.stdin.isatty():
        return sys.stdin.readline(_MAX_PASSWORD_FILE).rstrip("\r\n")
    first = getpass.getpass("Password: ")
    if getpass.getpass("Password (again): ") != first:
        raise BadInputError("the two passwords differ; nothing was changed")
    return first


@user_app.command("add")
def user_add(
    name: Annotated[str, typer.Argument(help="User name.")],
    password_file: Annotated[
        Path | None,
        typer.Option(
            "--password-file",
            help="Read the password from this file (default: stdin, or a prompt on a terminal).",
        ),
    ] = None,
    ledger: LedgerDir = "ledger",
    keys: KeysDir = Path("keys"),
) -> None:
    """Add a console user (password from a file, stdin or a prompt; never an argument)."""
    iss = _issuer(ledger, keys)
    iss.accounts.add_user(name, _read_password(password_file), actor=iss.actor)
    print(f"added console user {name}")


@user_app.command("list")
def user_list(
    ledger: LedgerDir = "ledger", keys: KeysDir = Path("keys"), json: Json = False
) -> None:
    """List console users."""
    users = _issuer(ledger, keys).accounts.users()
    if json:
        print_json([{"name": u.name, "created_at": format_utc(u.created_at)} for u in users])
        return
    for u in users:
        print(f"{u.name:<32} added {format_utc(u.created_at)}")


@user_app.command("remove")
def user_remove(
    name: Annotated[str, typer.Argument(help="User name.")],
    ledger: LedgerDir = "ledger",
    keys: KeysDir = Path("keys"),
) -> None:
    """Remove a console user and end their sessions."""
    iss = _issuer(ledger, keys)
    iss.accounts.remove_user(name, actor=iss.actor)
    print(f"removed console user {name}")


@token_app.command("create")
def token_create(
    name: Annotated[str, typer.Argument(help="Token name (recorded as api:NAME).")],
    scope: Annotated[
        str,
        typer.Option(
            "--scope",
            help="read (GET, without activation keys), keys (GET with keys) or write (all).",
        ),
    ],
    ledger: LedgerDir = "ledger",
    keys: KeysDir = Path("keys"),
    json: Json = False,
) -> None:
    """Create an admin API token; it is printed once, on the last line, and stored hashed."""
    iss = _issuer(ledger, keys)
    account, token = iss.accounts.create_token(name, scope, actor=iss.actor)
    if json:
        print_json({"name": account.name, "scope": account.scope, "token": token})
        return
    print(f"created {account.scope} token {account.name}; it is shown only now:")
    print(token)


@token_app.command("list")
def token_list(
    ledger: LedgerDir = "ledger", keys: KeysDir = Path("keys"), json: Json = False
) -> None:
    """List admin API tokens (names and scopes)."""
    tokens = _issuer(ledger, keys).accounts.tokens()
    if json:
        print_json(
            [
                {"name": t.name, "scope": t.scope, "created_at": format_utc(t.created_at)}
                for t in tokens
            ]
        )
        return
    for t in tokens:
        print(f"{t.name:<32} {t.scope:<6} created {format_utc(t.created_at)}")


@token_app.command("revoke")
def token_revoke(
    name: Annotated[str, typer.Argument(help="Token name.")],
    ledger: LedgerDir = "ledger",
    keys: KeysDir = Path("keys"),
) -> None:
    """Revoke an admin API token at once."""
    iss = _issuer(ledger, keys)
    iss.accounts.revoke_token(name, actor=iss.actor)
    print(f"revoked token {name}")


def console(
    host: Annotated[str, typer.Option("--host", help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=1, max=65535, help="Port.")] = 8471,
    tls_cert: Annotated[
        Path | None,
        typer.Option(
            "--tls-cert", help="TLS certificate (PEM) (default: none, plain HTTP on loopback)."
        ),
    ] = None,
    tls_key: Annotated[
        Path | None, typer.Option("--tls-key", help="TLS private key (PEM) (default: none).")
    ] = None,
    allow_plain_http: Annotated[
        bool,
        typer.Option(
            "--allow-plain-http",
            help="Serve plain HTTP on a non-loopback address (behind a TLS-terminating proxy).",
        ),
    ] = False,
    trusted_proxy: TrustedProxies = None,
    ledger: LedgerDir = "ledger",
    keys: KeysDir = Path("keys"),
) -> None:
    """Run the provider console and the admin REST API."""
    try:
        from issuer.web.console_app import ConsoleConfig, check_bind, serve_console
    except ImportError as err:
        raise BadInputError(
            "the console needs the 'console' extra: pip install '.[console]' (in the checkout)"
        ) from err
    if (tls_cert is None) != (tls_key is None):
        raise BadInputError("give both --tls-cert and --tls-key")
    tls = tls_cert is not None
    check_bind(host, tls=tls, allow_plain_http=allow_plain_http)
    config = ConsoleConfig(
        ledger=str(ledger),
        keys=str(keys),
        secure_cookies=tls or allow_plain_http,
        trusted_proxies=tuple(trusted_proxy or ()),
    )

    def announce(url: str) -> None:
        print(f"licet console on {url}", flush=True)
        if not Issuer(config.ledger, config.keys).accounts.users():
            print(NO_USERS, flush=True)

    with delivering(ledger):
        serve_console(
            config, host=host, port=port, tls_cert=tls_cert, tls_key=tls_key, on_listening=announce
        )
