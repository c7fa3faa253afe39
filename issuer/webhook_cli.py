"""``issuer webhook ...``: endpoints for billing systems, their deliveries, a deliverer.

A secret is printed once: alone on the last line of ``add`` and
``rotate-secret`` (or in their ``--json``). ``list`` never shows one.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated

import typer

from issuer.cli_options import Json, KeysDir, LedgerDir, cli_actor
from issuer.facade import Issuer
from verifier.cliutil import print_json

webhook_app = typer.Typer(
    help="Webhook endpoints: billing systems hear every license change, signed.",
    no_args_is_help=True,
)

#: How much ``webhook deliver`` lowers its CPU priority unless told otherwise.
DELIVER_NICE = 10

EndpointId = Annotated[str, typer.Argument(help="The endpoint id (WH-...).", show_default=False)]


@contextlib.contextmanager
def delivering(ledger: str) -> Iterator[None]:
    """A background deliverer on a ledger of its own while the block runs (serve, console)."""
    from issuer.ledger import open_ledger
    from issuer.licensing.deliverer import BackgroundDeliverer

    background = BackgroundDeliverer(lambda: open_ledger(ledger))
    background.start()
    try:
        yield
    finally:
        background.stop()


def _issuer(ledger: str, keys: Path) -> Issuer:
    return Issuer(ledger, keys, actor=cli_actor())


@webhook_app.command("add")
def add(
    url: Annotated[str, typer.Argument(help="Where events are posted (https://...).")],
    event: Annotated[
        list[str] | None,
        typer.Option(
            "--event",
            help="An event type to send (repeatable; license.* allowed; default: every type).",
        ),
    ] = None,
    description: Annotated[str, typer.Option("--description", help="For people.")] = "",
    allow_private: Annotated[
        bool,
        typer.Option(
            "--allow-private",
            help="Allow http:// and loopback or private targets (a receiver on this network).",
        ),
    ] = False,
    ledger: LedgerDir = "ledger",
    keys: KeysDir = Path("keys"),
    json: Json = False,
) -> None:
    """Add an endpoint; its secret is printed once, alone on the last line."""
    endpoint, secret = _issuer(ledger, keys).webhooks.add(
        url, events=event or (), description=description, allow_private=allow_private
    )
    if json:
        shown = endpoint.public()
        del shown["state"]
        print_json({**shown, "secret": secret})
        return
    print(endpoint.endpoint_id)
    print(f"added webhook endpoint for {endpoint.url}; its secret is shown only now:")
    print(secret)


@webhook_app.command("list")
def list_(ledger: LedgerDir = "ledger", keys: KeysDir = Path("keys"), json: Json = False) -> None:
    """List the endpoints (never a secret)."""
    endpoints = _issuer(ledger, keys).webhooks.endpoints()
    if json:
        print_json({"items": [e.public() for e in endpoints]})
        return
    for e in endpoints:
        events = ",".join(e.events) or "all events"
        print(f"{e.endpoint_id}  {e.state:<7} {e.url}  ({events}) {e.description}".rstrip())


@webhook_app.command("remove")
def remove(
    endpoint_id: EndpointId, ledger: LedgerDir = "ledger", keys: KeysDir = Path("keys")
) -> None:
    """Remove an endpoint; its pending deliveries are dropped."""
    _issuer(ledger, keys).webhooks.remove(endpoint_id)
    print(f"removed webhook endpoint {endpoint_id}")


@webhook_app.command("pause")
def pause(
    endpoint_id: EndpointId, ledger: LedgerDir = "ledger", keys: KeysDir = Path("keys")
) -> None:
    """Pause an endpoint: events queue, nothing is sent."""
    _issuer(ledger, keys).webhooks.pause(endpoint_id)
    print(f"paused webhook endpoint {endpoint_id}; events queue until it is resumed")


@webhook_app.command("resume")
def resume(
    endpoint_id: EndpointId, ledger: LedgerDir = "ledger", keys: KeysDir = Path("keys")
) -> None:
    """Resume an endpoint: sending starts from the first undelivered event."""
    _issuer(ledger, keys).webhooks.resume(endpoint_id)
    print(f"resumed webhook endpoint {endpoint_id}")


@webhook_app.command("rotate-secret")
def rotate_secret(
    endpoint_id: EndpointId,
    ledger: LedgerDir = "ledger",
    keys: KeysDir = Path("keys"),
    json: Json = False,
) -> None:
    """Give an endpoint a new secret (printed once); the previous one also signs for 24 h."""
    endpoint, secret = _issuer(ledger, keys).webhooks.rotate_secret(endpoint_id)
    if json:
        print_json({"id": endpoint.endpoint_id, "secret": secret})
        return
    print(f"new secret for {endpoint.endpoint_id}; the previous one also signs for 24 h:")
    print(secret)


@webhook_app.command("test")
def test(
    endpoint_id: EndpointId, ledger: LedgerDir = "ledger", keys: KeysDir = Path("keys")
) -> None:
    """Queue a webhook.test event for that endpoint only (whatever its filter)."""
    delivery = _issuer(ledger, keys).webhooks.test(endpoint_id)
    print(f"queued test event {delivery.event_id} for {endpoint_id} ({delivery.delivery_id})")


@webhook_app.command("deliveries")
def deliveries(
    endpoint_id: EndpointId,
    limit: Annotated[int, typer.Option("--limit", help="The most to show (1-1000).")] = 50,
    ledger: LedgerDir = "ledger",
    keys: KeysDir = Path("keys"),
    json: Json = False,
) -> None:
    """An endpoint's deliveries, newest first, with their attempts."""
    found = _issuer(ledger, keys).webhooks.deliveries(endpoint_id, limit=limit)
    if json:
        print_json({"items": [d.to_dict() for d in found]})
        return
    for d in found:
        shown = d.to_dict()
        last = d.attempts[-1] if d.attempts else None
        answer = "" if last is None else f" last: {last.http_status or last.error}"
        print(
            f"{d.delivery_id} {d.event_id} {d.type:<20} {d.status:<9} "
            f"{len(d.attempts)} attempt(s){answer}"
            + (f"; next {shown['next_attempt_at']}" if shown["next_attempt_at"] else "")
        )


@webhook_app.command("redeliver")
def redeliver(
    delivery_id: Annotated[str, typer.Argument(help="The delivery id (DL-...).")],
    ledger: LedgerDir = "ledger",
    keys: KeysDir = Path("keys"),
) -> None:
    """Send a delivery again now (same webhook-id), outside the order hold-back."""
    _issuer(ledger, keys).webhooks.redeliver(delivery_id)
    print(f"{delivery_id} is due now; the next deliverer pass sends it")


@webhook_app.command("deliver")
def deliver(
    once: Annotated[
        bool, typer.Option("--once", help="One pass over what is due, then exit.")
    ] = False,
    nice: Annotated[
        int,
        typer.Option(
            "--nice",
            min=0,
            max=19,
            help="Lower the CPU priority of a running deliverer by this much (0: as started).",
        ),
    ] = DELIVER_NICE,
    ledger: LedgerDir = "ledger",
    keys: KeysDir = Path("keys"),
) -> None:
    """A standalone deliverer; exits 0 whatever the receivers answered."""
    from issuer.ledger import open_ledger
    from issuer.licensing.deliverer import BackgroundDeliverer, Deliverer

    iss = _issuer(ledger, keys)  # checks the ledger and the keys belong together
    if once:
        made = Deliverer(iss.ledger).run_once()
        print(f"made {made} delivery attempt(s)")
        return
    # Delivery can wait a moment; license serving on the same machine cannot. When the CPU
    # is short, the scheduler gives it to activations first; when it is not, a lower
    # priority costs delivery nothing.
    os.nice(nice)
    background = BackgroundDeliverer(lambda: open_ledger(ledger))
    print(f"delivering webhooks from {iss.ledger.location}; Ctrl-C stops")
    background.run_forever()
