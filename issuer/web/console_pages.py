"""The console's pages: server-rendered HTML forms over the Issuer façade.

Every page works without JavaScript (only the Copy button needs it). Every
form carries an anti-forgery token derived from the session; changes ask for
confirmation on a page of their own; refusals are shown in the page in words.
Sessions live in the ledger, so logging out ends them for good.

Example:
    >>> console.install(app)  # doctest: +SKIP
"""

from __future__ import annotations

import datetime as _dt
import secrets
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.concurrency import run_in_threadpool

from issuer.errors import AuthenticationError, CsrfError
from issuer.facade import Issuer
from issuer.licensing.licenses import LicenseView
from issuer.web.problems import ApiRoute, client_of
from verifier.errors import BadInputError, LicenseError

__all__ = ["error_page", "install", "router"]

SESSION_COOKIE = "licet_session"
LOGIN_COOKIE = "licet_login"  # binds the login form's anti-forgery token to this browser
_NOTICES = {
    "created": "License created. Copy the activation key below for the customer.",
    "saved": "Changes saved.",
    "unchanged": "Nothing to save: no field was changed.",
    "regenerated": "A new activation key was issued; the previous key no longer works.",
    "revoked": "The license was revoked.",
}
_env = Environment(
    loader=FileSystemLoader(Path(__file__).parent / "templates"),
    autoescape=select_autoescape(default=True),
)
router = APIRouter(include_in_schema=False, route_class=ApiRoute)


class _LoginRequired(Exception):
    """No live session: the browser is sent to the login page."""


def install(app: FastAPI) -> None:
    """Add the pages to the console app."""

    @app.exception_handler(_LoginRequired)
    async def to_login(request: Request, err: _LoginRequired) -> Response:
        response = RedirectResponse("/login", status_code=303)
        _forget_cookie(request, response, SESSION_COOKIE)
        return response

    app.include_router(router)


def _issuer(request: Request) -> Issuer:
    iss: Issuer = request.app.state.issuer
    return iss


def _render(request: Request, template: str, status: int = 200, **context: Any) -> HTMLResponse:
    html = _env.get_template(template).render(request=request, **context)
    return HTMLResponse(html, status_code=status)


def error_page(request: Request, status: int, message: str) -> HTMLResponse:
    """A page that says what went wrong, in words (never a stack trace)."""
    return _render(request, "error.html", status, message=message, user=None, csrf=None)


async def _session(request: Request) -> tuple[Issuer, str, str]:
    """The issuer acting as the logged-in user, the session key and its anti-forgery token."""
    key = request.cookies.get(SESSION_COOKIE, "")
    if not key:
        raise _LoginRequired()
    try:
        acting = await run_in_threadpool(_issuer(request).session, key)
    except AuthenticationError:
        raise _LoginRequired() from None
    return acting, key, acting.accounts.csrf_token(key)


async def _form(request: Request, key: str) -> dict[str, str]:
    """The submitted form, once its anti-forgery token is checked; text fields only."""
    form = await request.form()
    fields = {name: value for name, value in form.multi_items() if isinstance(value, str)}
    if not _issuer(request).accounts.csrf_ok(key, fields.get("csrf")):
        raise CsrfError()
    return fields


def _user(acting: Issuer) -> str:
    return acting.actor.removeprefix("console:")


# -- login and logout ---------------------------------------------------------------


@router.get("/login")
async def login_page(request: Request) -> Response:
    """The login form."""
    return _login_form(request)


def _login_form(
    request: Request,
    status: int = 200,
    message: str | None = None,
    details: dict[str, Any] | None = None,
) -> Response:
    """The login form, with a refusal's message (and its ``Retry-After``, if it has one)."""
    nonce = secrets.token_urlsafe(32)
    response = _render(
        request,
        "login.html",
        status,
        csrf=_issuer(request).accounts.csrf_token(nonce),
        message=message,
        user=None,
    )
    _set_cookie(request, response, LOGIN_COOKIE, nonce, max_age=3600)
    retry_after = (details or {}).get("retry_after")
    if isinstance(retry_after, int):
        response.headers["Retry-After"] = str(retry_after)
    return response


@router.post("/login")
async def login(request: Request) -> Response:
    """Check the password, open a session, go to the license list."""
    iss = _issuer(request)
    form = await _form(request, request.cookies.get(LOGIN_COOKIE, ""))
    address = client_of(request, request.app.state.proxies)
    try:
        key = await run_in_threadpool(
            iss.accounts.login, form.get("user", ""), form.get("password", ""), address=address
        )
    except LicenseError as err:
        return _login_form(request, err.http_status, err.message, err.details())
    response = RedirectResponse("/", status_code=303)
    _set_cookie(request, response, SESSION_COOKIE, key, max_age=None)
    _forget_cookie(request, response, LOGIN_COOKIE)
    return response


@router.get("/logout")
async def logout_page(request: Request) -> Response:
    """A page with the Log out button (logging out is a form, like every change)."""
    acting, _, csrf = await _session(request)
    return _render(request, "logout.html", user=_user(acting), csrf=csrf)


@router.post("/logout")
async def logout(request: Request) -> Response:
    """End the session server-side and forget the cookie."""
    key = request.cookies.get(SESSION_COOKIE, "")
    await _form(request, key)
    await run_in_threadpool(_issuer(request).accounts.logout, key)
    response = RedirectResponse("/login", status_code=303)
    _forget_cookie(request, response, SESSION_COOKIE)
    return response


def _set_cookie(
    request: Request, response: Response, name: str, value: str, *, max_age: int | None
) -> None:
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        path="/",
        httponly=True,
        samesite="strict",
        secure=request.app.state.config.secure_cookies,
    )


def _forget_cookie(request: Request, response: Response, name: str) -> None:
    response.delete_cookie(
        name,
        path="/",
        httponly=True,
        samesite="strict",
        secure=request.app.state.config.secure_cookies,
    )


# -- licenses -----------------------------------------------------------------------


@router.get("/")
@router.get("/licenses")
async def license_list(request: Request) -> Response:
    """The license list: search, filters, pages."""
    acting, _, csrf = await _session(request)
    params = request.query_params
    wanted = {k: params.get(k, "").strip() for k in ("q", "product", "status", "cursor")}
    message, status = None, 200
    try:
        page = await run_in_threadpool(
            lambda: acting.licensing.search(
                text=wanted["q"] or None,
                product=wanted["product"] or None,
                status=wanted["status"] or None,
                cursor=wanted["cursor"] or None,
                limit=request.app.state.config.page_size,
            )
        )
        items, next_cursor = page.items, page.next_cursor
    except LicenseError as err:
        items, next_cursor, message, status = [], None, err.message, err.http_status
    filters = {k: v for k, v in wanted.items() if v and k != "cursor"}
    return _render(
        request,
        "list.html",
        status,
        user=_user(acting),
        csrf=csrf,
        items=items,
        wanted=wanted,
        message=message,
        first_url="/licenses?" + urlencode(filters) if wanted["cursor"] else None,
        next_url=(
            "/licenses?" + urlencode({**filters, "cursor": next_cursor}) if next_cursor else None
        ),
    )


@router.get("/licenses/new")
async def new_license_page(request: Request) -> Response:
    """The create-license form."""
    acting, _, csrf = await _session(request)
    return _render(request, "new.html", user=_user(acting), csrf=csrf, form={}, message=None)


@router.post("/licenses/new")
async def new_license(request: Request) -> Response:
    """Create a license and show it (with its activation key)."""
    acting, key, csrf = await _session(request)
    form = await _form(request, key)
    try:
        days = form.get("days", "").strip()
        expires = form.get("expires", "").strip()
        view = await run_in_threadpool(
            lambda: acting.licensing.create(
                form.get("product", "").strip(),
                ip=form.get("ip", "").strip() or None,
                days=_parse_count(days, "days") if days else None,
                expires=_parse_day(expires) if expires else None,
                features=_words(form.get("features", "")),
                limits=_parse_limits_field(form.get("limits", "")),
                customer=form.get("customer") or None,
                lease_days=_lease(form.get("lease_days", "")),
                new_product=form.get("new_product") == "yes",
            )
        )
    except LicenseError as err:
        return _render(
            request,
            "new.html",
            err.http_status,
            user=_user(acting),
            csrf=csrf,
            form=form,
            message=err.message,
        )
    return RedirectResponse(f"/licenses/{view.license_id}?done=created", status_code=303)


@router.get("/licenses/{license_id}")
async def license_page(request: Request, license_id: str) -> Response:
    """The license edit form: key with Copy, activation, regeneration, history."""
    acting, _, csrf = await _session(request)
    view = await run_in_threadpool(acting.licensing.show, license_id)
    notice = _NOTICES.get(request.query_params.get("done", ""))
    return _edit_form(request, acting, csrf, view, notice=notice)


def _edit_form(
    request: Request,
    acting: Issuer,
    csrf: str,
    view: LicenseView,
    *,
    status: int = 200,
    notice: str | None = None,
    message: str | None = None,
    form: dict[str, str] | None = None,
) -> Response:
    record = view.record
    shown = {
        "customer": record.customer or "",
        "ip": record.ip or "",
        "expires": _last_day(view),
        "features": " ".join(record.features),
        "limits": "\n".join(f"{k}={v}" for k, v in record.limits.items()),
        "lease_days": "" if record.lease_days is None else str(record.lease_days),
    }
    return _render(
        request,
        "license.html",
        status,
        user=_user(acting),
        csrf=csrf,
        view=view,
        record=record,
        form={**shown, **(form or {})},
        notice=notice,
        message=message,
        history=list(reversed(record.history)),
    )


@router.post("/licenses/{license_id}")
async def save_license(request: Request, license_id: str) -> Response:
    """Save the edit form: only fields that differ from what was shown are changed."""
    acting, key, csrf = await _session(request)
    form = await _form(request, key)
    view = await run_in_threadpool(acting.licensing.show, license_id)
    record = view.record
    try:
        changes: dict[str, Any] = {}
        customer = form.get("customer", "")
        if customer.strip() != (record.customer or ""):
            changes["customer"] = customer or None
        ip = form.get("ip", "").strip()
        if ip != (record.ip or ""):
            changes["ip"] = ip or None
        expires = form.get("expires", "").strip()
        if expires != _last_day(view):
            changes["expires"] = _parse_day(expires) if expires else None
        features = _words(form.get("features", ""))
        if sorted(set(features)) != list(record.features):
            changes["features"] = features
        limits = _parse_limits_field(form.get("limits", ""))
        if limits != record.limits:
            changes["limits"] = limits
        lease = _lease(form.get("lease_days", ""))
        if lease != record.lease_days:
            changes["lease_days"] = lease
        if not changes:
            return RedirectResponse(f"/licenses/{license_id}?done=unchanged", status_code=303)
        await run_in_threadpool(lambda: acting.licensing.update(license_id, **changes))
    except LicenseError as err:
        return _edit_form(
            request, acting, csrf, view, status=err.http_status, message=err.message, form=form
        )
    return RedirectResponse(f"/licenses/{license_id}?done=saved", status_code=303)


@router.post("/licenses/{license_id}/regenerate")
async def regenerate(request: Request, license_id: str) -> Response:
    """Regenerate the key, after a confirmation page."""
    return await _confirmed(request, license_id, "regenerate")


@router.post("/licenses/{license_id}/revoke")
async def revoke(request: Request, license_id: str) -> Response:
    """Revoke the license, after a confirmation page."""
    return await _confirmed(request, license_id, "revoke")


async def _confirmed(request: Request, license_id: str, action: str) -> Response:
    acting, key, csrf = await _session(request)
    form = await _form(request, key)
    view = await run_in_threadpool(acting.licensing.show, license_id)
    if form.get("confirm") != "yes":
        return _render(
            request, "confirm.html", user=_user(acting), csrf=csrf, view=view, action=action
        )
    operation = acting.licensing.regenerate if action == "regenerate" else acting.licensing.revoke
    try:
        await run_in_threadpool(operation, license_id)
    except LicenseError as err:
        return _edit_form(request, acting, csrf, view, status=err.http_status, message=err.message)
    done = "regenerated" if action == "regenerate" else "revoked"
    return RedirectResponse(f"/licenses/{license_id}?done={done}", status_code=303)


# -- keys -----------------------------------------------------------------------------


@router.get("/keys")
async def keys_page(request: Request) -> Response:
    """The signing keys (read only)."""
    acting, _, csrf = await _session(request)
    keys = await run_in_threadpool(acting.signing_keys)
    return _render(request, "keys.html", user=_user(acting), csrf=csrf, keys=keys)


# -- form fields --------------------------------------------------------------------


def _last_day(view: LicenseView) -> str:
    """The last day a license is usable, as the date field shows it."""
    expires_at = view.record.expires_at
    if expires_at is None:
        return ""
    return (expires_at - _dt.timedelta(microseconds=1)).date().isoformat()


def _parse_count(value: str, what: str) -> int:
    if not value.isdigit() or len(value) > 6:
        raise BadInputError(f"{what} must be a whole number")
    return int(value)


def _parse_day(value: str) -> _dt.date:
    try:
        return _dt.date.fromisoformat(value)
    except ValueError:
        raise BadInputError(f"{value!r} is not a date (YYYY-MM-DD)") from None


def _lease(value: str) -> int | None:
    """The lease field: empty means the provider's default."""
    value = value.strip()
    return None if not value else _parse_count(value, "lease days")


def _words(value: str) -> list[str]:
    return value.replace(",", " ").split()


def _parse_limits_field(value: str) -> dict[str, int]:
    limits: dict[str, int] = {}
    for line in value.replace(",", "\n").splitlines():
        if not line.strip():
            continue
        name, sep, number = line.partition("=")
        if not sep:
            raise BadInputError(f"limits take NAME=NUMBER, one per line; got {line.strip()!r}")
        limits[name.strip()] = _parse_count(number.strip(), f"limit {name.strip()}")
    return limits


# -- revocations ----------------------------------------------------------------------


@router.get("/revocations")
async def revocations_page(request: Request) -> Response:
    """The revocation list: its serial, its entries, and a download of the signed list."""
    acting, _, csrf = await _session(request)
    serial, entries = await run_in_threadpool(acting.licensing.revocations)
    warning = await run_in_threadpool(_size_warning, acting)
    return _render(
        request,
        "revocations.html",
        user=_user(acting),
        csrf=csrf,
        serial=serial,
        entries=entries,
        warning=warning,
    )


def _size_warning(acting: Issuer) -> str | None:
    """What the provider must know about the signed list's size (near or over the panels' limit)."""
    try:
        return acting.revocation_lists.signed().warning
    except LicenseError as err:  # no key to sign with: the page still shows the entries
        return f"the revocation list cannot be signed now: {err.message}"


@router.get("/revocations/download")
async def revocations_download(request: Request) -> Response:
    """The signed revocation list (what ``GET /v1/revocations`` serves panels)."""
    acting, _, _ = await _session(request)
    text = await run_in_threadpool(acting.revocation_lists.text)
    return Response(
        text + "\n",
        media_type="application/jwt",
        headers={"content-disposition": 'attachment; filename="revocations.jwt"'},
    )
