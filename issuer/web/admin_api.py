"""The admin REST API for billing systems, under ``/v1/admin/``.

Bearer tokens made with ``issuer admin token create``: a ``read`` token may
GET, a ``write`` token may also create and change. Every change is recorded in
the audit log as ``api:<token name>``. Errors are problem+json; bodies are
strict (wrong types and unknown fields are refused before anything changes).

Example:
    $ curl -H "Authorization: Bearer $TOKEN" http://127.0.0.1:8471/v1/admin/licenses?limit=10
"""

from __future__ import annotations

import datetime as _dt
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, ConfigDict, Field

from issuer.errors import AuthenticationError
from issuer.service import KEEP, Issuer
from verifier.errors import BadInputError

__all__ = ["Problem", "router"]

_bearer = HTTPBearer(auto_error=False, description="An admin API token (issuer admin token create)")
Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
LicenseId = Annotated[str, Path(pattern=r"^[A-Za-z0-9-]{1,64}$", description="License id")]
Name = Annotated[str, Field(min_length=1, max_length=64)]
Date = Annotated[str, Field(pattern=r"^\d{4}-\d{2}-\d{2}$", description="YYYY-MM-DD")]


class Problem(BaseModel):
    """An RFC 9457 problem document (``application/problem+json``)."""

    type: str
    title: str
    status: int
    detail: str
    code: str = Field(description="stable machine-readable error code")
    allowed_from: str | None = Field(None, description="regeneration-too-soon: when it is allowed")


def _problems(*statuses: int) -> dict[int | str, dict[str, Any]]:
    what = {
        400: "Bad input (the license cannot take this change)",
        401: "No token, or not a valid one",
        403: "A read-scope token asking to write",
        404: "No such license",
        409: "Conflict (regeneration too soon: `allowed_from` says when)",
        413: "Request body too large",
        422: "Malformed request: wrong types, unknown fields, bad values",
        429: "Too many requests",
    }
    problem_json = {"schema": {"$ref": "#/components/schemas/Problem"}}
    return {
        s: {"description": what[s], "content": {"application/problem+json": problem_json}}
        for s in statuses
    }


class LicenseOut(BaseModel):
    """A license, with the field names of ``issuer license show --json``."""

    model_config = ConfigDict(extra="allow")
    license_id: str
    product: str
    status: str
    activation_key: str
    customer: str | None
    ip: str | None
    expires_at: str | None
    features: list[str] = []
    limits: dict[str, int] = {}
    key_generation: int
    lease_days: int
    next_regeneration: str | None = None


class LicenseItem(BaseModel):
    """A license in a list (``GET /v1/admin/licenses/{id}`` has every field)."""

    license_id: str
    product: str
    status: str
    activation_key: str
    customer: str | None
    ip: str | None
    created_at: str
    expires_at: str | None
    key_generation: int
    activated_hostname: str | None


class LicenseList(BaseModel):
    """A page of licenses."""

    items: list[LicenseItem]
    next_cursor: str | None


class EventOut(BaseModel):
    """One audit event."""

    cursor: str
    time: str
    actor: str
    action: str
    license_id: str | None
    changes: dict[str, dict[str, Any]]


class EventList(BaseModel):
    """A page of audit events; ask ``after=next_cursor`` for the next."""

    items: list[EventOut]
    next_cursor: str | None


class LicenseCreate(BaseModel):
    """Body of ``POST /v1/admin/licenses``."""

    model_config = ConfigDict(strict=True, extra="forbid")
    product: Name
    ip: Annotated[str, Field(max_length=64)] | None = None
    days: Annotated[int, Field(ge=1, le=36500)] | None = None
    expires: Date | None = None
    features: Annotated[list[Name], Field(max_length=64)] = []
    limits: Annotated[dict[Name, Annotated[int, Field(ge=0)]], Field(max_length=64)] = {}
    customer: Annotated[str, Field(max_length=256)] | None = None
    lease_days: Annotated[int, Field(ge=0, le=3650)] | None = None
    new_product: bool = Field(False, description="the product is new to this ledger")


class LicensePatch(BaseModel):
    """Body of ``PATCH /v1/admin/licenses/{id}``: only the fields given change (null clears)."""

    model_config = ConfigDict(strict=True, extra="forbid")
    customer: Annotated[str, Field(max_length=256)] | None = None
    ip: Annotated[str, Field(max_length=64)] | None = None
    expires: Date | None = None
    days: Annotated[int, Field(ge=1, le=36500)] | None = None
    features: Annotated[list[Name], Field(max_length=64)] | None = None
    limits: Annotated[dict[Name, Annotated[int, Field(ge=0)]], Field(max_length=64)] | None = None
    lease_days: Annotated[int, Field(ge=0, le=3650, description="null: the default")] | None = None


def _date(value: str | None) -> _dt.date | None:
    if value is None:
        return None
    try:
        return _dt.date.fromisoformat(value)
    except ValueError:
        raise BadInputError(f"{value!r} is not a date (YYYY-MM-DD)") from None


def _as(request: Request, credentials: HTTPAuthorizationCredentials | None, write: bool) -> Issuer:
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise AuthenticationError("missing API token — send Authorization: Bearer <token>")
    iss: Issuer = request.app.state.issuer
    return iss.authenticate_token(credentials.credentials, write=write)


def reader(request: Request, credentials: Credentials) -> Issuer:
    """The issuer acting for a token allowed to read."""
    return _as(request, credentials, write=False)


def writer(request: Request, credentials: Credentials) -> Issuer:
    """The issuer acting for a token allowed to write."""
    return _as(request, credentials, write=True)


Reader = Annotated[Issuer, Depends(reader)]
Writer = Annotated[Issuer, Depends(writer)]
router = APIRouter(prefix="/v1/admin", tags=["admin"])


@router.get("/licenses", response_model=LicenseList, responses=_problems(400, 401, 422))
def list_licenses(
    iss: Reader,
    product: Annotated[str | None, Query(max_length=64)] = None,
    status: Annotated[str | None, Query(max_length=16)] = None,
    q: Annotated[str | None, Query(max_length=256, description="id, customer or IP")] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[str | None, Query(max_length=16)] = None,
) -> dict[str, Any]:
    """Licenses, newest first, filtered and searched; follow ``next_cursor`` for more."""
    page = iss.search(text=q, product=product, status=status, cursor=cursor, limit=limit)
    return {"items": [v.to_dict() for v in page.items], "next_cursor": page.next_cursor}


@router.post(
    "/licenses",
    status_code=201,
    response_model=LicenseOut,
    responses=_problems(400, 401, 403, 413, 422),
)
def create_license(iss: Writer, body: LicenseCreate) -> JSONResponse:
    """Create a license; the answer holds its activation key."""
    view = iss.create_license(
        body.product,
        ip=body.ip,
        days=body.days,
        expires=_date(body.expires),
        features=body.features,
        limits=body.limits,
        customer=body.customer,
        lease_days=body.lease_days,
        new_product=body.new_product,
    )
    return JSONResponse(view.to_dict(), status_code=201)


@router.get("/licenses/{license_id}", response_model=LicenseOut, responses=_problems(401, 404, 422))
def get_license(iss: Reader, license_id: LicenseId) -> dict[str, Any]:
    """A license with its key, current activation, next regeneration date and history."""
    return iss.show(license_id).to_dict()


@router.patch(
    "/licenses/{license_id}",
    response_model=LicenseOut,
    responses=_problems(400, 401, 403, 404, 413, 422),
)
def patch_license(iss: Writer, license_id: LicenseId, body: LicensePatch) -> dict[str, Any]:
    """Change a license's terms; fields left out stay as they are."""
    given = body.model_fields_set
    view = iss.update_license(
        license_id,
        customer=body.customer if "customer" in given else KEEP,
        ip=body.ip if "ip" in given else KEEP,
        expires=_date(body.expires) if "expires" in given else KEEP,
        days=body.days,
        features=body.features,
        limits=body.limits,
        lease_days=body.lease_days if "lease_days" in given else KEEP,
    )
    return view.to_dict()


@router.post(
    "/licenses/{license_id}/regenerate",
    response_model=LicenseOut,
    responses=_problems(400, 401, 403, 404, 409, 422),
)
def regenerate(iss: Writer, license_id: LicenseId) -> dict[str, Any]:
    """Issue a new activation key (at most once a month; 409 with the date before)."""
    return iss.regenerate(license_id).to_dict()


@router.post(
    "/licenses/{license_id}/revoke",
    response_model=LicenseOut,
    responses=_problems(400, 401, 403, 404, 422),
)
def revoke(iss: Writer, license_id: LicenseId) -> dict[str, Any]:
    """Revoke a license: no activation succeeds any more."""
    return iss.revoke(license_id).to_dict()


@router.get("/events", response_model=EventList, responses=_problems(400, 401, 422))
def events(
    iss: Reader,
    after: Annotated[str | None, Query(max_length=16, description="a previous next_cursor")] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 100,
) -> dict[str, Any]:
    """Every change in order (for billing sync): poll with ``after=next_cursor``."""
    page = iss.events(after=after, limit=limit)
    return {"items": [e.to_dict() for e in page.items], "next_cursor": page.next_cursor}
