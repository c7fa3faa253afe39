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
import json
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
from verifier.clock import format_utc
from verifier.errors import LicenseError

__all__ = [
    "checked_form",
    "error_page",
    "install",
    "logged_in",
    "render_page",
    "router",
    "said",
    "user_of",
]

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
_env.filters["utc"] = format_utc  # every time on a page: YYYY-MM-DDTHH:MM:SSZ
# A history change as JSON writes it (null, ["dns"]), never a Python repr.
_env.filters["json_value"] = lambda value: json.dumps(value, ensure_ascii=False)
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


def render_page(request: Request, template: str, status: int = 200, **context: Any) -> HTMLResponse:
    """A console page from its template (the request is always in the context)."""
    html = _env.get_template(template).render(request=request, **context)
    return HTMLResponse(html, status_code=status)


async def error_page(request: Request, status: int, message: str) -> HTMLResponse:
    """A page that says what went wrong, in words (never a stack trace), once.

    A logged-in user keeps the navigation, so the way back is one click.
    """
    user, csrf = None, None
    key = request.cookies.get(SESSION_COOKIE, "")
    if key:
        try:
            acting = await run_in_threadpool(_issuer(request).session, key)
            user, csrf = user_of(acting), acting.accounts.csrf_token(key)
        except Exception:  # the page says what went wrong, whatever this is
            user, csrf = None, None
    return render_page(request, "error.html", status, problem=message, user=user, csrf=csrf)


#: How the forms name the inputs a refusal speaks of (the labels beside the fields).
_LABELS = {
    "product": "Product",
    "new_product": "new product",
    "customer": "Customer",
    "ip": "Server IP",
    "days": "Valid for days",
    "expires": "Last day",
    "features": "Features",
    "limits": "Limits",
    "lease_days": "Lease in days",
    "accept_machine_id": "Machine ids",
}
#: The form field where the library's input is typed, where the names differ.
_FIELDS = {"accept_machine_id": "machine_ids", "new_product": "product"}


def _said(name: str) -> str:
    return f"“{_LABELS.get(name, name)}”"


def said(err: LicenseError) -> str:
    """A refusal in the forms' words: the inputs it names are called by their labels."""
    return err.worded(_said)


def _refusal(err: LicenseError, fields: dict[str, str] | None = None) -> tuple[str, dict[str, str]]:
    """A refusal for a form: its message, and what is wrong with each field at fault.

    Args:
        err: the refusal.
        fields: form field of an input, where this form differs from :data:`_FIELDS`.
    """
    where = {**_FIELDS, **(fields or {})}
    bad = {where.get(name, name): err.worded(_said, text) for name, text in err.fields.items()}
    if len(err.fields) > 1:
        named = ", ".join(_said(name) for name in err.fields)
        return f"{len(err.fields)} fields need a fix: {named}", bad
    return said(err), bad


async def logged_in(request: Request) -> tuple[Issuer, str, str]:
    """The issuer acting as the logged-in user, the session key and its anti-forgery token."""
    key = request.cookies.get(SESSION_COOKIE, "")
    if not key:
        raise _LoginRequired()
    try:
        acting = await run_in_threadpool(_issuer(request).session, key)
    except AuthenticationError:
        raise _LoginRequired() from None
    return acting, key, acting.accounts.csrf_token(key)


async def checked_form(request: Request, key: str) -> dict[str, str]:
    """The submitted form, once its anti-forgery token is checked; text fields only."""
    form = await request.form()
    fields = {name: value for name, value in form.multi_items() if isinstance(value, str)}
    if not _issuer(request).accounts.csrf_ok(key, fields.get("csrf")):
        raise CsrfError()
    return fields


def user_of(acting: Issuer) -> str:
    """The console user an acting issuer is logged in as."""
    return acting.actor.removeprefix("console:")


# -- login and logout ---------------------------------------------------------------


@router.get("/login")
async def login_page(request: Request) -> Response:
    """The login form."""
    return await run_in_threadpool(_login_form, request)


def _login_form(
    request: Request,
    status: int = 200,
    message: str | None = None,
    details: dict[str, Any] | None = None,
) -> Response:
    """The login form, with a refusal's message (and its ``Retry-After``, if it has one)."""
    nonce = secrets.token_urlsafe(32)
    iss = _issuer(request)
    response = render_page(
        request,
        "login.html",
        status,
        csrf=iss.accounts.csrf_token(nonce),
        message=message,
        user=None,
        no_users=not iss.accounts.users(),
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
    form = await checked_form(request, request.cookies.get(LOGIN_COOKIE, ""))
    address = client_of(request, request.app.state.proxies)
    try:
        key = await run_in_threadpool(
            iss.accounts.login, form.get("user", ""), form.get("password", ""), address=address
        )
    except LicenseError as err:
        return await run_in_threadpool(
            _login_form, request, err.http_status, said(err), err.details()
        )
    response = RedirectResponse("/", status_code=303)
    _set_cookie(request, response, SESSION_COOKIE, key, max_age=None)
    _forget_cookie(request, response, LOGIN_COOKIE)
    return response


@router.get("/logout")
async def logout_page(request: Request) -> Response:
    """A page with the Log out button (logging out is a form, like every change)."""
    acting, _, csrf = await logged_in(request)
    return render_page(request, "logout.html", user=user_of(acting), csrf=csrf)


@router.post("/logout")
async def logout(request: Request) -> Response:
    """End the session server-side and forget the cookie."""
    key = request.cookies.get(SESSION_COOKIE, "")
    await checked_form(request, key)
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
    acting, _, csrf = await logged_in(request)
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
        items, next_cursor, message, status = [], None, said(err), err.http_status
    filters = {k: v for k, v in wanted.items() if v and k != "cursor"}
    return render_page(
        request,
        "list.html",
        status,
        user=user_of(acting),
        csrf=csrf,
        items=items,
        wanted=wanted,
        message=message,
        first_url="/licenses?" + urlencode(filters) if wanted["cursor"] else None,
        next_url=(
            "/licenses?" + urlencode({**filters, "cursor": next_cursor}) if next_cursor else None
        ),
    )


_NEW = "+new"  # the Product choice "new product" (no product name starts with '+')


@router.get("/licenses/new")
async def new_license_page(request: Request) -> Response:
    """The create-license form."""
    acting, _, csrf = await logged_in(request)
    defaults = await run_in_threadpool(acting.licensing.defaults)
    return render_page(
        request, "new.html", user=user_of(acting), csrf=csrf, form={}, defaults=defaults, bad={}
    )


@router.post("/licenses/new")
async def new_license(request: Request) -> Response:
    """Create a license and show it (with its activation key)."""
    acting, key, csrf = await logged_in(request)
    form = await checked_form(request, key)
    product = form.get("product", "").strip()
    # "new product" names it in a field of its own (a form of old: a ticked new_product box)
    new = product == _NEW or form.get("new_product") == "yes"
    if product == _NEW:
        product = form.get("new_product_name", "").strip()
    machine_ids = {"accept": True, "refuse": False}.get(form.get("machine_ids", ""))
    try:
        days = form.get("days", "").strip()
        expires = form.get("expires", "").strip()
        view = await run_in_threadpool(
            lambda: acting.licensing.create(
                product,
                ip=form.get("ip", "").strip() or None,
                days=_number(days) if days else None,
                expires=_day(expires) if expires else None,
                features=_words(form.get("features", "")),
                limits=_parse_limits_field(form.get("limits", "")),
                customer=form.get("customer") or None,
                lease_days=_lease(form.get("lease_days", "")),
                accept_machine_id=machine_ids,
                new_product=new,
            )
        )
    except LicenseError as err:
        message, bad = _refusal(
            err, {"product": "new_product_name"} if form.get("product") == _NEW else None
        )
        defaults = await run_in_threadpool(acting.licensing.defaults)
        return render_page(
            request,
            "new.html",
            err.http_status,
            user=user_of(acting),
            csrf=csrf,
            form=form,
            defaults=defaults,
            message=message,
            bad=bad,
        )
    return RedirectResponse(f"/licenses/{view.license_id}?done=created", status_code=303)


@router.get("/licenses/{license_id}")
async def license_page(request: Request, license_id: str) -> Response:
    """The license edit form: key with Copy, activation, regeneration, history."""
    acting, _, csrf = await logged_in(request)
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
    refusal: LicenseError | None = None,
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
    return render_page(
        request,
        "license.html",
        status,
        user=user_of(acting),
        csrf=csrf,
        view=view,
        record=record,
        form={**shown, **(form or {})},
        notice=notice,
        message=None if refusal is None else _refusal(refusal)[0],
        bad={} if refusal is None else _refusal(refusal)[1],
        history=list(reversed(record.history)),
    )


@router.post("/licenses/{license_id}")
async def save_license(request: Request, license_id: str) -> Response:
    """Save the edit form: only fields that differ from what was shown are changed."""
    acting, key, csrf = await logged_in(request)
    form = await checked_form(request, key)
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
            changes["expires"] = _day(expires) if expires else None
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
            request, acting, csrf, view, status=err.http_status, refusal=err, form=form
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
    acting, key, csrf = await logged_in(request)
    form = await checked_form(request, key)
    view = await run_in_threadpool(acting.licensing.show, license_id)
    if form.get("confirm") != "yes":
        return render_page(
            request, "confirm.html", user=user_of(acting), csrf=csrf, view=view, action=action
        )
    operation = acting.licensing.regenerate if action == "regenerate" else acting.licensing.revoke
    try:
        await run_in_threadpool(operation, license_id)
    except LicenseError as err:
        return _edit_form(request, acting, csrf, view, status=err.http_status, refusal=err)
    done = "regenerated" if action == "regenerate" else "revoked"
    return RedirectResponse(f"/licenses/{license_id}?done={done}", status_code=303)


# -- keys -----------------------------------------------------------------------------


@router.get("/keys")
async def keys_page(request: Request) -> Response:
    """The signing keys (read only)."""
    acting, _, csrf = await logged_in(request)
    keys = await run_in_threadpool(acting.signing_keys)
    return render_page(request, "keys.html", user=user_of(acting), csrf=csrf, keys=keys)


# -- form fields --------------------------------------------------------------------


def _last_day(view: LicenseView) -> str:
    """The last day a license is usable, as the date field shows it."""
    expires_at = view.record.expires_at
    if expires_at is None:
        return ""
    return (expires_at - _dt.timedelta(microseconds=1)).date().isoformat()


# A field that does not parse is handed on as typed: the library refuses it in
# its own words, together with every other bad field.


def _number(value: str) -> Any:
    """A whole number, or the text as typed."""
    return int(value) if value.isdigit() and len(value) <= 12 else value


def _day(value: str) -> Any:
    """A date (YYYY-MM-DD), or the text as typed."""
    try:
        return _dt.date.fromisoformat(value)
    except ValueError:
        return value


def _lease(value: str) -> Any:
    """The lease field: empty means the provider's default."""
    value = value.strip()
    return None if not value else _number(value)


def _words(value: str) -> list[str]:
    return value.replace(",", " ").split()


def _parse_limits_field(value: str) -> dict[str, Any]:
    """NAME=NUMBER lines (a line without '=' is a name without a number)."""
    limits: dict[str, Any] = {}
    for line in value.replace(",", "\n").splitlines():
        if not line.strip():
            continue
        name, _, number = line.partition("=")
        limits[name.strip()] = _number(number.strip())
    return limits


# -- revocations ----------------------------------------------------------------------


@router.get("/revocations")
async def revocations_page(request: Request) -> Response:
    """The revocation list: its serial, its entries, and a download of the signed list."""
    acting, _, csrf = await logged_in(request)
    serial, entries = await run_in_threadpool(acting.licensing.revocations)
    warning = await run_in_threadpool(_size_warning, acting)
    return render_page(
        request,
        "revocations.html",
        user=user_of(acting),
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
    acting, _, _ = await logged_in(request)
    text = await run_in_threadpool(acting.revocation_lists.text)
    return Response(
        text + "\n",
        media_type="application/jwt",
        headers={"content-disposition": 'attachment; filename="revocations.jwt"'},
    )
