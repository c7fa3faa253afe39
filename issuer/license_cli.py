"""``issuer license``: create, show, list, change, regenerate and revoke licenses."""

from __future__ import annotations

import datetime as _dt
import json as json_module
from pathlib import Path
from typing import Annotated

import typer

from issuer.cli_options import Json, KeysDir, LeaseDays, LedgerDir, MachineIds, open_issuer
from issuer.licensing.licenses import KEEP, LicenseView
from verifier.cliutil import CONTEXT_SETTINGS, confirm, print_json, say
from verifier.clock import format_utc
from verifier.errors import BadInputError

__all__ = ["license_app"]

license_app = typer.Typer(
    rich_markup_mode=None,  # plain help: no boxes, no <bool> after a flag
    help="Create, show, list, regenerate and revoke licenses.",
    no_args_is_help=True,
    context_settings=CONTEXT_SETTINGS,
)


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
    say(f"expires        {'last day ' + d['last_day'] if d['last_day'] else 'never'}")
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
    if d["lease_days_reason"]:
        say(
            f"               tokens last {d['lease_days_effective']} days: {d['lease_days_reason']}"
        )
    if activation is not None and activation.lease_until is not None:
        say(f"token valid    until {format_utc(activation.lease_until)}")
    say(f"machine ids    {'accepted' if d['accept_machine_id'] else 'refused'}")
    say(f"regeneration:  {_regeneration(view)}")
    for event in view.record.history:
        say(f"  {format_utc(event.at)}  {event.action:<12} {event.actor}  {event.detail}")


def _date(text: str, alternative: str = "") -> _dt.date:
    """``--expires``: a calendar date, written YYYY-MM-DD (the last day the license runs)."""
    try:
        if len(text) == 10:
            return _dt.date.fromisoformat(text)
    except ValueError:
        pass
    other = f" {alternative}" if alternative else ""
    raise BadInputError(f"--expires: expected YYYY-MM-DD{other}, got {text!r}")


def _regeneration(view: LicenseView) -> str:
    """When the key may be regenerated, in words: now, from a time, or not (revoked)."""
    if view.regeneration_allowed:
        return "possible now"
    if view.state == "revoked":
        return "not possible (revoked)"
    return f"possible from {format_utc(view.next_regeneration)}"


def _limits(items: list[str]) -> dict[str, int]:
    limits: dict[str, int] = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not value.strip().isdigit():
            raise BadInputError(f"--limit takes NAME=NUMBER, got {item!r}")
        limits[name.strip()] = int(value)
    return limits


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
        str | None,
        typer.Option(
            "--expires",
            metavar="YYYY-MM-DD",
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
    view = open_issuer(ledger, keys).create_license(
        product,
        ip=ip,
        days=days,
        expires=None if expires is None else _date(expires),
        features=feature or [],
        limits=_limits(limit or []),
        customer=customer,
        lease_days=lease_days,
        accept_machine_id=None if machine_ids is None else machine_ids is MachineIds.ACCEPT,
        new_product=new_product,
    )
    _print_license(view, json)
    if not json and view.record.expires_at is None:
        # Leaving both out is a choice worth seeing: the license runs for ever.
        say("this license never expires: neither --days nor --expires was given")


@license_app.command("show")
def license_show(
    license_id: Annotated[str, typer.Argument(help="License id.")],
    ledger: LedgerDir = "ledger",
    keys: KeysDir = Path("keys"),
    json: Json = False,
) -> None:
    """Show a license: current key, activation, next regeneration date, history."""
    _print_license(open_issuer(ledger, keys).show(license_id), json)


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
    product: Annotated[
        str | None, typer.Option("--product", help="Only this product (default: all).")
    ] = None,
    status: Annotated[
        str | None,
        typer.Option(
            "--status", help="Only issued, activated, expired or revoked licenses (default: all)."
        ),
    ] = None,
    search: Annotated[
        str | None,
        typer.Option(
            "--search",
            metavar="TEXT",
            help="Find by license id, customer, IP, current activation key, activated hostname "
            "or activation id (default: no search).",
        ),
    ] = None,
    limit: Annotated[
        int | None,
        typer.Option("--limit", metavar="N", help="At most N licenses (default: all)."),
    ] = None,
    json: Json = False,
) -> None:
    """List licenses, newest first: id, product, customer, status, expiry, activated host."""
    views = open_issuer(ledger, keys).licensing.find(
        text=search, product=product, status=status, limit=limit
    )
    rows = [v.to_dict() for v in views]
    if not show_keys:
        for row in rows:
            del row["activation_key"]
    if json:
        print_json(rows)
        return
    header = (
        f"{'LICENSE':<14}  {'PRODUCT':<14}  {'CUSTOMER':<20}  {'STATUS':<9}  {'LAST DAY':<10}  HOST"
    )
    say(header + ("  ACTIVATION KEY" if show_keys else ""))
    for row in rows:
        line = (
            f"{row['license_id']:<14}  {row['product']:<14}  {(row['customer'] or '-')[:20]:<20}  "
            f"{row['status']:<9}  {row['last_day'] or 'never':<10}  "
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
    _print_license(open_issuer(ledger, keys).regenerate(license_id), json)


@license_app.command("revoke")
def license_revoke(
    license_id: Annotated[str, typer.Argument(help="License id.")],
    ledger: LedgerDir = "ledger",
    keys: KeysDir = Path("keys"),
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Revoke without asking.")] = False,
    json: Json = False,
) -> None:
    """Revoke a license: no further activation succeeds (asks first on a terminal)."""
    iss = open_issuer(ledger, keys)
    view = iss.show(license_id)  # refuse an unknown id before asking anything
    customer = f" of {view.record.customer}" if view.record.customer else ""
    confirm(f"Revoke license {view.license_id}{customer} ({view.record.product})?", yes)
    revoked = iss.revoke(license_id)
    if json:
        print_json(revoked.to_dict())
        return
    print(f"revoked {revoked.license_id}")


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
            "--expires",
            metavar="YYYY-MM-DD|never",
            help="Valid through YYYY-MM-DD ('never': no end; default: unchanged).",
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
            "--lease-days",
            help="Lease in days (0: no lease; 'default': the provider's). A token never "
            "outlives the next possible key regeneration (a month), so a longer lease gives "
            "tokens of about 30 days; 'license show' says the effective lease.",
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
        expiry = None if expires == "never" else _date(expires, "or never")
    view = open_issuer(ledger, keys).update_license(
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
    history = open_issuer(ledger, keys).show(license_id).record.history
    if json:
        print_json([e.to_dict() for e in history])
        return
    for e in history:
        changes = "; ".join(
            f"{name}: {_json_value(c.get('before'))} -> {_json_value(c.get('after'))}"
            for name, c in e.changes.items()
        )
        say(f"{format_utc(e.at)}  {e.action:<12} {e.actor:<20} {changes or e.detail}")


def _json_value(value: object) -> str:
    """A changed field's value as JSON writes it: ``null``, ``["dns"]``, ``{"domains": 100}``."""
    return json_module.dumps(value, ensure_ascii=False)
