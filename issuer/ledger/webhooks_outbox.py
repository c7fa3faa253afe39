"""A folder ledger's webhook outbox: the deliveries a license change keeps with it.

A change keeps its deliveries in the index head (``index/head.json``,
table ``outbox``), a small file it writes anyway; once the head holds
:data:`_SPILL` outboxes they move to ``events/outbox-N....json`` (named by
the cursor of the first one's first event). :mod:`issuer.ledger.webhooks_folder`
takes them into each endpoint's queue; this module says how they are kept
and read back.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any, NamedTuple

from tinydb.table import Table

from issuer.errors import LedgerCorruptError
from issuer.ledger.folder_layout import EVENTS, HEAD, INDEX
from issuer.ledger.shards import ShardTransaction
from issuer.webhook_records import Delivery, DeliveryStatus

__all__ = [
    "OUTBOX",
    "PAYLOAD",
    "Outboxes",
    "at_of",
    "deliveries_of",
    "enqueue",
    "in_order",
    "spill_files",
]

OUTBOX, OUTBOX_PREFIX = "outbox", "outbox-"  # table name; file name prefix under events/
PAYLOAD = "payload"  # a stored delivery's bytes as sent (text), in place of its body
_NAME_DIGITS = 12
_SPILL = 8  # outboxes the index head holds before they move to a file of their own
# A new delivery's fields: what one event's deliveries share, and what every new one has.
_PER_EVENT = ("event_id", "type", "index", "event_cursor", "window_start")
_FRESH = {"seq": 0, "status": DeliveryStatus.PENDING, "attempts": [], "manual": False}
# The same, as a Delivery's fields (its attempts are a tuple).
_FRESH_FIELDS = {k: tuple(v) if isinstance(v, list) else v for k, v in _FRESH.items()}


def _held(txn: ShardTransaction) -> Table:
    """The outboxes the index head holds (``index/head.json``, table ``outbox``)."""
    return txn.table(INDEX, HEAD, OUTBOX)


def _spill_table(txn: ShardTransaction, at: int) -> Table:
    """A spilled outbox file (``events/outbox-<at>.json``)."""
    return txn.table(EVENTS, f"{OUTBOX_PREFIX}{at:0{_NAME_DIGITS}d}", OUTBOX)


def spill_files(root: Path) -> list[Path]:
    """The outbox files, oldest first."""
    return sorted((root / EVENTS).glob(f"{OUTBOX_PREFIX}*.json"))


def enqueue(
    txn: ShardTransaction,
    deliveries: Sequence[Delivery],
    cursors: Sequence[int],
    *,
    first: int,
) -> None:
    """Keep deliveries in the transaction's outbox; ``cursors``: its last change's events.

    The outbox is one document in the index head, which the transaction
    writes anyway: ``{"at": first, "events": [...]}``, each event once with
    its payload as sent and the endpoints it goes to (see :func:`_outbox`).
    ``first`` is the cursor of the transaction's first logged event, above
    every earlier transaction's, so documents in ``at`` order (then stored
    order) are the deliveries in event order.
    Once the head holds :data:`_SPILL` outboxes they move to a file of their
    own: the head stays small whether or not a deliverer runs (a take in
    reads them all and skips what it took before; see the queue's mark).
    """
    if not deliveries:
        return
    head = _held(txn)
    head.insert({"at": first, **_outbox(deliveries, cursors)})
    if len(head) >= _SPILL:
        outboxes = in_order(head.all())
        _spill_table(txn, outboxes[0]["at"]).insert_multiple(dict(doc) for doc in outboxes)
        head.truncate()


def _outbox(deliveries: Sequence[Delivery], cursors: Sequence[int]) -> dict[str, Any]:
    """An outbox's contents: each event once, with the endpoints (and delivery ids) it goes to.

    Every change writes the head, outboxes held included, and its journal
    copies the head again: so new deliveries, which differ only in endpoint
    and id, are kept as one entry per event — a third of the bytes of a row
    each — with the payload as sent, made once per event (every endpoint
    gets the same bytes). It is built from the deliveries' fields, not from
    their documents: this runs in every license change. Deliveries of
    another shape (none a change makes today) are kept whole, in order.
    """
    events: list[dict[str, Any]] = []
    for d in deliveries:
        fresh = d.next_attempt_at == d.window_start and all(
            getattr(d, k) == v for k, v in _FRESH_FIELDS.items()
        )
        cursor = _cursor(d, cursors)
        shared = (d.event_id, d.type, d.index, cursor, d.window_start.isoformat())
        if fresh and events and tuple(events[-1][k] for k in _PER_EVENT) == shared:
            events[-1]["to"].append([d.endpoint_id, d.delivery_id])
        elif fresh and not any(e["event_id"] == d.event_id for e in events):
            payload = replace(d, event_cursor=cursor).payload().decode()
            to = [[d.endpoint_id, d.delivery_id]]
            entry = dict(zip(_PER_EVENT, shared, strict=True))
            events.append({**entry, "payload": payload, "to": to})
        else:  # another shape, or an event's deliveries apart: keep them whole, in order
            return _rows(deliveries, cursors)
    return {"events": events}


def _rows(deliveries: Sequence[Delivery], cursors: Sequence[int]) -> dict[str, Any]:
    """Deliveries kept whole: each row without its body, each event's payload once."""
    payloads: dict[str, str] = {}
    rows = []
    for d in deliveries:
        cursor = _cursor(d, cursors)
        row = {**d.to_doc(), "event_cursor": cursor}
        del row["body"]
        if d.event_id not in payloads:
            payloads[d.event_id] = replace(d, event_cursor=cursor).payload().decode()
        rows.append(row)
    return {"payloads": payloads, "rows": rows}


def _cursor(d: Delivery, cursors: Sequence[int]) -> int:
    """A delivery's event cursor: its own, or the one the transaction gave its event."""
    return d.event_cursor or cursors[d.index]


def in_order(outboxes: Sequence[Any]) -> list[Any]:
    """Outbox documents by ``at`` (stable: one transaction's stay in stored order)."""
    try:
        return sorted(outboxes, key=lambda doc: int(doc["at"]))
    except (KeyError, TypeError, ValueError) as err:
        raise LedgerCorruptError("ledger is damaged: a webhook outbox entry is malformed") from err


def deliveries_of(outbox: Any) -> list[dict[str, Any]]:
    """The delivery documents of an outbox, each with its event's payload (or older, body)."""
    try:
        if "events" in outbox:
            return [
                {
                    **_FRESH,
                    "attempts": [],
                    **{k: event[k] for k in _PER_EVENT},
                    "next_attempt_at": event["window_start"],
                    "endpoint_id": endpoint_id,
                    "delivery_id": delivery_id,
                    PAYLOAD: event["payload"],
                }
                for event in outbox["events"]
                for endpoint_id, delivery_id in event["to"]
            ]
        # Rows kept whole; or, as older ledgers wrote them, as text (with payloads, or bodies).
        kept = json.loads(outbox["raw"]) if "raw" in outbox else outbox
        rows = kept["rows"]
        if "payloads" in kept:
            payloads = kept["payloads"]
            return [{**row, PAYLOAD: payloads[row["event_id"]]} for row in rows]
        bodies = kept["bodies"]
        return [{**row, "body": bodies[row["event_id"]]} for row in rows]
    except (KeyError, TypeError, ValueError) as err:
        raise LedgerCorruptError("ledger is damaged: a webhook outbox entry is malformed") from err


class Outboxes(NamedTuple):
    """The outboxes of one file, oldest first, and the highest ``at`` it can hold."""

    outboxes: list[Any]
    last: int


def at_of(path: Path) -> int:
    """The ``at`` an outbox file is named by (its first outbox's); a stray name is damage."""
    name = path.stem.removeprefix(OUTBOX_PREFIX)
    if len(name) != _NAME_DIGITS or not name.isdigit():
        raise LedgerCorruptError(f"ledger is damaged: stray webhook outbox file {path.name}")
    return int(name)
