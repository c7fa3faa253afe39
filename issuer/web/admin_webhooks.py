"""The admin REST API's webhook routes, under ``/v1/admin/webhooks``.

The same Bearer tokens as the rest of the admin API (``read`` for GET,
``write`` for the rest); a new endpoint's secret is in the 201 answer, once;
every change is an audit event as ``api:<token name>``.

Example:
    $ curl -H "Authorization: Bearer $TOKEN" -H 'content-type: application/json'
        -d '{"url": "https://billing.example/licet"}' http://127.0.0.1:8471/v1/admin/webhooks
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, get_args

from fastapi import APIRouter, Path, Query, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from issuer.licensing.webhooks import MAX_LIMIT
from issuer.policy.webhooks import EVENT_TYPES, MAX_DESCRIPTION, MAX_URL
from issuer.web import problems
from issuer.web.admin_api import EVERY_REFUSAL, WRITE_REFUSALS, Reader, Writer, refusal_answers
from verifier import errors as e

__all__ = ["router"]

EventType = Literal[
    "license.created",
    "license.updated",
    "license.regenerated",
    "license.revoked",
    "license.activated",
    "license.renewed",
    "webhook.test",
    "license.*",
]
assert set(get_args(EventType)) == {*EVENT_TYPES, "license.*"}  # noqa: S101 - the types agree
_ID = r"^[A-Za-z0-9-]{1,64}$"
EndpointId = Annotated[
    str, Path(pattern=_ID, description="Endpoint id", examples=["WH-4K7QM9XW2D"])
]
DeliveryId = Annotated[
    str, Path(pattern=_ID, description="Delivery id", examples=["DL-8QFCE5YQJJFH"])
]
router = APIRouter(prefix="/v1/admin", tags=["webhooks"], route_class=problems.ApiRoute)


class WebhookCreate(BaseModel):
    """Body of ``POST /v1/admin/webhooks``."""

    model_config = ConfigDict(strict=True, extra="forbid")
    url: str = Field(min_length=1, max_length=MAX_URL, pattern=r"^[Hh][Tt][Tt][Pp][Ss]?://[^\s]+$")
    events: list[EventType] = Field([], max_length=len(EVENT_TYPES) + 1)
    description: str = Field("", max_length=MAX_DESCRIPTION, pattern=r"^[^\x00-\x1f\x7f]*$")
    allow_private: bool = False


class WebhookOut(BaseModel):
    """An endpoint (never its secret)."""

    id: str
    url: str
    events: list[str]
    description: str
    state: Literal["active", "paused"]


class WebhookCreated(BaseModel):
    """A new endpoint, with its secret: shown this once."""

    id: str
    url: str
    events: list[str]
    description: str
    secret: str


class WebhookList(BaseModel):
    """Every endpoint."""

    items: list[WebhookOut]


class AttemptOut(BaseModel):
    """One try."""

    at: str
    http_status: int | None
    error: str | None


class DeliveryOut(BaseModel):
    """One event queued for one endpoint."""

    delivery_id: str
    event_id: str
    type: str
    status: Literal["pending", "delivered", "failed"]
    attempts: list[AttemptOut]
    next_attempt_at: str | None


class DeliveryList(BaseModel):
    """An endpoint's deliveries, newest first."""

    items: list[DeliveryOut]


@router.get(
    "/webhooks",
    operation_id="list_webhooks",
    response_model=WebhookList,
    responses=refusal_answers(*EVERY_REFUSAL),
)
def list_webhooks(iss: Reader) -> dict[str, Any]:
    """Every webhook endpoint (never a secret)."""
    return {"items": [endpoint.public() for endpoint in iss.webhooks.endpoints()]}


@router.post(
    "/webhooks",
    status_code=201,
    operation_id="create_webhook",
    response_model=WebhookCreated,
    responses=refusal_answers(*WRITE_REFUSALS, e.WebhookTargetError),
)
def create_webhook(iss: Writer, body: WebhookCreate) -> JSONResponse:
    """Add an endpoint; the answer holds its secret, shown this once."""
    endpoint, secret = iss.webhooks.add(
        body.url,
        events=body.events,
        description=body.description,
        allow_private=body.allow_private,
    )
    shown = endpoint.public()
    del shown["state"]
    return JSONResponse({**shown, "secret": secret}, status_code=201)


@router.delete(
    "/webhooks/{endpoint_id}",
    status_code=204,
    operation_id="delete_webhook",
    responses=refusal_answers(*WRITE_REFUSALS, e.WebhookNotFoundError),
)
def delete_webhook(iss: Writer, endpoint_id: EndpointId) -> Response:
    """Remove an endpoint; its pending deliveries are dropped."""
    iss.webhooks.remove(endpoint_id)
    return Response(status_code=204)


@router.get(
    "/webhooks/{endpoint_id}/deliveries",
    operation_id="list_webhook_deliveries",
    response_model=DeliveryList,
    responses=refusal_answers(*EVERY_REFUSAL, e.WebhookNotFoundError),
)
def list_deliveries(
    iss: Reader,
    endpoint_id: EndpointId,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT, description="the most to return")] = 50,
) -> dict[str, Any]:
    """An endpoint's deliveries, newest first, with their attempts and HTTP codes."""
    return {"items": [d.to_dict() for d in iss.webhooks.deliveries(endpoint_id, limit=limit)]}


@router.post(
    "/webhooks/deliveries/{delivery_id}/redeliver",
    operation_id="redeliver_webhook",
    response_model=DeliveryOut,
    responses=refusal_answers(*WRITE_REFUSALS, e.WebhookNotFoundError),
)
def redeliver(iss: Writer, delivery_id: DeliveryId) -> dict[str, Any]:
    """Send a delivery again now (the same webhook-id), outside the order hold-back."""
    return iss.webhooks.redeliver(delivery_id).to_dict()
