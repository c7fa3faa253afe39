"""What a ledger keeps for webhooks, whatever holds it: endpoints and the delivery queue.

Storage only: the rules (which event is which type, who receives it, when
to try again) are :mod:`issuer.policy.webhooks`'s and the deliverer's
(:mod:`issuer.licensing.webhooks`). A ledger keeps the endpoints with
their secrets, the deliveries it is handed — in the transaction of the
change that caused them, through :meth:`WebhookRows.enqueue` — and their
attempts; it numbers each endpoint's deliveries in order (``seq``) and
hands a deliverer one endpoint at a time (:meth:`WebhookStorage.claim`),
so that two deliverers never send for one endpoint at once.

Example:
    >>> with ledger.webhooks().claim("WH-...") as claim:  # doctest: +SKIP
    ...     pending = claim.pending(100) if claim else []
"""

from __future__ import annotations

import abc
from collections.abc import Sequence
from contextlib import AbstractContextManager
from typing import Protocol

from issuer.records import Event
from issuer.webhook_records import Delivery, Endpoint

__all__ = ["SendClaim", "WebhookRows", "WebhookStorage"]


class WebhookRows(Protocol):
    """The webhook verbs of a ledger transaction (a license change's outbox)."""

    def webhook_endpoints(self) -> list[Endpoint]:
        """Every endpoint, read in the transaction."""

    def enqueue(self, deliveries: Sequence[Delivery]) -> None:
        """Queue deliveries in this transaction: they commit, or vanish, with the change.

        The deliveries are of the audit events the transaction's last change
        logged: each one's ``event_cursor`` is the cursor the ledger gave that
        change's event number ``index``.
        """


class SendClaim(Protocol):
    """One endpoint held by one deliverer: nobody else sends for it meanwhile."""

    def endpoint(self) -> Endpoint | None:
        """The endpoint as it is now (``None``: removed)."""

    def pending(self, limit: int) -> list[Delivery]:
        """Its pending deliveries in order (``seq``), at most ``limit``."""

    def record(self, deliveries: Sequence[Delivery], *, state: str | None) -> None:
        """Keep the deliveries' new status and attempts (and the endpoint's new ``state``)."""


class WebhookStorage(abc.ABC):
    """The ledger's webhook endpoints and delivery queue."""

    @abc.abstractmethod
    def add_endpoint(self, endpoint: Endpoint, event: Event) -> None:
        """Store a new endpoint and log ``event``."""

    @abc.abstractmethod
    def endpoints(self) -> list[Endpoint]:
        """Every endpoint, oldest first."""

    @abc.abstractmethod
    def save_endpoint(
        self, endpoint: Endpoint, event: Event, *, reopen: Sequence[Delivery] = ()
    ) -> None:
        """Replace an endpoint (state, secrets), log ``event``, and keep ``reopen``'s rows.

        Raises:
            WebhookNotFoundError: no such endpoint.
        """

    @abc.abstractmethod
    def remove_endpoint(self, endpoint_id: str, event: Event) -> None:
        """Remove an endpoint and drop its deliveries; log ``event``.

        Raises:
            WebhookNotFoundError: no such endpoint.
        """

    @abc.abstractmethod
    def deliveries(
        self, endpoint_id: str, *, limit: int, undelivered: bool = False
    ) -> list[Delivery]:
        """An endpoint's deliveries, newest first (``undelivered``: pending and failed only)."""

    @abc.abstractmethod
    def delivery(self, delivery_id: str) -> Delivery | None:
        """The delivery with this id."""

    @abc.abstractmethod
    def put(self, deliveries: Sequence[Delivery]) -> None:
        """Queue new deliveries (test events, copies), or replace existing ones by id."""

    @abc.abstractmethod
    def restore(self, endpoints: Sequence[Endpoint], deliveries: Sequence[Delivery]) -> None:
        """Give a new ledger copied endpoints and deliveries (in order); nothing is logged."""

    @abc.abstractmethod
    def claim(self, endpoint_id: str) -> AbstractContextManager[SendClaim | None]:
        """Hold the endpoint for sending; ``None`` when another deliverer holds it now."""
