"""The admin REST API for billing systems, under ``/v1/admin/``.

Bearer tokens made with ``issuer admin token create``: a ``read`` token may
GET, but never sees an activation key (whoever reads a key can burn the
customer's license); a ``keys`` token may GET with keys; a ``write`` token may
also create and change. Every change is recorded in
the audit log as ``api:<token name>``. Errors are problem+json; bodies are
strict (wrong types and unknown fields are refused before anything changes).

Example:
    $ curl -H "Authorization: Bearer $TOKEN" http://127.0.0.1:8471/v1/admin/licenses?limit=10
"""

from __future__ import annotations

import datetime as _dt
import ipaddress
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field
from pydantic.config import JsonDict
from pydantic.json_schema import SkipJsonSchema

from issuer import errors as ie
from issuer.facade import Issuer
from issuer.licensing.licenses import KEEP, PAGE_MAX
from issuer.policy.terms import MAX_DAYS, MAX_ITEMS, MAX_LEASE_DAYS, MAX_LIMIT, NAME_PATTERN
from issuer.web import apidoc, problems
from verifier import errors as e
from verifier.text import escaped, hidden_ranges

__all__ = [
    "EVERY_REFUSAL",
    "LICENSE_LINKS",
    "WRITE_REFUSALS",
    "Reader",
    "Writer",
    "refusal_answers",
    "router",
]

_bearer = HTTPBearer(auto_error=False, description="An admin API token (issuer admin token create)")
Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
LicenseId = Annotated[
    str,
    Path(pattern=r"^[A-Za-z0-9-]{1,64}$", description="License id", examples=["LIC-7K3QM9XW2D"]),
]
#: A product, feature or limit name, as the issuer checks it.
Name = Annotated[str, Field(pattern=NAME_PATTERN)]
_CURSOR = r"^[0-9]{0,12}$"
Status = Literal["issued", "activated", "revoked", "expired"]


def _ip(value: str) -> str:
    """An IPv4 address in dotted quads or an IPv6 address, nothing around it."""
    try:
        ipaddress.ip_address(value if value.strip() == value and "%" not in value else "-")
    except ValueError:
        raise ValueError("not an IP address") from None
    return value


def _integral(value: Any) -> Any:
    """A JSON number without a fraction is an integer, as JSON Schema says (2.0 is 2)."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _check_day(value: str) -> str:
    """A calendar day, YYYY-MM-DD."""
    try:
        _dt.date.fromisoformat(value)
    except ValueError:
        raise ValueError("not a calendar day (YYYY-MM-DD)") from None
    return value


Ip = Annotated[
    str,
    Field(max_length=64, json_schema_extra={"anyOf": [{"format": "ipv4"}, {"format": "ipv6"}]}),
    AfterValidator(_ip),
]
# Year 0000 is no year Python's dates can name: the pattern refuses it by its shape.
Day = Annotated[
    str,
    Field(
        pattern=(
            r"^([0-9]{3}[1-9]|[0-9]{2}[1-9][0-9]|[0-9][1-9][0-9]{2}|[1-9][0-9]{3})"
            r"-[0-9]{2}-[0-9]{2}$"
        ),
        json_schema_extra={"format": "date"},
        description="the last day the license is valid (UTC), YYYY-MM-DD",
    ),
    AfterValidator(_check_day),
]
# Field before BeforeValidator: the other order loses the range from the JSON Schema.
Days = Annotated[
    int,
    Field(ge=1, le=MAX_DAYS, description="valid for this many days from now"),
    BeforeValidator(_integral),
]
Features = Annotated[list[Name], Field(max_length=MAX_ITEMS)]
Limits = Annotated[
    dict[Name, Annotated[int, Field(ge=0, le=MAX_LIMIT), BeforeValidator(_integral)]],
    Field(max_length=MAX_ITEMS, json_schema_extra={"additionalProperties": False}),
]


def _visible_text(schema: JsonDict) -> None:
    """State the service's rule for free text as a pattern: no character that hides text."""

    def one(char: str) -> str:
        # Astral characters stand as themselves: not every pattern dialect has an escape for them.
        return escaped(char) if ord(char) <= 0xFFFF else char

    spans = "".join(one(a) if a == b else f"{one(a)}-{one(b)}" for a, b in hidden_ranges())
    schema["pattern"] = f"^[^{spans}]*$"


# The service refuses hidden characters with a clear message; the schema says the same.
Customer = Annotated[
    str,
    Field(
        max_length=256,
        description="free text without control, bidi or other invisible formatting characters",
        json_schema_extra=_visible_text,
    ),
]
LeaseDays = Annotated[
    int,
    Field(ge=0, le=MAX_LEASE_DAYS, description="0: no lease; null or absent: the default"),
    BeforeValidator(_integral),
]


def _no_default(schema: JsonDict) -> None:
    """The member is absent, never null: its schema names no default."""
    schema.pop("default", None)


#: Left out of answers to a read-scope token; keys- and write-scope tokens get it.
ActivationKey = Annotated[
    str | SkipJsonSchema[None],
    Field(
        description="the current activation key (absent for a read-scope token)",
        json_schema_extra=_no_default,
    ),
]
#: A body may give a number of days or a last day, not both.
_DAYS_OR_EXPIRES: JsonDict = {
    "not": {
        "required": ["days", "expires"],
        "properties": {"days": {"type": "integer"}, "expires": {"type": "string"}},
    }
}

#: What every admin route may answer besides its own refusals.
EVERY_REFUSAL: tuple[type[e.LicenseError], ...] = (
    *problems.EVERY_ROUTE,
    *problems.LEDGER_FAULTS,
    e.BadInputError,
    ie.AuthenticationError,
)
WRITE_REFUSALS: tuple[type[e.LicenseError], ...] = (*EVERY_REFUSAL, ie.PermissionDeniedError)


def refusal_answers(*errors: type[e.LicenseError]) -> dict[int | str, dict[str, Any]]:
    """The OpenAPI answers of a route that can refuse with ``errors`` (401 with its challenge)."""
    answers: dict[int | str, dict[str, Any]] = {}
    answers.update(apidoc.refusals(errors, problems.BUG_STATUS))
    answers["401"]["headers"] = {
        "WWW-Authenticate": {"description": "`Bearer`", "schema": {"type": "string"}}
    }
    return answers


def _link(operation: str) -> dict[str, Any]:
    return {"operationId": operation, "parameters": {"license_id": "$response.body#/license_id"}}


#: Where a license answer leads: its id is the next operation's path parameter.
LICENSE_LINKS: dict[str, dict[str, Any]] = {
    "GetLicense": _link("get_license"),
    "RegenerateLicense": _link("regenerate_license"),
    "PatchLicense": _link("patch_license"),
    "RevokeLicense": _link("revoke_license"),
}


UtcTime = Annotated[
    str,
    Field(
        pattern=r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$",
        description="UTC time to the second: YYYY-MM-DDTHH:MM:SSZ",
    ),
]
LastDay = Annotated[
    str,
    Field(
        pattern=r"^\d{4}-\d{2}-\d{2}$",
        description="the license's last valid day (UTC), YYYY-MM-DD; null: it never expires",
    ),
]


class LicenseOut(BaseModel):
    """A license, with the field names of ``issuer license show --json``."""

    model_config = ConfigDict(extra="allow")
    license_id: str
    product: str
    customer: str | None
    ip: str | None
    status: Status
    activation_key: ActivationKey = None
    key_generation: int
    created_at: UtcTime
    expires_at: UtcTime | None
    last_day: LastDay | None
    features: list[str]
    limits: dict[str, int]
    lease_days: int
    lease_days_default: bool
    lease_days_effective: int = Field(
        description="days a token issued now lasts: lease_days, or fewer when the "
        "regeneration cap ends it first (0: no lease)"
    )
    lease_days_reason: str | None = Field(
        description="why tokens last fewer days than lease_days (null: they do not)"
    )
    activation: dict[str, Any] | None
    activated_fingerprint: list[str] | None
    activated_hostname: str | None
    past_activations: list[dict[str, Any]]
    next_regeneration: UtcTime = Field(
        description="the instant from which regeneration is allowed; fixed, not the clock: "
        "the license's creation when it was never regenerated"
    )
    regeneration_allowed: bool = Field(description="whether a regeneration is accepted now")
    accept_machine_id: bool
    history: list[dict[str, Any]]


class LicenseItem(BaseModel):
    """A license in a list (``GET /v1/admin/licenses/{id}`` has every field)."""

    license_id: str
    product: str
    status: Status
    activation_key: ActivationKey = None
    customer: str | None
    ip: str | None
    created_at: UtcTime
    expires_at: UtcTime | None
    last_day: LastDay | None
    key_generation: int
    activated_hostname: str | None


class LicenseList(BaseModel):
    """A page of licenses."""

    items: list[LicenseItem]
    next_cursor: str | None


class EventOut(BaseModel):
    """One audit event."""

    cursor: str
    time: UtcTime
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

    # Wrong types and unknown members are refused before anything changes.
    model_config = ConfigDict(strict=True, extra="forbid", json_schema_extra=_DAYS_OR_EXPIRES)
    product: Name
    ip: Ip | None = None
    days: Days | None = None
    expires: Day | None = None
    features: Features = []
    limits: Limits = {}
    customer: Customer | None = None
    lease_days: LeaseDays | None = None
    new_product: bool = Field(False, description="the product is new to this ledger")


class LicensePatch(BaseModel):
    """Body of ``PATCH /v1/admin/licenses/{id}``: only the fields given change (null clears)."""

    model_config = ConfigDict(strict=True, extra="forbid", json_schema_extra=_DAYS_OR_EXPIRES)
    customer: Customer | None = None
    ip: Ip | None = None
    expires: Day | None = None
    days: Days | None = None
    features: Features | None = None
    limits: Limits | None = None
    lease_days: LeaseDays | None = None


def _date(value: str | None) -> _dt.date | None:
    return None if value is None else _dt.date.fromisoformat(value)  # checked by Day


def _as(request: Request, credentials: HTTPAuthorizationCredentials | None, write: bool) -> Issuer:
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise ie.AuthenticationError("missing API token — send Authorization: Bearer <token>")
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
Cursor = Annotated[
    str | None, Query(pattern=_CURSOR, description="the next_cursor of a previous answer")
]
Limit = Annotated[int, Query(ge=1, le=PAGE_MAX, description="items per page")]
router = APIRouter(prefix="/v1/admin", tags=["admin"], route_class=problems.ApiRoute)
_LICENSE = {"links": LICENSE_LINKS}
_KEYRING = (e.KeyringError, e.KeyringMissingError, e.NoActiveKeyError)


@router.get(
    "/licenses",
    operation_id="list_licenses",
    response_model=LicenseList,
    response_model_exclude_unset=True,  # a member left out stays out (activation_key)
    responses=refusal_answers(*EVERY_REFUSAL),
)
def list_licenses(
    iss: Reader,
    product: Annotated[str | None, Query(pattern=NAME_PATTERN)] = None,
    status: Annotated[Status | None, Query()] = None,
    q: Annotated[
        str | None,
        Query(
            max_length=256,
            description="id, customer, IP, current activation key, activated hostname or "
            "activation id",
        ),
    ] = None,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> dict[str, Any]:
    """Licenses, newest first, filtered and searched; follow ``next_cursor`` for more."""
    page = iss.licensing.search(text=q, product=product, status=status, cursor=cursor, limit=limit)
    return {"items": [v.to_dict() for v in page.items], "next_cursor": page.next_cursor}


@router.post(
    "/licenses",
    status_code=201,
    operation_id="create_license",
    response_model=LicenseOut,
    responses={
        201: _LICENSE,
        **refusal_answers(
            *WRITE_REFUSALS, ie.UnknownProductError, ie.ExpiryOutOfRangeError, *_KEYRING
        ),
    },
)
def create_license(iss: Writer, body: LicenseCreate) -> JSONResponse:
    """Create a license; the answer holds its activation key."""
    view = iss.licensing.create(
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


@router.get(
    "/licenses/{license_id}",
    operation_id="get_license",
    response_model=LicenseOut,
    response_model_exclude_unset=True,  # a member left out stays out (activation_key)
    responses={200: _LICENSE, **refusal_answers(*EVERY_REFUSAL, e.LicenseNotFoundError)},
)
def get_license(iss: Reader, license_id: LicenseId) -> dict[str, Any]:
    """A license: its key (not for read-scope tokens), activation, regeneration date, history."""
    return iss.licensing.show(license_id).to_dict()


@router.patch(
    "/licenses/{license_id}",
    operation_id="patch_license",
    response_model=LicenseOut,
    responses={
        200: _LICENSE,
        **refusal_answers(*WRITE_REFUSALS, e.LicenseNotFoundError, ie.ExpiryOutOfRangeError),
    },
)
def patch_license(iss: Writer, license_id: LicenseId, body: LicensePatch) -> dict[str, Any]:
    """Change a license's terms; fields left out stay as they are (null clears)."""
    given = body.model_fields_set
    view = iss.licensing.update(
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
    operation_id="regenerate_license",
    response_model=LicenseOut,
    responses={
        200: _LICENSE,
        **refusal_answers(
            *WRITE_REFUSALS,
            e.LicenseNotFoundError,
            e.LicenseRevokedError,
            e.RegenerationTooSoonError,
        ),
    },
)
def regenerate(iss: Writer, license_id: LicenseId) -> dict[str, Any]:
    """Issue a new activation key (at most once a month; 409 with ``allowed_from`` before)."""
    return iss.licensing.regenerate(license_id).to_dict()


@router.post(
    "/licenses/{license_id}/revoke",
    operation_id="revoke_license",
    response_model=LicenseOut,
    responses={
        200: _LICENSE,
        **refusal_answers(*WRITE_REFUSALS, e.LicenseNotFoundError, e.LicenseRevokedError),
    },
)
def revoke(iss: Writer, license_id: LicenseId) -> dict[str, Any]:
    """Revoke a license: no activation succeeds any more (a second time: 403)."""
    return iss.licensing.revoke(license_id).to_dict()


@router.get(
    "/events",
    operation_id="list_events",
    response_model=EventList,
    responses=refusal_answers(*EVERY_REFUSAL),
)
def events(iss: Reader, after: Cursor = None, limit: Limit = 100) -> dict[str, Any]:
    """Every change in order (for billing sync): poll with ``after=next_cursor``."""
    page = iss.licensing.events(after=after, limit=limit)
    return {"items": [ev.to_dict() for ev in page.items], "next_cursor": page.next_cursor}
