"""Webhook endpoints as the provider manages them: add, list, pause, rotate, test, ...

Every change to an endpoint is an audit event naming its actor. A secret
(``whsec_`` and 32 random bytes in base64) is returned once, when it is
made; a rotated secret keeps signing for 24 hours beside the new one.

Example:
    >>> endpoint, secret = iss.webhooks.add("https://billing.example/hooks")  # doctest: +SKIP
"""

from __future__ import annotations

import base64
import datetime as _dt
import secrets
from collections.abc import Iterable
from dataclasses import replace

from issuer.ledger.api import LedgerBackend
from issuer.licensing.outbox import WAKE, deliveries_for
from issuer.policy import webhooks as rules
from issuer.records import Event, random_id
from issuer.webhook_records import Delivery, DeliveryStatus, Endpoint, Secret
from verifier.clock import Clock, format_utc, now_from
from verifier.errors import BadInputError, WebhookNotFoundError

__all__ = ["ROTATION_OVERLAP", "Webhooks", "new_secret"]

ROTATION_OVERLAP = _dt.timedelta(hours=24)
MAX_LIMIT = 1000


def new_secret() -> str:
    """A new signing secret in the Standard Webhooks form (``whsec_`` + base64 of 32 bytes)."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


def _check_id(endpoint_id: object) -> str:
    if not isinstance(endpoint_id, str) or not endpoint_id or len(endpoint_id) > 64:
        raise WebhookNotFoundError(f"no webhook endpoint {endpoint_id!r}")
    return endpoint_id


class Webhooks:
    """The webhook endpoints of one ledger, as one actor changes and sees them.

    Args:
        ledger: the ledger.
        clock: time source.
        actor: who acts, for the audit log.
    """

    def __init__(self, ledger: LedgerBackend, *, clock: Clock, actor: str) -> None:
        self.ledger = ledger
        self.actor = actor
        self._clock = clock

    def _event(self, action: str, endpoint: Endpoint, now: _dt.datetime, detail: str) -> Event:
        return Event(
            at=now,
            action=action,
            actor=self.actor,
            detail=f"{endpoint.endpoint_id} {endpoint.url}{detail}",
            changes={"webhook": {"before": None, "after": endpoint.endpoint_id}},
        )

    def add(
        self,
        url: str,
        *,
        events: Iterable[str] = (),
        description: str | None = None,
        allow_private: bool = False,
    ) -> tuple[Endpoint, str]:
        """Add an endpoint; returns it and its secret (shown this once).

        Raises:
            BadInputError: a URL that is not http(s) or names a refused address,
                an unknown event type, a description too long.
        """
        if type(allow_private) is not bool:
            raise BadInputError("allow_private must be true or false")
        wanted = rules.check_events(events)
        text = rules.check_description(description)
        checked = rules.check_url(url, allow_private=allow_private)
        now = now_from(self._clock)
        secret = new_secret()
        endpoint = Endpoint(
            endpoint_id=random_id("WH-", 10),
            url=checked,
            events=wanted,
            description=text,
            allow_private=allow_private,
            state=Endpoint.ACTIVE,
            secrets=(Secret(secret),),
            created_at=now,
        )
        self.ledger.webhooks().add_endpoint(
            endpoint, self._event("webhook.added", endpoint, now, "")
        )
        return endpoint, secret

    def endpoints(self) -> list[Endpoint]:
        """Every endpoint, oldest first."""
        return self.ledger.webhooks().endpoints()

    def get(self, endpoint_id: str) -> Endpoint:
        """The endpoint with this id.

        Raises:
            WebhookNotFoundError: no such endpoint.
        """
        _check_id(endpoint_id)
        for endpoint in self.endpoints():
            if endpoint.endpoint_id == endpoint_id:
                return endpoint
        raise WebhookNotFoundError(f"no webhook endpoint {endpoint_id!r}")

    def remove(self, endpoint_id: str) -> None:
        """Remove an endpoint; its pending deliveries are dropped.

        Raises:
            WebhookNotFoundError: no such endpoint.
        """
        endpoint = self.get(endpoint_id)
        now = now_from(self._clock)
        event = self._event("webhook.removed", endpoint, now, "")
        self.ledger.webhooks().remove_endpoint(endpoint.endpoint_id, event)

    def pause(self, endpoint_id: str) -> Endpoint:
        """Pause an endpoint: events queue, nothing is sent.

        Raises:
            WebhookNotFoundError: no such endpoint.
        """
        endpoint = self.get(endpoint_id).with_state(Endpoint.PAUSED)
        now = now_from(self._clock)
        self.ledger.webhooks().save_endpoint(
            endpoint, self._event("webhook.paused", endpoint, now, "")
        )
        return endpoint

    def resume(self, endpoint_id: str) -> Endpoint:
        """Resume an endpoint: sending starts again from the first undelivered delivery.

        Deliveries that had failed are due again at once, with a new 3-day window.

        Raises:
            WebhookNotFoundError: no such endpoint.
        """
        endpoint = self.get(endpoint_id).with_state(Endpoint.ACTIVE)
        now = now_from(self._clock)
        store = self.ledger.webhooks()
        failed = [
            replace(d, status=DeliveryStatus.PENDING, next_attempt_at=now, window_start=now)
            for d in store.deliveries(endpoint.endpoint_id, limit=2**31, undelivered=True)
            if d.status == DeliveryStatus.FAILED
        ]
        store.save_endpoint(
            endpoint, self._event("webhook.resumed", endpoint, now, ""), reopen=failed
        )
        WAKE.set()
        return endpoint

    def rotate_secret(self, endpoint_id: str) -> tuple[Endpoint, str]:
        """Give an endpoint a new secret (returned, shown this once); the old one signs for 24 h.

        Raises:
            WebhookNotFoundError: no such endpoint.
        """
        endpoint = self.get(endpoint_id)
        now = now_from(self._clock)
        secret = new_secret()
        current = [s for s in endpoint.secrets if s.until is None]
        kept = tuple(replace(s, until=now + ROTATION_OVERLAP) for s in current[:1])
        rotated = replace(endpoint, secrets=(Secret(secret), *kept))
        self.ledger.webhooks().save_endpoint(
            rotated, self._event("webhook.secret-rotated", rotated, now, "")
        )
        return rotated, secret

    def test(self, endpoint_id: str) -> Delivery:
        """Queue a ``webhook.test`` event for that endpoint only (whatever its filter).

        Raises:
            WebhookNotFoundError: no such endpoint.
        """
        endpoint = self.get(endpoint_id)
        now = now_from(self._clock)
        body = {
            "type": rules.TEST_TYPE,
            "timestamp": format_utc(now),
            "data": {"endpoint_id": endpoint.endpoint_id, "message": "a test event from licet"},
        }
        (delivery,) = deliveries_for(
            [endpoint],
            rules.TEST_TYPE,
            random_id("EV-", 16),
            body,
            index=0,
            when=now,
            only=endpoint.endpoint_id,
        )
        self.ledger.webhooks().put([delivery])
        WAKE.set()
        return delivery

    def deliveries(self, endpoint_id: str, *, limit: int = 50) -> list[Delivery]:
        """An endpoint's deliveries, newest first.

        Raises:
            WebhookNotFoundError: no such endpoint.
            BadInputError: a limit outside 1-1000.
        """
        if type(limit) is not int or not 1 <= limit <= MAX_LIMIT:
            raise BadInputError(f"limit must be a whole number from 1 to {MAX_LIMIT}")
        endpoint = self.get(endpoint_id)
        return self.ledger.webhooks().deliveries(endpoint.endpoint_id, limit=limit)

    def redeliver(self, delivery_id: str) -> Delivery:
        """Send a delivery again now, with the same ``webhook-id``, outside the order hold-back.

        A pending delivery is simply due now, in its place in the order.

        Raises:
            WebhookNotFoundError: no such delivery.
        """
        if not isinstance(delivery_id, str) or not delivery_id or len(delivery_id) > 64:
            raise WebhookNotFoundError(f"no webhook delivery {delivery_id!r}")
        store = self.ledger.webhooks()
        found = store.delivery(delivery_id)
        if found is None:
            raise WebhookNotFoundError(f"no webhook delivery {delivery_id!r}")
        now = now_from(self._clock)
        manual = found.status != DeliveryStatus.PENDING
        again = replace(
            found,
            status=DeliveryStatus.PENDING,
            next_attempt_at=now,
            manual=manual,
            window_start=now if manual else found.window_start,
        )
        store.put([again])
        WAKE.set()
        return again
