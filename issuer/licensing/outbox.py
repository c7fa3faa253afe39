"""The webhook outbox: the deliveries a license change queues, in the change's own transaction.

Which audit events are sent and as which type is the policy's
(:func:`issuer.policy.webhooks.event_type`), who receives them is each
endpoint's filter (:func:`issuer.policy.webhooks.matches`); the ledger is
handed the rows and keeps them with the change, so a change that commits
is delivered even if the process dies right after, and one that does not
is never sent.

Example:
    >>> queue_events(tx, before, after, view)  # doctest: +SKIP
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from issuer.ledger.api import LedgerTransaction
from issuer.policy import webhooks as rules
from issuer.records import LicenseRecord, LoggedEvent, random_id
from issuer.webhook_records import Delivery, Endpoint
from verifier.timefmt import format_utc

__all__ = ["WAKE", "event_body", "queue_events"]

#: Set when this process queues deliveries: a deliverer running in it looks at once.
WAKE = threading.Event()


def event_body(type_: str, logged: LoggedEvent, license_view: dict[str, Any]) -> dict[str, Any]:
    """The body of a license event: its audit event as the feed shows it, and the license.

    The cursor is filled in when the body is sent (the ledger gives it when
    the event is logged); the license never carries its activation key.
    """
    license_doc = {k: v for k, v in license_view.items() if k != "activation_key"}
    return {
        "type": type_,
        "timestamp": format_utc(logged.event.at),
        "data": {"event": logged.to_dict(), "license": license_doc},
    }


def deliveries_for(
    endpoints: list[Endpoint],
    type_: str,
    event_id: str,
    body: dict[str, Any],
    *,
    index: int,
    when: Any,
    only: str | None = None,
) -> list[Delivery]:
    """One pending delivery per endpoint that receives ``type_`` (``only``: that endpoint alone)."""
    return [
        Delivery(
            delivery_id=random_id("DL-", 12),
            endpoint_id=e.endpoint_id,
            event_id=event_id,
            type=type_,
            body=body,
            index=index,
            next_attempt_at=when,
            window_start=when,
        )
        for e in endpoints
        if (e.endpoint_id == only if only is not None else rules.matches(e.events, type_))
    ]


def queue_events(
    tx: LedgerTransaction,
    before: LicenseRecord | None,
    after: LicenseRecord,
    view: Callable[[LicenseRecord], dict[str, Any]],
) -> None:
    """Queue, in ``tx``, a delivery of each of the change's license events to each endpoint."""
    events = after.history[0 if before is None else len(before.history) :]
    typed = [
        (i, e, t) for i, e in enumerate(events) if (t := rules.event_type(e.action, e.changes))
    ]
    if not typed:
        return
    endpoints = tx.webhook_endpoints()
    if not endpoints:
        return
    shown = view(after)
    rows: list[Delivery] = []
    for index, event, type_ in typed:
        logged = LoggedEvent(cursor=0, event=event, license_id=after.license_id)
        body = event_body(type_, logged, shown)
        rows += deliveries_for(
            endpoints, type_, random_id("EV-", 16), body, index=index, when=event.at
        )
    if rows:
        tx.enqueue(rows)
        if not WAKE.is_set():  # setting it takes its lock: once until the deliverer clears it
            WAKE.set()
