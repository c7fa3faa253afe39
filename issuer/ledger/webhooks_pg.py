"""A PostgreSQL ledger's webhook endpoints and delivery queue (schema version 7).

``licet.webhook_endpoints`` holds the endpoints with their secrets,
``licet.webhook_deliveries`` every delivery in each endpoint's order
(``seq``), and ``licet.webhook_senders`` one row per endpoint that a
deliverer locks (``FOR UPDATE SKIP LOCKED``) for as long as it sends for that
endpoint: any number of deliverers on any number of nodes share the queue,
and never send for one endpoint at once. The claim's transaction also keeps
the results, so a deliverer that dies mid-send leaves the deliveries as they
were: they are sent again.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from issuer.errors import WebhookNotFoundError
from issuer.ledger.webhook_api import SendClaim, WebhookStorage
from issuer.records import Event
from issuer.webhook_records import Delivery, DeliveryStatus, Endpoint

#: Opens one transaction on a pooled connection (``PostgresLedger._transaction``).
Transaction = Callable[[], contextlib.AbstractContextManager[psycopg.Connection[Any]]]

__all__ = ["PostgresWebhooks", "enqueue", "read_endpoints"]

_APPEND = (
    "INSERT INTO licet.events (license_id, doc) SELECT NULL, e FROM unnest(%s::jsonb[]) AS t (e)"
)


def read_endpoints(conn: psycopg.Connection[Any]) -> list[Endpoint]:
    """Every endpoint, oldest first."""
    rows = conn.execute(
        "SELECT doc FROM licet.webhook_endpoints ORDER BY created_at, endpoint_id"
    ).fetchall()
    return [Endpoint.from_doc(row[0]) for row in rows]


def enqueue(
    conn: psycopg.Connection[Any], deliveries: Sequence[Delivery], cursors: Sequence[int]
) -> None:
    """Insert deliveries in order; ``cursors``: those of the transaction's logged events."""
    if not deliveries:
        return
    docs = []
    for d in deliveries:
        cursor = cursors[d.index] if cursors and d.event_cursor is None else d.event_cursor
        docs.append(Jsonb({**d.to_doc(), "event_cursor": cursor}))
    conn.execute(
        "INSERT INTO licet.webhook_deliveries (delivery_id, endpoint_id, status, doc)"
        " SELECT e ->> 'delivery_id', e ->> 'endpoint_id', e ->> 'status', e"
        " FROM unnest(%s::jsonb[]) WITH ORDINALITY AS t (e, n) ORDER BY n",
        (docs,),
    )


def _delivery(seq: Any, doc: Any) -> Delivery:
    return Delivery.from_doc({**doc, "seq": int(seq)})


def _put(conn: psycopg.Connection[Any], deliveries: Sequence[Delivery]) -> None:
    for d in deliveries:
        row = conn.execute(
            "UPDATE licet.webhook_deliveries SET status = %s, doc = %s"
            " WHERE delivery_id = %s RETURNING seq",
            (d.status, Jsonb(d.to_doc()), d.delivery_id),
        ).fetchone()
        if row is None:
            enqueue(conn, [d], [])


class PostgresWebhooks(WebhookStorage):
    """The webhook storage of one PostgreSQL ledger."""

    def __init__(self, transaction: Transaction) -> None:
        self._tx = transaction

    def add_endpoint(self, endpoint: Endpoint, event: Event) -> None:
        """Store a new endpoint and log ``event``."""
        with self._tx() as conn:
            conn.execute(
                "INSERT INTO licet.webhook_endpoints (endpoint_id, created_at, doc)"
                " VALUES (%s, %s, %s)",
                (endpoint.endpoint_id, endpoint.created_at, Jsonb(endpoint.to_doc())),
            )
            conn.execute(
                "INSERT INTO licet.webhook_senders (endpoint_id) VALUES (%s)",
                (endpoint.endpoint_id,),
            )
            conn.execute(_APPEND, ([Jsonb(event.to_doc())],))

    def endpoints(self) -> list[Endpoint]:
        """Every endpoint, oldest first."""
        with self._tx() as conn:
            return read_endpoints(conn)

    def save_endpoint(
        self, endpoint: Endpoint, event: Event, *, reopen: Sequence[Delivery] = ()
    ) -> None:
        """Replace an endpoint, log ``event``, and keep ``reopen``'s rows."""
        with self._tx() as conn:
            row = conn.execute(
                "UPDATE licet.webhook_endpoints SET doc = %s WHERE endpoint_id = %s"
                " RETURNING endpoint_id",
                (Jsonb(endpoint.to_doc()), endpoint.endpoint_id),
            ).fetchone()
            if row is None:
                raise WebhookNotFoundError(f"no webhook endpoint {endpoint.endpoint_id}")
            _put(conn, reopen)
            conn.execute(_APPEND, ([Jsonb(event.to_doc())],))

    def remove_endpoint(self, endpoint_id: str, event: Event) -> None:
        """Remove an endpoint and its deliveries; log ``event``."""
        with self._tx() as conn:
            row = conn.execute(
                "DELETE FROM licet.webhook_endpoints WHERE endpoint_id = %s RETURNING endpoint_id",
                (endpoint_id,),
            ).fetchone()
            if row is None:
                raise WebhookNotFoundError(f"no webhook endpoint {endpoint_id}")
            conn.execute(
                "DELETE FROM licet.webhook_deliveries WHERE endpoint_id = %s", (endpoint_id,)
            )
            conn.execute(_APPEND, ([Jsonb(event.to_doc())],))

    def deliveries(
        self, endpoint_id: str, *, limit: int, undelivered: bool = False
    ) -> list[Delivery]:
        """An endpoint's deliveries, newest first."""
        statuses = [DeliveryStatus.PENDING, DeliveryStatus.FAILED]
        if not undelivered:
            statuses.append(DeliveryStatus.DELIVERED)
        with self._tx() as conn:
            rows = conn.execute(
                "SELECT seq, doc FROM licet.webhook_deliveries"
                " WHERE endpoint_id = %s AND status = ANY(%s) ORDER BY seq DESC LIMIT %s",
                (endpoint_id, statuses, limit),
            ).fetchall()
        return [_delivery(row[0], row[1]) for row in rows]

    def delivery(self, delivery_id: str) -> Delivery | None:
        """The delivery with this id."""
        with self._tx() as conn:
            row = conn.execute(
                "SELECT seq, doc FROM licet.webhook_deliveries WHERE delivery_id = %s",
                (delivery_id,),
            ).fetchone()
        return None if row is None else _delivery(row[0], row[1])

    def put(self, deliveries: Sequence[Delivery]) -> None:
        """Queue new deliveries, or replace existing ones by id."""
        with self._tx() as conn:
            _put(conn, deliveries)

    def restore(self, endpoints: Sequence[Endpoint], deliveries: Sequence[Delivery]) -> None:
        """Give a new ledger copied endpoints and deliveries (in order)."""
        with self._tx() as conn:
            for e in endpoints:
                conn.execute(
                    "INSERT INTO licet.webhook_endpoints (endpoint_id, created_at, doc)"
                    " VALUES (%s, %s, %s)",
                    (e.endpoint_id, e.created_at, Jsonb(e.to_doc())),
                )
                conn.execute(
                    "INSERT INTO licet.webhook_senders (endpoint_id) VALUES (%s)", (e.endpoint_id,)
                )
            enqueue(conn, sorted(deliveries, key=lambda d: d.seq), [])

    @contextlib.contextmanager
    def claim(self, endpoint_id: str) -> Iterator[SendClaim | None]:
        """Lock the endpoint's sender row for one transaction; ``None`` if another holds it."""
        with self._tx() as conn:
            row = conn.execute(
                "SELECT endpoint_id FROM licet.webhook_senders WHERE endpoint_id = %s"
                " FOR UPDATE SKIP LOCKED",
                (endpoint_id,),
            ).fetchone()
            yield None if row is None else _PostgresClaim(conn, endpoint_id)


class _PostgresClaim:
    def __init__(self, conn: psycopg.Connection[Any], endpoint_id: str) -> None:
        self._conn = conn
        self._id = endpoint_id

    def endpoint(self) -> Endpoint | None:
        row = self._conn.execute(
            "SELECT doc FROM licet.webhook_endpoints WHERE endpoint_id = %s", (self._id,)
        ).fetchone()
        return None if row is None else Endpoint.from_doc(row[0])

    def pending(self, limit: int) -> list[Delivery]:
        rows = self._conn.execute(
            "SELECT seq, doc FROM licet.webhook_deliveries"
            " WHERE endpoint_id = %s AND status = 'pending' ORDER BY seq LIMIT %s",
            (self._id, limit),
        ).fetchall()
        return [_delivery(row[0], row[1]) for row in rows]

    def record(self, deliveries: Sequence[Delivery], *, state: str | None) -> None:
        if state is not None:
            self._conn.execute(
                "UPDATE licet.webhook_endpoints"
                " SET doc = jsonb_set(doc, '{state}', to_jsonb(%s::text)) WHERE endpoint_id = %s",
                (state, self._id),
            )
        for d in deliveries:
            self._conn.execute(
                "UPDATE licet.webhook_deliveries SET status = %s, doc = %s WHERE delivery_id = %s",
                (d.status, Jsonb(d.to_doc()), d.delivery_id),
            )
