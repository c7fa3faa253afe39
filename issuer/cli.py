"""``issuer``: licenses, activation keys, air-gapped activation (and the license server)."""

from __future__ import annotations

import sys
from dataclasses import asdict
from pathlib import Path
from typing import Annotated

import typer
from typer.exceptions import TyperException

from issuer.admin_cli import admin_app, console
from issuer.cli_options import (
    Json,
    KeysDir,
    LedgerDir,
    MachineIds,
    PassphraseFile,
    Qr,
    QrPng,
    TokenOut,
    TrustedProxies,
    cli_actor,
    open_issuer,
)
from issuer.config import IssuerConfig
from issuer.facade import Issuer
from issuer.ledger import is_database_url, redact_url, upgrade_schema
from issuer.ledger.copy import copy_ledger
from issuer.license_cli import license_app
from issuer.policy.ratelimit import RateLimit
from issuer.webhook_cli import delivering, webhook_app
from verifier.cliutil import CONTEXT_SETTINGS, PathOption, print_json, run
from verifier.errors import BadInputError, LicenseError, RenewalCodeError, RequestCodeError
from verifier.renewal import parse_renewal_code
from verifier.request import code_kind, parse_request_code, wrong_kind
from verifier.wire import DEFAULT_SERVER_PORT

# The license server's port (the panel's client names it when a URL is wrong); the
# panel's callback defaults to another (8472), so a provider can run both on one machine.
DEFAULT_PORT = DEFAULT_SERVER_PORT

app = typer.Typer(
    rich_markup_mode=None,  # plain help: no boxes, no <bool> after a flag
    help="Issue licenses and activation keys; redeem activation requests.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings=CONTEXT_SETTINGS,
)
ledger_app = typer.Typer(
    rich_markup_mode=None,  # plain help: no boxes, no <bool> after a flag
    help="Upgrade a ledger's schema; copy a ledger between a folder and PostgreSQL.",
    no_args_is_help=True,
    context_settings=CONTEXT_SETTINGS,
)
app.add_typer(license_app, name="license")
app.add_typer(ledger_app, name="ledger")
app.add_typer(webhook_app, name="webhook")
app.add_typer(admin_app, name="admin")
app.command("console")(console)
ratelimit_app = typer.Typer(
    rich_markup_mode=None,  # plain help: no boxes, no <bool> after a flag
    help="See and clear the failed-attempt limits of the license server's clients.",
    no_args_is_help=True,
    context_settings=CONTEXT_SETTINGS,
)
app.add_typer(ratelimit_app, name="ratelimit")
revocations_app = typer.Typer(
    rich_markup_mode=None,  # plain help: no boxes, no <bool> after a flag
    help="The signed revocation list for panels.",
    no_args_is_help=True,
    context_settings=CONTEXT_SETTINGS,
)
app.add_typer(revocations_app, name="revocations")

# The options naming files a "missing" refusal is about (see verifier.cliutil.run).
_KEYS_OPTION: PathOption = ("--keys", "LICET_KEYS", "./keys")
_PATHS: dict[str, PathOption] = {
    "ledger-missing": ("--ledger", "LICET_LEDGER", "./ledger"),
    "keyring-missing": _KEYS_OPTION,
    "no-active-key": _KEYS_OPTION,
    "secret-missing": _KEYS_OPTION,
}


@app.command()
def init(
    name: Annotated[str, typer.Option("--name", help="Provider name (the tokens' issuer).")],
    lease_days: Annotated[
        int,
        typer.Option("--lease-days", help="Default lease in days for new licenses (0 = no lease)."),
    ] = 30,
    machine_ids: Annotated[
        MachineIds,
        typer.Option(
            "--machine-ids",
            help="Default for licenses: accept or refuse activations with a custom machine id.",
        ),
    ] = MachineIds.ACCEPT,
    ledger: LedgerDir = "ledger",
    keys: KeysDir = Path("keys"),
    json: Json = False,
) -> None:
    """Create a new ledger (and the activation-key secret); never overwrites one."""
    iss = Issuer.init(
        ledger,
        keys,
        name=name,
        accept_machine_id=machine_ids is MachineIds.ACCEPT,
        lease_days=lease_days,
        actor=cli_actor(),
    )
    lease = f"{lease_days}-day leases" if lease_days else "no leases"
    where = iss.ledger.location if is_database_url(ledger) else str(Path(ledger).resolve())
    if json:
        print_json(
            {
                "ledger": where,
                "keys": str(keys.resolve()),
                "provider": name,
                "lease_days": lease_days,
            }
        )
        return
    print(f"created ledger in {where} for provider {name!r} ({lease} by default)")


@ledger_app.command("upgrade")
def ledger_upgrade(ledger: LedgerDir = "ledger") -> None:
    """Bring a PostgreSQL ledger's schema up to this issuer's version (explicit, one step)."""
    if not is_database_url(ledger):
        raise BadInputError("only a postgresql:// ledger has a schema to upgrade")
    before, after = upgrade_schema(ledger)
    where = redact_url(ledger)
    if before == after:
        print(f"the ledger in {where} is at schema version {after} already")
    else:
        print(f"upgraded the ledger in {where} from schema version {before} to {after}")


@ledger_app.command("copy")
def ledger_copy(
    source: Annotated[
        str, typer.Option("--from", help="The ledger to copy: a folder or postgresql:// URL.")
    ],
    destination: Annotated[
        str, typer.Option("--to", help="A new folder, or a database without a ledger.")
    ],
    json: Json = False,
) -> None:
    """Copy a ledger between backends; checks counts and a digest, removes a bad copy."""
    summary = copy_ledger(source, destination)
    if json:
        print_json(asdict(summary))
        return
    print(
        f"copied {summary.licenses} licenses, {summary.activations} activations, "
        f"{summary.events} events, {summary.users} console users, {summary.tokens} "
        f"API tokens, {summary.webhooks} webhook endpoints and {summary.undelivered} "
        f"undelivered webhook deliveries; digest {summary.digest} matches the source"
    )


FailureLimit = Annotated[
    int,
    typer.Option(
        "--failure-limit",
        min=1,
        max=10_000,
        help="Failed key attempts per address per 15 minutes (the server's --failure-limit).",
    ),
]


@ratelimit_app.command("list")
def ratelimit_list(
    failure_limit: FailureLimit = 10,
    ledger: LedgerDir = "ledger",
    keys: KeysDir = Path("keys"),
    json: Json = False,
) -> None:
    """List the clients with failed attempts in the window, blocked ones first."""
    config = IssuerConfig(rate_limit=RateLimit(limit=failure_limit))
    iss = Issuer(ledger, keys, config=config, actor=cli_actor())
    entries = [e.to_dict() for e in iss.rate_limits.limited()]
    if json:
        print_json(entries)
        return
    print(f"{'CLIENT':<40}  {'FAILURES':>8}  {'LAST FAILURE':<20}  BLOCKED UNTIL")
    for e in entries:
        print(
            f"{e['bucket']:<40}  {e['failures']:>8}  {e['last_failure']:<20}  "
            f"{e['blocked_until'] or '-'}"
        )


@ratelimit_app.command("clear")
def ratelimit_clear(
    address: Annotated[
        str | None,
        typer.Argument(help="The client's IP address (default: every client)."),
    ] = None,
    ledger: LedgerDir = "ledger",
    keys: KeysDir = Path("keys"),
    json: Json = False,
) -> None:
    """Forget a client's failed attempts, so a locked-out customer can try again now."""
    cleared = open_issuer(ledger, keys).rate_limits.clear(address)
    if json:
        print_json({"cleared": cleared})
        return
    who = address or "any client"
    print(f"cleared {', '.join(cleared)}" if cleared else f"no failed attempts recorded for {who}")


Force = Annotated[
    bool, typer.Option("--force", help="Replace an existing --out file that is not a token.")
]


def _deliver(
    iss: Issuer,
    token: str,
    out: Path | None,
    force: bool,
    qr: bool,
    qr_png: Path | None,
    json: bool = False,
) -> None:
    """Print the token (or write it to ``out``), with its QR code when asked."""
    if out is not None:
        iss.save_token(out, token, force=force)
    if json:
        print_json({"token": token, "out": None if out is None else str(out.resolve())})
    elif out is None:
        print(token)
    else:
        print(f"wrote token to {out.resolve()}")
    if qr or qr_png:
        from verifier.qr import qr_png as write_png
        from verifier.qr import qr_terminal

        if qr:
            print(qr_terminal(token), end="")
        if qr_png:
            write_png(token, qr_png)
            print(f"QR code written to {qr_png}", file=sys.stderr)


# Where each kind of pasted text goes, for a refusal of the wrong kind.
_TAKEN_BY = {
    "activation request code": "'issuer activate' takes it",
    "renewal code": "'issuer renew' takes it",
    "activation token": "it goes on the customer's server: 'verifier install'",
    "revocation list": "panels take it: 'verifier revocations install'",
}


def _code(argument: str, expected: str, error: type[LicenseError]) -> str:
    """The code given as ``argument`` (or on stdin for ``-``), refused when it is another kind."""
    text = sys.stdin.read(8192) if argument == "-" else argument
    kind = code_kind(text)
    if kind is not None and kind != expected:
        raise error(f"{wrong_kind(kind, expected)}: {_TAKEN_BY[kind]}")
    return text


@app.command()
def activate(
    code: Annotated[str, typer.Argument(help="The request code, or - to read it from stdin.")],
    out: TokenOut = None,
    force: Force = False,
    qr: Qr = False,
    qr_png: QrPng = None,
    ledger: LedgerDir = "ledger",
    keys: KeysDir = Path("keys"),
    passphrase_file: PassphraseFile = None,
    json: Json = False,
) -> None:
    """Redeem an air-gapped activation request code and print the token."""
    text = _code(code, "activation request code", RequestCodeError)
    iss = open_issuer(ledger, keys, passphrase_file)
    activated = iss.activations.redeem(parse_request_code(text), method="air-gapped")
    _deliver(iss, activated.token, out, force, qr, qr_png, json)


@app.command()
def renew(
    code: Annotated[str, typer.Argument(help="The renewal code, or - to read it from stdin.")],
    out: TokenOut = None,
    force: Force = False,
    qr: Qr = False,
    qr_png: QrPng = None,
    ledger: LedgerDir = "ledger",
    keys: KeysDir = Path("keys"),
    passphrase_file: PassphraseFile = None,
    json: Json = False,
) -> None:
    """Renew an air-gapped server's lease from its renewal code and print the new token."""
    text = _code(code, "renewal code", RenewalCodeError)
    iss = open_issuer(ledger, keys, passphrase_file)
    renewed = iss.activations.renew(parse_renewal_code(text), method="air-gapped")
    _deliver(iss, renewed.token, out, force, qr, qr_png, json)


@revocations_app.command("export")
def revocations_export(
    out: Annotated[
        Path | None,
        typer.Option("--out", help="Write the list to this file (default: print it)."),
    ] = None,
    force: Annotated[
        bool,
        typer.Option("--force", help="Replace an existing --out file that is not such a list."),
    ] = False,
    days: Annotated[
        int | None, typer.Option("--days", help="Days the list stays fresh (default 30).")
    ] = None,
    ledger: LedgerDir = "ledger",
    keys: KeysDir = Path("keys"),
    passphrase_file: PassphraseFile = None,
    json: Json = False,
) -> None:
    """Print the signed revocation list (revoked licenses, superseded activations)."""
    iss = open_issuer(ledger, keys, passphrase_file)
    signed = iss.revocation_lists.signed(days)
    text = signed.text  # refused when larger than panels accept
    if signed.warning is not None:  # close to that: say so while there is time
        print(f"warning: {signed.warning}", file=sys.stderr)
    if out is not None:
        iss.save_revocation_list(out, text, force=force)
    if json:
        print_json({"revocations": text, "out": None if out is None else str(out.resolve())})
    elif out is None:
        print(text)
    else:
        print(f"wrote the revocation list to {out.resolve()}")


@app.command()
def serve(
    host: Annotated[str, typer.Option("--host", help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[
        int,
        typer.Option(
            "--port", min=1, max=65535, help="Port to listen on (the panel's callback uses 8472)."
        ),
    ] = DEFAULT_PORT,
    workers: Annotated[
        int, typer.Option("--workers", min=1, max=64, help="uvicorn worker processes.")
    ] = 1,
    allow_private_callbacks: Annotated[
        bool,
        typer.Option(
            "--allow-private-callbacks",
            help="Allow callbacks to private addresses (default: public addresses only).",
        ),
    ] = False,
    trusted_proxy: TrustedProxies = None,
    callback_timeout: Annotated[
        float,
        typer.Option("--callback-timeout", min=0.1, max=30, help="Seconds for the whole callback."),
    ] = 5.0,
    failure_limit: Annotated[
        int,
        typer.Option(
            "--failure-limit", min=1, help="Failed key attempts per address per 15 minutes."
        ),
    ] = 10,
    ipv6_prefix: Annotated[
        int,
        typer.Option(
            "--ipv6-prefix",
            min=32,
            max=128,
            help="Rate-limit IPv6 clients per network of this prefix length.",
        ),
    ] = 64,
    request_timeout: Annotated[
        float,
        typer.Option(
            "--request-timeout", min=0.5, max=120, help="Seconds to receive a whole request."
        ),
    ] = 10.0,
    revocations_rate: Annotated[
        int,
        typer.Option(
            "--revocations-rate",
            min=1,
            max=100_000,
            help="Revocation-list requests per address per minute (per worker).",
        ),
    ] = 60,
    ledger: LedgerDir = "ledger",
    keys: KeysDir = Path("keys"),
    passphrase_file: PassphraseFile = None,
) -> None:
    """Run the license server (online manual and automatic activation)."""
    try:
        from issuer.web.license_server import ServerConfig
        from issuer.web.license_server import serve as run_server
    except ImportError as err:
        raise LicenseError(
            "the license server needs the 'server' extra: pip install '.[server]' (in the checkout)"
        ) from err
    config = ServerConfig(
        ledger=str(ledger),
        keys=str(keys),
        allow_private_callbacks=allow_private_callbacks,
        trusted_proxies=tuple(trusted_proxy or ()),
        callback_timeout=callback_timeout,
        failure_limit=failure_limit,
        ipv6_prefix=ipv6_prefix,
        receive_timeout=request_timeout,
        revocations_per_minute=revocations_rate,
    )

    def announce(url: str) -> None:
        print(f"licet license server on {url} ({workers} worker(s))", flush=True)

    with delivering(ledger):
        run_server(
            config,
            host=host,
            port=port,
            workers=workers,
            passphrase_file=passphrase_file,
            on_listening=announce,
        )


def main(argv: list[str] | None = None, prog: str = "issuer") -> None:
    """Console-script entry point (``argv`` and ``prog`` for ``licet issuer``)."""
    run(
        prog,
        lambda: app(args=argv, prog_name=prog, standalone_mode=False),
        argv=argv,
        paths=_PATHS,
        usage_errors=(TyperException,),
    )
