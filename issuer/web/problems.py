"""What both HTTP servers of licet share: routes, problem documents, docs, the client.

``issuer serve`` and ``issuer console`` answer every refusal of their JSON
APIs the same way: an RFC 9457 problem document with the library's stable
``code`` (:func:`problem`). For failures on the provider's side (ledger, keys,
a bug) the detail is generic, with an incident id, and the real one goes to
the log (:func:`problem_for`). The handlers here turn the web framework's own
refusals into such documents: a malformed request is ``bad-input`` (422), an
unsupported method ``method-not-allowed`` (405) with the ``Allow`` header
RFC 9110 asks for. Every route of both servers is an :class:`ApiRoute`: it
answers ``HEAD`` wherever it answers ``GET``, and parses a JSON request body
with the strict parser tokens are read with (:func:`verifier.encoding.json_loads_strict`),
so a body naming a member twice is ``bad-input`` instead of "the last one
wins". :func:`install_problem_pages` serves the pages the problem ``type``
URIs name, and :func:`openapi_document` builds an app's OpenAPI document with
the one problem schema of :mod:`issuer.web.apidoc`. Both servers
take a request's client address from :func:`client_of` alone.

Example:
    >>> problem(404, "not-found", "no such resource").status_code  # doctest: +SKIP
    404
"""

from __future__ import annotations

import json
import logging
import re
import secrets
import warnings
from collections.abc import Callable, Coroutine
from typing import Annotated, Any

from fastapi import FastAPI, Path, Request, params
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import HTMLResponse, JSONResponse, Response
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from issuer.addresses import ProxyList, client_address
from issuer.web import apidoc
from verifier import errors as e
from verifier.encoding import EncodingError, json_loads_strict
from verifier.errors import LicenseError

__all__ = [
    "BUG_STATUS",
    "ApiRoute",
    "EVERY_ROUTE",
    "LEDGER_FAULTS",
    "allowed_methods",
    "bug_problem",
    "client_of",
    "http_refusal",
    "install_problem_pages",
    "invalid_request",
    "log_to_stderr",
    "new_app",
    "openapi_document",
    "operation_id",
    "problem",
    "problem_for",
]

_log = logging.getLogger("licet.server")

#: Every answer may be one of these: the HTTP layer's limits and a bug (500).
EVERY_ROUTE: tuple[type[LicenseError], ...] = (
    e.HeadersTooLargeError,
    e.BodyTooLargeError,
    e.ServerUnavailableError,
)
#: The ledger's faults (503, generic detail and an incident id).
LEDGER_FAULTS: tuple[type[LicenseError], ...] = (
    e.LedgerError,
    e.LedgerMissingError,
    e.LedgerCorruptError,
    e.LedgerBusyError,
    e.LedgerUnavailableError,
    e.LedgerWriteError,
)
_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "CONNECT")
#: A bug is answered 500 under ``server-unavailable``, whatever its class says.
BUG_STATUS: dict[type[LicenseError], int] = {e.ServerUnavailableError: 500}


def client_of(request: Request, proxies: ProxyList) -> str:
    """The address ``request`` comes from, in canonical form ('' when unknown).

    The TCP peer, or — when the peer is one of ``proxies`` — the right-most
    hop of all its ``X-Forwarded-For`` lines, in order, that is not a trusted
    proxy (:func:`issuer.addresses.client_address`).
    """
    peer = request.client.host if request.client else ""
    return client_address(peer, request.headers.getlist("x-forwarded-for"), proxies)


class ApiRoute(APIRoute):
    """A route of either server: ``HEAD`` wherever ``GET``, JSON bodies read strictly.

    ``HEAD`` answers as ``GET`` without the body, as RFC 9110 asks of every
    resource a client may ``GET`` (the body is left out by the HTTP layer).
    A JSON body is parsed by the rule tokens are parsed by before the
    framework reads it: a member given twice at any depth, NaN or Infinity is
    422 ``bad-input`` naming the fault, never a silent "last one wins".
    """

    def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        super().__init__(path, endpoint, **kwargs)
        # Added after the framework has named the operation after GET.
        if self.methods is not None and "GET" in self.methods:
            self.methods.add("HEAD")

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        """The framework's handler, behind the strict JSON check when the route takes JSON."""
        handler = super().get_route_handler()
        if self.body_field is None or isinstance(self.body_field.field_info, params.Form):
            return handler

        async def strict(request: Request) -> Response:
            body = await request.body()  # kept by the request: the framework reads it again
            if body:
                try:
                    json_loads_strict(body)
                except EncodingError as err:
                    raise e.BadInputError(f"invalid request body — {err}") from None
            return await handler(request)

        return strict


def operation_id(route: APIRoute) -> str:
    """A route's OpenAPI operation id: its name, its path and its method, ``GET`` before ``HEAD``.

    The framework's default takes the first method of a set; a router's
    routes, whose ids are made once :class:`ApiRoute` has added ``HEAD``,
    would then be named after ``get`` or ``head`` by chance.
    """
    methods = route.methods or {"GET"}
    method = "GET" if "GET" in methods else sorted(methods)[0]
    return re.sub(r"\W", "_", f"{route.name}{route.path_format}") + f"_{method.lower()}"


def new_app(title: str) -> FastAPI:
    """An app whose routes are all :class:`ApiRoute`, without the framework's doc pages."""
    app = FastAPI(
        title=title,
        version="1",
        docs_url=None,
        redoc_url=None,
        generate_unique_id_function=operation_id,
    )
    app.router.route_class = ApiRoute
    return app


def problem(status: int, code: str, detail: str, **extra: Any) -> JSONResponse:
    """An RFC 9457 problem document (``Retry-After`` too when it carries ``retry_after``)."""
    headers = None
    if isinstance(extra.get("retry_after"), int):
        headers = {"Retry-After": str(extra["retry_after"])}
    return JSONResponse(
        apidoc.problem_body(status, code, detail, **extra),
        status_code=status,
        media_type=apidoc.PROBLEM_MEDIA_TYPE,
        headers=headers,
    )


def problem_for(err: LicenseError) -> JSONResponse:
    """The problem document for a refusal; the provider's own faults get an incident id."""
    if err.http_status >= 500:
        # The provider's own trouble (ledger, keys): the detail names files and
        # set-up, which clients must not learn. It goes to the log; the client
        # keeps the stable code (it may retry a busy ledger) and the data the
        # class carries for it (when to retry an unreachable ledger).
        return incident(err.code, err.message, err.http_status, **err.details())
    return problem(err.http_status, err.code, err.message, **err.details())


def incident(code: str, detail: str, status: int, **extra: Any) -> JSONResponse:
    """A problem whose detail stays in the server log, under an incident id the client gets."""
    name = secrets.token_hex(6)
    _log.error("incident %s: %s (%s)", name, detail, code)
    return problem(
        status,
        code,
        f"the server cannot serve this request now; try again later (incident {name})",
        incident=name,
        **extra,
    )


def bug_problem(err: Exception) -> JSONResponse:
    """A bug: 500 ``server-unavailable`` with an incident id; the exception goes to the log."""
    return incident(e.ServerUnavailableError.code, f"{type(err).__name__}: {err}", 500)


def invalid_request(err: RequestValidationError) -> JSONResponse:
    """A request the route's declared shape refuses: 422 ``bad-input`` naming the first fault."""
    first = err.errors()[0] if err.errors() else {}
    where = ".".join(str(part) for part in first.get("loc", ()) if part != "body")
    message = str(first.get("msg", "invalid"))
    detail = f"{where}: {message}" if where else message
    return problem(422, e.BadInputError.code, f"invalid request — {detail}")


def http_refusal(request: Request, err: StarletteHTTPException) -> JSONResponse:
    """The framework's own refusals (no such path, method not allowed) as problem documents."""
    if err.status_code == 400:
        # FastAPI's answer to a body it could not parse (bad UTF-8, nesting
        # too deep, numbers too long): a malformed body like any other.
        return problem(422, e.BadInputError.code, "invalid request body — not valid UTF-8 JSON")
    known = {404: e.NotFoundError, 405: e.MethodNotAllowedError}
    code = known.get(err.status_code, e.HttpRefusalError).code
    detail = str(err.detail)
    headers = dict(err.headers or {})
    if err.status_code == 405:
        headers["Allow"] = allowed_methods(request)
        detail = (
            f"{request.method} is not allowed on {request.url.path}; allowed: {headers['Allow']}"
        )
    answer = problem(err.status_code, code, detail)
    answer.headers.update(headers)
    return answer


def allowed_methods(request: Request) -> str:
    """The ``Allow`` header of a 405: every method some route takes at the request's path.

    The framework names only the methods of the first route it tried, which
    is wrong for a path served by several routes (``GET`` and ``POST`` apart).
    """
    allowed = [
        method
        for method in _METHODS
        if any(
            route.matches({**request.scope, "method": method})[0] is Match.FULL
            for route in request.app.router.routes
        )
    ]
    return ", ".join(allowed)


def install_problem_pages(app: FastAPI) -> None:
    """Serve the pages the problem ``type`` URIs name: ``/problems`` and ``/problems/{code}``."""
    html_answer: dict[int | str, dict[str, Any]] = {
        200: {"content": {"text/html": {"schema": {"type": "string"}}}, "description": "The page"}
    }

    @app.get(
        apidoc.PROBLEMS_PATH,
        response_class=HTMLResponse,
        responses={**html_answer, **_refusals(EVERY_ROUTE)},
    )
    async def problems_index() -> HTMLResponse:
        """Every problem code: what it means, whether to retry."""
        return HTMLResponse(apidoc.problems_index())

    @app.get(
        apidoc.PROBLEMS_PATH + "/{code}",
        response_class=HTMLResponse,
        responses={**html_answer, **_refusals((*EVERY_ROUTE, e.NotFoundError))},
    )
    async def problem_page(
        code: Annotated[str, Path(examples=[e.BadInputError.code])],
    ) -> HTMLResponse:
        """One problem code: what it means, what to do, whether to retry."""
        cls = e.error_class(code)
        if cls is None:
            raise e.NotFoundError(f"no problem code {code!r}")
        return HTMLResponse(apidoc.problem_page(cls))


def _refusals(errors: tuple[type[LicenseError], ...]) -> dict[int | str, dict[str, Any]]:
    answers: dict[int | str, dict[str, Any]] = {}
    answers.update(apidoc.refusals(errors, BUG_STATUS))
    return answers


def openapi_document(app: FastAPI, description: str) -> dict[str, Any]:
    """The app's OpenAPI document, with the one problem schema every refusal refers to.

    FastAPI's own validation-error schemas are dropped (a malformed request is
    a ``bad-input`` problem like every other refusal); ``HEAD`` operations are
    implied by their ``GET``; a query parameter is never ``null`` (it is
    absent or text); integer bounds are integers; each summary is the first
    line of the route's docstring.
    """
    if app.openapi_schema is None:
        with warnings.catch_warnings():
            # GET routes also take HEAD, and FastAPI gives both one operation id;
            # the HEAD operations are dropped below.
            warnings.filterwarnings("ignore", "Duplicate Operation ID", UserWarning)
            document = get_openapi(
                title=app.title, version=app.version, description=description, routes=app.routes
            )
        schemas = document.setdefault("components", {}).setdefault("schemas", {})
        schemas.pop("HTTPValidationError", None)
        schemas.pop("ValidationError", None)
        for item in document["paths"].values():
            item.pop("head", None)
            for operation in item.values():
                operation["summary"] = operation.get("description", "").split("\n")[0]
                for parameter in operation.get("parameters", ()):
                    _not_null(parameter)
                answers = operation["responses"]
                if "HTTPValidationError" in json.dumps(answers.get("422", {})):
                    del answers["422"]  # a path parameter that no value can fail
        schemas["Problem"] = apidoc.problem_schema()
        _whole_bounds(document)
        app.openapi_schema = document
    return app.openapi_schema


def _whole_bounds(node: Any) -> None:
    """Write integer bounds as integers (``36500``, not ``36500.0``), as clients expect."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key in ("minimum", "maximum") and isinstance(value, float) and value.is_integer():
                node[key] = int(value)
            else:
                _whole_bounds(value)
    elif isinstance(node, list):
        for value in node:
            _whole_bounds(value)


def _not_null(parameter: dict[str, Any]) -> None:
    """A query parameter declared ``X | None`` is ``X``: absent means ``None``."""
    schema = parameter.get("schema", {})
    kinds = schema.get("anyOf")
    if isinstance(kinds, list):
        rest = [kind for kind in kinds if kind != {"type": "null"}]
        if len(rest) == 1:
            parameter["schema"] = {
                **{k: v for k, v in schema.items() if k != "anyOf"},
                **rest[0],
            }


def log_to_stderr() -> None:
    """Send incidents (and other server messages) to stderr, once."""
    if not _log.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s licet server: %(message)s"))
        _log.addHandler(handler)
        _log.setLevel(logging.INFO)
