"""The console's ``/webhooks`` page: endpoints, their latest deliveries, and their buttons.

Redeliver, Pause/Resume and Send test are forms with the session's
anti-forgery token; each acts through the façade as the logged-in user and
comes back to the page with a notice.

Example:
    >>> app.include_router(router)  # doctest: +SKIP
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from issuer.facade import Issuer
from issuer.web.console_pages import checked_form, logged_in, render_page, user_of
from issuer.web.problems import ApiRoute
from verifier.errors import LicenseError

__all__ = ["router"]

router = APIRouter(include_in_schema=False, route_class=ApiRoute)
_SHOWN = 20  # deliveries shown per endpoint
_NOTICES = {
    "paused": "The endpoint is paused: events queue, nothing is sent.",
    "resumed": "The endpoint is resumed: sending starts from the first undelivered event.",
    "tested": "A webhook.test event is queued; the deliverer sends it within seconds.",
    "redelivered": "The delivery is due now; the deliverer sends it within seconds.",
}


def _overview(acting: Issuer) -> list[dict[str, Any]]:
    return [
        {"endpoint": e, "deliveries": acting.webhooks.deliveries(e.endpoint_id, limit=_SHOWN)}
        for e in acting.webhooks.endpoints()
    ]


async def _page(request: Request, acting: Issuer, csrf: str, **extra: Any) -> Response:
    endpoints = await run_in_threadpool(_overview, acting)
    return render_page(
        request, "webhooks.html", user=user_of(acting), csrf=csrf, endpoints=endpoints, **extra
    )


@router.get("/webhooks")
async def webhooks_page(request: Request) -> Response:
    """Every endpoint with its latest deliveries (status, attempts, HTTP codes)."""
    acting, _, csrf = await logged_in(request)
    notice = _NOTICES.get(request.query_params.get("done", ""))
    return await _page(request, acting, csrf, notice=notice, message=None)


async def _act(request: Request, done: str, action: Any, ident: str) -> Response:
    acting, key, csrf = await logged_in(request)
    await checked_form(request, key)
    try:
        await run_in_threadpool(action(acting), ident)
    except LicenseError as err:
        return await _page(request, acting, csrf, notice=None, message=err.message)
    return RedirectResponse(f"/webhooks?done={done}", status_code=303)


@router.post("/webhooks/{endpoint_id}/pause")
async def pause(request: Request, endpoint_id: str) -> Response:
    """Pause an endpoint."""
    return await _act(request, "paused", lambda a: a.webhooks.pause, endpoint_id)


@router.post("/webhooks/{endpoint_id}/resume")
async def resume(request: Request, endpoint_id: str) -> Response:
    """Resume an endpoint."""
    return await _act(request, "resumed", lambda a: a.webhooks.resume, endpoint_id)


@router.post("/webhooks/{endpoint_id}/test")
async def send_test(request: Request, endpoint_id: str) -> Response:
    """Queue a webhook.test event for the endpoint."""
    return await _act(request, "tested", lambda a: a.webhooks.test, endpoint_id)


@router.post("/webhooks/deliveries/{delivery_id}/redeliver")
async def redeliver(request: Request, delivery_id: str) -> Response:
    """Send a delivery again now."""
    return await _act(request, "redelivered", lambda a: a.webhooks.redeliver, delivery_id)
