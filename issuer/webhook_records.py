"""What the ledger records for webhooks: endpoints, and the deliveries queued for them.

An :class:`Endpoint` is where events go (its URL, event filter, state and
signing secrets); a :class:`Delivery` is one event queued for one endpoint —
its body, written once in the transaction of the change that caused it, and
its attempts. Both are frozen values that turn into JSON documents and back;
a document of the wrong shape is ledger damage.

Example:
    >>> Endpoint.from_doc(endpoint.to_doc()) == endpoint  # doctest: +SKIP
"""

from __future__ import annotations

import datetime as _dt
import json
from dataclasses import dataclass, field, replace
from typing import Any

from issuer.errors import LedgerCorruptError

__all__ = ["Attempt", "Delivery", "DeliveryStatus", "Endpoint", "Secret"]


class DeliveryStatus:
    """A delivery's states."""

    PENDING = "pending"
    DELIVERED = "delivered"
    FAILED = "failed"
    ALL = (PENDING, DELIVERED, FAILED)


def _time(value: Any) -> _dt.datetime:
    when = _dt.datetime.fromisoformat(value)
    if when.tzinfo is None:
        raise ValueError("naive time")
    return when.astimezone(_dt.UTC)


def _opt_time(value: Any) -> _dt.datetime | None:
    return None if value is None else _time(value)


def _iso(value: _dt.datetime | None) -> str | None:
    return None if value is None else value.isoformat()


@dataclass(frozen=True)
class Secret:
    """A signing secret (``whsec_...``) and when it stops signing (``None``: the current one)."""

    value: str
    until: _dt.datetime | None = None

    def to_doc(self) -> dict[str, Any]:
        """The JSON document."""
        return {"value": self.value, "until": _iso(self.until)}

    @classmethod
    def from_doc(cls, doc: Any) -> Secret:
        """Parse a stored secret."""
        return cls(value=str(doc["value"]), until=_opt_time(doc.get("until")))


@dataclass(frozen=True)
class Endpoint:
    """A receiver of events.

    Attributes:
        endpoint_id: ``WH-`` and ten characters.
        url: where events are posted.
        events: the event types (or ``license.*``) it receives; empty: all.
        description: free text for people.
        allow_private: whether a loopback or private target is allowed.
        state: ``active`` or ``paused``.
        secrets: the current secret first, then a rotated one still signing.
        created_at: when it was added.
    """

    endpoint_id: str
    url: str
    events: tuple[str, ...]
    description: str
    allow_private: bool
    state: str
    secrets: tuple[Secret, ...]
    created_at: _dt.datetime

    ACTIVE = "active"
    PAUSED = "paused"

    def live_secrets(self, now: _dt.datetime) -> list[str]:
        """The secrets that sign at ``now`` (the current one, and a rotated one for 24 h)."""
        return [s.value for s in self.secrets if s.until is None or s.until > now]

    def with_state(self, state: str) -> Endpoint:
        """The endpoint in another state."""
        return replace(self, state=state)

    def public(self) -> dict[str, Any]:
        """What ``webhook list --json`` shows: never a secret."""
        return {
            "id": self.endpoint_id,
            "url": self.url,
            "events": list(self.events),
            "description": self.description,
            "state": self.state,
        }

    def to_doc(self) -> dict[str, Any]:
        """The JSON document (with the secrets: the ledger keeps them)."""
        return {
            "endpoint_id": self.endpoint_id,
            "url": self.url,
            "events": list(self.events),
            "description": self.description,
            "allow_private": self.allow_private,
            "state": self.state,
            "secrets": [s.to_doc() for s in self.secrets],
            "created_at": self.created_at.isoformat(),
        }

    @classmethod
    def from_doc(cls, doc: Any) -> Endpoint:
        """Parse a stored endpoint.

        Raises:
            LedgerCorruptError: the document is malformed.
        """
        try:
            return cls(
                endpoint_id=str(doc["endpoint_id"]),
                url=str(doc["url"]),
                events=tuple(str(e) for e in doc["events"]),
                description=str(doc["description"]),
                allow_private=bool(doc["allow_private"]),
                state=str(doc["state"]),
                secrets=tuple(Secret.from_doc(s) for s in doc["secrets"]),
                created_at=_time(doc["created_at"]),
            )
        except (KeyError, TypeError, ValueError) as err:
            raise LedgerCorruptError("ledger is damaged: a webhook endpoint is malformed") from err


@dataclass(frozen=True)
class Attempt:
    """One try to deliver: when, the HTTP status (``None``: no answer) and what went wrong."""

    at: _dt.datetime
    http_status: int | None
    error: str | None

    def to_doc(self) -> dict[str, Any]:
        """The JSON document (also the ``attempts`` items of ``webhook deliveries --json``)."""
        return {"at": self.at.isoformat(), "http_status": self.http_status, "error": self.error}

    @classmethod
    def from_doc(cls, doc: Any) -> Attempt:
        """Parse a stored attempt."""
        status = doc["http_status"]
        return cls(
            at=_time(doc["at"]),
            http_status=None if status is None else int(status),
            error=None if doc["error"] is None else str(doc["error"]),
        )


@dataclass(frozen=True)
class Delivery:
    """One event queued for one endpoint.

    Attributes:
        delivery_id: ``DL-`` and twelve characters.
        endpoint_id: the endpoint.
        event_id: the event's id, the ``webhook-id`` header (the same on every endpoint).
        type: the event type (``license.activated``, ``webhook.test``, ...).
        body: the body, written once; ``data.event.cursor`` is filled in from
            ``event_cursor`` when it is sent.
        event_cursor: the audit event's cursor, given by the ledger when the
            event was logged (``None``: a test event).
        index: which of its change's audit events it is (0, 1, ...), for the ledger
            to find ``event_cursor``.
        seq: its place in the endpoint's order, given by the ledger.
        status: ``pending``, ``delivered`` or ``failed``.
        attempts: the tries so far, oldest first.
        next_attempt_at: when it is due (``None`` once delivered or failed).
        window_start: retries stop 3 days after this (the event, or a resume).
        manual: sent now, outside the order hold-back (a redelivery).
        sent_as: the bytes sent, as text, when a ledger keeps them that way
            (what :meth:`payload` would make; it then need not make them).
    """

    delivery_id: str
    endpoint_id: str
    event_id: str
    type: str
    body: dict[str, Any]
    next_attempt_at: _dt.datetime | None
    window_start: _dt.datetime
    event_cursor: int | None = None
    index: int = 0
    seq: int = 0
    status: str = DeliveryStatus.PENDING
    attempts: tuple[Attempt, ...] = field(default=())
    manual: bool = False
    sent_as: str | None = field(default=None, compare=False, repr=False)

    def payload(self) -> bytes:
        """The bytes sent, identical on every attempt."""
        if self.sent_as is not None:
            return self.sent_as.encode()
        body = self.body
        if self.event_cursor is not None and isinstance(body.get("data"), dict):
            data = body["data"]
            event = data.get("event")
            if isinstance(event, dict):
                body = {
                    **body,
                    "data": {**data, "event": {**event, "cursor": str(self.event_cursor)}},
                }
        return json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()

    def to_dict(self) -> dict[str, Any]:
        """What ``webhook deliveries --json`` shows."""
        return {
            "delivery_id": self.delivery_id,
            "event_id": self.event_id,
            "type": self.type,
            "status": self.status,
            "attempts": [
                {**a.to_doc(), "at": a.at.strftime("%Y-%m-%dT%H:%M:%SZ")} for a in self.attempts
            ],
            "next_attempt_at": None
            if self.next_attempt_at is None
            else self.next_attempt_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
        }

    def to_doc(self) -> dict[str, Any]:
        """The JSON document."""
        return {
            "delivery_id": self.delivery_id,
            "endpoint_id": self.endpoint_id,
            "event_id": self.event_id,
            "type": self.type,
            "body": self.body,
            "event_cursor": self.event_cursor,
            "index": self.index,
            "seq": self.seq,
            "status": self.status,
            "attempts": [a.to_doc() for a in self.attempts],
            "next_attempt_at": _iso(self.next_attempt_at),
            "window_start": self.window_start.isoformat(),
            "manual": self.manual,
        }

    @classmethod
    def from_doc(cls, doc: Any, *, sent_as: str | None = None) -> Delivery:
        """Parse a stored delivery (``sent_as``: its payload as the ledger kept it).

        Raises:
            LedgerCorruptError: the document is malformed.
        """
        try:
            cursor = doc["event_cursor"]
            status = str(doc["status"])
            if status not in DeliveryStatus.ALL or not isinstance(doc["body"], dict):
                raise ValueError("bad delivery")
            return cls(
                delivery_id=str(doc["delivery_id"]),
                endpoint_id=str(doc["endpoint_id"]),
                event_id=str(doc["event_id"]),
                type=str(doc["type"]),
                body=doc["body"],
                event_cursor=None if cursor is None else int(cursor),
                index=int(doc["index"]),
                seq=int(doc["seq"]),
                status=status,
                attempts=tuple(Attempt.from_doc(a) for a in doc["attempts"]),
                next_attempt_at=_opt_time(doc["next_attempt_at"]),
                window_start=_time(doc["window_start"]),
                manual=bool(doc["manual"]),
                sent_as=sent_as,
            )
        except (KeyError, TypeError, ValueError) as err:
            raise LedgerCorruptError("ledger is damaged: a webhook delivery is malformed") from err
