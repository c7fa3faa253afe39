"""``issuer``: licenses, activation keys, air-gapped activation (and the license server)."""

from __future__ import annotations

import datetime as _dt
import sys
from dataclasses import asdict
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from typer.exceptions import TyperException

from issuer.admin_cli import admin_app, console
from issuer.cli_options import Json, KeysDir, LedgerDir, TrustedProxies, cli_actor
from issuer.config import IssuerConfig
from issuer.facade import Issuer
from issuer.ledger import is_database_url, redact_url, upgrade_schema
from issuer.ledger.copy import copy_ledger
from issuer.licensing.licenses import KEEP, LicenseView
from issuer.policy.ratelimit import RateLimit
from keytool.passphrase import read_passphrase
from verifier.cliutil import CONTEXT_SETTINGS, PathOption, confirm, print_json, run, say
from verifier.clock import format_utc
from verifier.errors import BadInputError, LicenseError

# The license server's port; the panel's callback defaults to another (8472),
# so a provider can run both on one machine.
DEFAULT_PORT = 8470

app = typer.Typer(
    help="Issue licenses and activation keys; redeem activation requests.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings=CONTEXT_SETTINGS,
)
license_app = typer.Typer(
    help="Create, show, list, regenerate and revoke licenses.",
    no_args_is_help=True,
    context_settings=CONTEXT_SETTINGS,
)
app.add_typer(license_app, name="license")
ledger_app = typer.Typer(
    help="Upgrade a ledger's schema; copy a ledger between a folder and PostgreSQL.",
    no_args_is_help=True,
    context_settings=CONTEXT_SETTINGS,
)
app.add_typer(ledger_app, name="ledger")
app.add_typer(admin_app, name="admin")
app.command("console")(console)
ratelimit_app = typer.Typer(
    help="See and clear the failed-attempt limits of the license server's clients.",
    no_args_is_help=True,
    context_settings=CONTEXT_SETTINGS,
)
app.add_typer(ratelimit_app, name="ratelimit")
revocations_app = typer.Typer(
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
        "default: the ledger's).",
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


def _issuer(ledger: str, keys: Path, passphrase_file: Path | None = None) -> Issuer:
    return Issuer(ledger, keys, passphrase=read_passphrase(passphrase_file), actor=cli_actor())


def _print_license(view: LicenseView, json: bool) -> None:
    if json:
        print_json(view.to_dict())
        return
    d = view.to_dict()
    say(f"license        {d['license_id']}  ({d['status']})")
    say(f"product        {d['product']}")
    if d["customer"]:
        say(f"customer       {d['customer']}")
    if d["ip"]:
        say(f"ip             {d['ip']}")
    say(f"activation key {d['activation_key']}  (generation {d['key_generation']})")
    say(f"expires        {d['expires_at'] or 'never'}")
    say(f"features       {', '.join(d['features']) or '-'}")
    if d["limits"]:
        say(f"limits         {', '.join(f'{k}={v}' for k, v in d['limits'].items())}")
    activation = view.record.activation
    if activation is None:
        say("activated      no")
    else:
        say(
            f"activated      {format_utc(activation.activated_at)} on {activation.hostname or '?'}"
            f" ({activation.method}, {activation.activation_id})"
        )
    lease = f"{d['lease_days']} days" if d["lease_days"] else "none (until expiry)"
    say(f"lease          {lease}{' (provider default)' if d['lease_days_default'] else ''}")
    if activation is not None and activation.lease_until is not None:
        say(f"token valid    until {activation.lease_until.isoformat()}")
    say(f"machine ids    {'accepted' if d['accept_machine_id'] else 'refused'}")
    say(f"regenerate     possible from {d['next_regeneration']}")
    for event in view.record.history:
        say(f"  {format_utc(event.at)}  {event.action:<12} {event.actor}  {event.detail}")


def _limits(items: list[str]) -> dict[str, int]:
    limits: dict[str, int] = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not value.strip().isdigit():
            raise BadInputError(f"--limit takes NAME=NUMBER, got {item!r}")
        limits[name.strip()] = int(value)
    return limits


class MachineIds(StrEnum):
    """Whether activations with a custom machine id (``--machine-id``) are accepted."""

    ACCEPT = "accept"
    REFUSE = "refuse"


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
        f"{summary.events} events, {summary.users} console users and {summary.tokens} "
        f"API tokens; digest {summary.digest} matches the source"
    )


@license_app.command("create")
def license_create(
    product: Annotated[str, typer.Option("--product", help="Product name.")],
    ip: Annotated[
        str | None,
        typer.Option("--ip", help="Assigned public IP, for automatic activation (default: none)."),
    ] = None,
    days: Annotated[
        int | None, typer.Option("--days", help="Valid for N days (default: no expiry).")
    ] = None,
    expires: Annotated[
        _dt.datetime | None,
        typer.Option(
            "--expires",
            formats=["%Y-%m-%d"],
            help="Valid through YYYY-MM-DD (default: no expiry).",
        ),
    ] = None,
    feature: Annotated[
        list[str] | None,
        typer.Option("--feature", help="Enabled feature, repeatable (default: none)."),
    ] = None,
    limit: Annotated[
        list[str] | None,
        typer.Option("--limit", help="NAME=NUMBER, repeatable (default: none)."),
    ] = None,
    customer: Annotated[
        str | None, typer.Option("--customer", help="Customer, free text (default: none).")
    ] = None,
    lease_days: LeaseDays = None,
    machine_ids: Annotated[
        MachineIds | None,
        typer.Option(
            "--machine-ids",
            help="Accept or refuse activations with a custom machine id (default: the ledger's).",
        ),
    ] = None,
    new_product: Annotated[
        bool,
        typer.Option(
            "--new-product",
            help="PRODUCT is a new product (needed once the ledger has licenses of others).",
        ),
    ] = False,
    ledger: LedgerDir = "ledger",
    keys: KeysDir = Path("keys"),
    json: Json = False,
) -> None:
    """Create a license and print its activation key."""
    view = _issuer(ledger, keys).create_license(
        product,
        ip=ip,
        days=days,
        expires=None if expires is None else expires.date(),
        features=feature or [],
        limits=_limits(limit or []),
        customer=customer,
        lease_days=lease_days,
        accept_machine_id=None if machine_ids is None else machine_ids is MachineIds.ACCEPT,
        new_product=new_product,
    )
    _print_license(view, json)


@license_app.command("show")
def license_show(
    license_id: Annotated[str, typer.Argument(help="License id.")],
    ledger: LedgerDir = "ledger",
    keys: KeysDir = Path("keys"),
    json: Json = False,
) -> None:
    """Show a license: current key, activation, next regeneration date, history."""
    _print_license(_issuer(ledger, keys).show(license_id), json)


@license_app.command("list")
def license_list(
    ledger: LedgerDir = "ledger",
    keys: KeysDir = Path("keys"),
    show_keys: Annotated[
        bool,
        typer.Option(
            "--show-keys", help="Include the activation keys (default: hidden, for screen sharing)."
        ),
    ] = False,
    json: Json = False,
) -> None:
    """List every license: id, product, customer, status, expiry, activated host."""
    views = _issuer(ledger, keys).licenses()
    rows = [v.to_dict() for v in views]
    if not show_keys:
        for row in rows:
            del row["activation_key"]
    if json:
        print_json(rows)
        return
    header = (
        f"{'LICENSE':<14}  {'PRODUCT':<14}  {'CUSTOMER':<20}  {'STATUS':<9}  {'EXPIRES':<20}  HOST"
    )
    say(header + ("  ACTIVATION KEY" if show_keys else ""))
    for row in rows:
        line = (
            f"{row['license_id']:<14}  {row['product']:<14}  {(row['customer'] or '-')[:20]:<20}  "
            f"{row['status']:<9}  {row['expires_at'] or 'never':<20}  "
            f"{row['activated_hostname'] or '-'}"
        )
        say(line + (f"  {row['activation_key']}" if show_keys else ""))


@license_app.command("regenerate")
def license_regenerate(
    license_id: Annotated[str, typer.Argument(help="License id.")],
    ledger: LedgerDir = "ledger",
    keys: KeysDir = Path("keys"),
    json: Json = False,
) -> None:
    """Issue a new activation key (at most once a month); the old one stops working."""
    _print_license(_issuer(ledger, keys).regenerate(license_id), json)


@license_app.command("revoke")
def license_revoke(
    license_id: Annotated[str, typer.Argument(help="License id.")],
    ledger: LedgerDir = "ledger",
    keys: KeysDir = Path("keys"),
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Revoke without asking.")] = False,
    json: Json = False,
) -> None:
    """Revoke a license: no further activation succeeds (asks first on a terminal)."""
    iss = _issuer(ledger, keys)
    view = iss.show(license_id)  # refuse an unknown id before asking anything
    customer = f" of {view.record.customer}" if view.record.customer else ""
    confirm(f"Revoke license {license_id}{customer} ({view.record.product})?", yes)
    revoked = iss.revoke(license_id)
    if json:
        print_json(revoked.to_dict())
        return
    print(f"revoked {license_id}")


@license_app.command("set")
def license_set(
    license_id: Annotated[str, typer.Argument(help="License id.")],
    customer: Annotated[
        str | None,
        typer.Option("--customer", help="Customer (empty text clears it; default: unchanged)."),
    ] = None,
    ip: Annotated[
        str | None,
        typer.Option("--ip", help="Assigned public IP (empty text clears it; default: unchanged)."),
    ] = None,
    days: Annotated[
        int | None,
        typer.Option("--days", help="Valid for N days from now (default: expiry unchanged)."),
    ] = None,
    expires: Annotated[
        str | None,
        typer.Option(
            "--expires", help="Valid through YYYY-MM-DD ('never': no end; default: unchanged)."
        ),
    ] = None,
    feature: Annotated[
        list[str] | None,
        typer.Option(
            "--feature",
            help="The features, replacing the current ones (repeatable; default: unchanged).",
        ),
    ] = None,
    limit: Annotated[
        list[str] | None,
        typer.Option(
            "--limit",
            help="NAME=NUMBER, replacing the current limits (repeatable; default: unchanged).",
        ),
    ] = None,
    lease_days: Annotated[
        str | None,
        typer.Option(
            "--lease-days", help="Lease in days (0: no lease; 'default': the provider's)."
        ),
    ] = None,
    ledger: LedgerDir = "ledger",
    keys: KeysDir = Path("keys"),
    json: Json = False,
) -> None:
    """Change a license's terms; options left out stay as they are."""
    lease: object = KEEP
    if lease_days is not None:
        if lease_days != "default" and not lease_days.isdigit():
            raise BadInputError(
                f"--lease-days takes a number of days or default, got {lease_days!r}"
            )
        lease = None if lease_days == "default" else int(lease_days)
    expiry: object = KEEP
    if expires is not None:
        try:
            expiry = None if expires == "never" else _dt.date.fromisoformat(expires)
        except ValueError:
            raise BadInputError(f"--expires takes YYYY-MM-DD or never, got {expires!r}") from None
    view = _issuer(ledger, keys).update_license(
        license_id,
        customer=KEEP if customer is None else (customer or None),
        ip=KEEP if ip is None else (ip or None),
        expires=expiry,  # type: ignore[arg-type]  # KEEP, None or a date
        days=days,
        features=feature,
        limits=None if limit is None else _limits(limit),
        lease_days=lease,  # type: ignore[arg-type]  # KEEP, None or a number
    )
    _print_license(view, json)


@license_app.command("history")
def license_history(
    license_id: Annotated[str, typer.Argument(help="License id.")],
    ledger: LedgerDir = "ledger",
    keys: KeysDir = Path("keys"),
    json: Json = False,
) -> None:
    """Every change to a license: when, who, what, and each field before and after."""
    history = _issuer(ledger, keys).show(license_id).record.history
    if json:
        print_json([e.to_doc() for e in history])
        return
    for e in history:
        changes = "; ".join(
            f"{name}: {c.get('before')!r} -> {c.get('after')!r}" for name, c in e.changes.items()
        )
        say(f"{e.at.isoformat()}  {e.action:<12} {e.actor:<20} {changes or e.detail}")


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
    entries = [e.to_dict() for e in iss.rate_limited()]
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
    cleared = _issuer(ledger, keys).clear_rate_limit(address)
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
    text = sys.stdin.read(8192) if code == "-" else code
    iss = _issuer(ledger, keys, passphrase_file)
    _deliver(iss, iss.activate(text), out, force, qr, qr_png, json)


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
    text = sys.stdin.read(8192) if code == "-" else code
    iss = _issuer(ledger, keys, passphrase_file)
    _deliver(iss, iss.renew(text), out, force, qr, qr_png, json)


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
    iss = _issuer(ledger, keys, passphrase_file)
    signed = iss.signed_revocations(days=days)
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
            "the license server needs the 'server' extra: pip install '.[server]' (checkout)"
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
