"""``issuer serve``: the license server for online manual and automatic activation.

A FastAPI app over the same ledger and the same activation function as the
CLI (the ``server`` extra; h11, under uvicorn, also speaks the callback's
HTTP). Its refusals and their documentation are shared with the console
(:mod:`issuer.web.problems`).

Endpoints (JSON; OpenAPI at ``/openapi.json``)::

    POST /v1/activations       {"request_code"}                         manual online
    POST /v1/activations/auto  {"product", "fingerprint", "callback_port",
                                "challenge_hash", "hostname"}           automatic
    POST /v1/renewals          {"renewal_code"}                         lease renewal
    GET  /v1/revocations       the signed revocation list (application/jwt, ETag),
                               answered from memory while the ledger's serial stays
                               the same, rate limited per client (429)
    GET  /v1/health            200 {"status", "provider", "ledger": "ok"} when this node
                               can write its ledger, else 503 ledger-unavailable
    GET  /problems, /problems/{code}                                   what each code means

Every refusal is ``application/problem+json`` (RFC 9457) carrying the
library's stable ``code``, and the OpenAPI document lists, per operation and
status, the codes it may answer (built by :mod:`issuer.web.apidoc` from the error
classes each route declares); request bodies refuse unknown members. For
failures on the provider's side (ledger, keys, a bug) the detail is generic,
with an incident id, and the real one goes to the log. Every request is
logged on stderr as one JSON line (:mod:`issuer.web.requestlog`), without keys or
tokens.

Automatic activation trusts only the TCP peer address (or, behind trusted
proxies, the right-most X-Forwarded-For hop that is not one of them, every
header line read in order as one list) — never an address in the body. It
calls the panel back on that address under one deadline, expects the
challenge whose SHA-256 came with the request, and only then activates.
Routes call the :class:`~issuer.facade.Issuer` façade only.

Example:
    $ issuer serve --host 0.0.0.0 --port 8443 --workers 2
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, Literal

import uvicorn
from fastapi import FastAPI, Header, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException as StarletteHTTPException
from uvicorn.supervisors import Multiprocess

from issuer.addresses import parse_proxies
from issuer.config import IssuerConfig
from issuer.facade import Issuer
from issuer.policy.ratelimit import RateLimit, RequestRate
from issuer.policy.terms import NAME_PATTERN
from issuer.web import apidoc, problems
from issuer.web.callback import confirm_panel
from issuer.web.plumbing import SHUTDOWN_GRACE, DeadlineProtocol, limit_body, listen
from issuer.web.requestlog import LICENSE_ID, log_requests
from keytool.passphrase import PASSPHRASE_FILE_ENV, read_passphrase
from verifier import errors as e
from verifier.claims import IDENTITY_HARDWARE, IDENTITY_KINDS
from verifier.errors import LicenseError
from verifier.fingerprint import (
    COMPONENT_PATTERN,
    MAX_COMPONENTS,
    MAX_PER_KIND,
    parse_fingerprint,
)
from verifier.renewal import MAX_RENEWAL_CODE, RENEWAL_PREFIX
from verifier.request import (
    HOSTNAME_PATTERN,
    MAX_REQUEST_CODE,
    REQUEST_PREFIX,
    parse_request_code,
)

__all__ = ["ServerConfig", "add_health_route", "create_app", "serve"]

_CONFIG_ENV = "LICET_SERVE_CONFIG"  # hand-off from `issuer serve` to its worker processes


@dataclasses.dataclass(frozen=True)
class ServerConfig:
    """How the license server runs.

    Attributes:
        ledger: the ledger folder, or a ``postgresql://`` URL (kept out of the
            config's repr: it may carry a password).
        keys: the keys folder.
        allow_private_callbacks: let automatic activation call back loopback
            and private addresses (tests, intranets); off by default.
        trusted_proxies: addresses or networks of proxies whose
            X-Forwarded-For hops are believed (all lines, walked from the right).
        max_body_bytes: request bodies larger than this are refused (default 16 KiB).
        callback_timeout: seconds for the whole back-request — connect,
            headers and body together (default 5).
        callback_max_bytes: largest callback answer read (default 1 KiB).
        failure_limit: failed key attempts per client per 15 minutes (default 10).
        ipv6_prefix: IPv6 clients are rate limited per network of this
            prefix length (default 64).
        receive_timeout: seconds a client has to send a whole request, headers
            and body (default 10); slower connections are closed.
        max_header_bytes: request headers larger than this are refused (default 16 KiB).
        revocations_per_minute: revocation-list requests per client and minute
            (default 60, all at once after a quiet minute; 1 to 100,000), per worker.

    Raises:
        BadInputError: a trusted proxy that is not an address or network, or
            a rate limit out of bounds.
    """

    ledger: str = dataclasses.field(repr=False)
    keys: str
    allow_private_callbacks: bool = False
    trusted_proxies: tuple[str, ...] = ()
    max_body_bytes: int = 16 * 1024
    callback_timeout: float = 5.0
    callback_max_bytes: int = 1024
    failure_limit: int = 10
    ipv6_prefix: int = 64
    receive_timeout: float = 10.0
    max_header_bytes: int = 16 * 1024
    revocations_per_minute: int = 60

    def __post_init__(self) -> None:
        parse_proxies(self.trusted_proxies)
        self.rate_limit()
        self.revocations_rate()

    def rate_limit(self) -> RateLimit:
        """The failure rate limit these settings describe."""
        return RateLimit(limit=self.failure_limit, ipv6_prefix=self.ipv6_prefix)

    def revocations_rate(self) -> RequestRate:
        """The per-client limit of revocation-list requests these settings describe."""
        return RequestRate(
            self.revocations_per_minute,
            what="revocation-list requests",
            ipv6_prefix=self.ipv6_prefix,
        )


def _code_pattern(prefix: str) -> str:
    """The shape of a code as sent: its prefix, then base64url; whitespace is dropped."""
    return r"^\s*" + re.escape(prefix) + r"[A-Za-z0-9_\-\s]*$"


class ManualRequest(BaseModel):
    """Body of ``POST /v1/activations``: a request code as the panel printed it."""

    # Unknown members are refused: a client misspelling a member learns it at once.
    model_config = ConfigDict(strict=True, extra="forbid")
    # The pattern is documented and checked by the request-code parser itself,
    # which names what is wrong (another version, a truncated copy).
    request_code: Annotated[
        str,
        Field(
            min_length=1,
            max_length=MAX_REQUEST_CODE,
            json_schema_extra={"pattern": _code_pattern(REQUEST_PREFIX)},
        ),
    ]


#: JSON Schema of a fingerprint, as :func:`verifier.fingerprint.parse_fingerprint` checks it.
_FINGERPRINT_SCHEMA: dict[str, Any] = {
    "items": {"type": "string", "pattern": COMPONENT_PATTERN},
    "uniqueItems": True,
    "allOf": [
        {"contains": {"pattern": f"^{kind}:"}, "minContains": 0, "maxContains": most}
        for kind, most in MAX_PER_KIND.items()
    ],
}


class RenewalBody(BaseModel):
    """Body of ``POST /v1/renewals``: a renewal code as the panel made it."""

    model_config = ConfigDict(strict=True, extra="forbid")
    # Checked by the renewal-code parser, which names what is wrong.
    renewal_code: Annotated[
        str,
        Field(
            min_length=1,
            max_length=MAX_RENEWAL_CODE,
            json_schema_extra={"pattern": _code_pattern(RENEWAL_PREFIX)},
        ),
    ]


class AutoRequest(BaseModel):
    """Body of ``POST /v1/activations/auto``. An address in it is refused, never used."""

    model_config = ConfigDict(strict=True, extra="forbid")
    product: Annotated[str, Field(pattern=NAME_PATTERN)]
    # Component format, duplicates and kinds are checked by parse_fingerprint.
    fingerprint: Annotated[
        list[str],
        Field(min_length=1, max_length=MAX_COMPONENTS, json_schema_extra=_FINGERPRINT_SCHEMA),
    ]
    callback_port: Annotated[int, Field(ge=1, le=65535)]
    challenge_hash: Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]
    hostname: Annotated[str, Field(pattern=HOSTNAME_PATTERN)] = ""
    # The kinds are checked in the route, against the one list of them.
    identity: Annotated[str, Field(json_schema_extra={"enum": list(IDENTITY_KINDS)})] = (
        IDENTITY_HARDWARE
    )


class TokenResponse(BaseModel):
    """A successful activation."""

    token: str


class HealthResponse(BaseModel):
    """The server is up, whose it is, and it can write its ledger."""

    status: Literal["ok"]
    provider: str
    ledger: Literal["ok"]


_EVERY_ROUTE = problems.EVERY_ROUTE
#: The provider's own faults (503, generic detail and an incident id).
_FAULTS: tuple[type[LicenseError], ...] = (
    *problems.LEDGER_FAULTS,
    e.KeyringError,
    e.NoActiveKeyError,
    e.PrivateKeyError,
    e.PassphraseError,
)
#: What a redemption may answer, whichever door the request came through.
_REDEMPTION: tuple[type[LicenseError], ...] = (
    e.BadInputError,
    e.InvalidActivationKeyError,
    e.LicenseRevokedError,
    e.LicenseExpiredError,
    e.ProductMismatchError,
    e.MachineIdRefusedError,
    e.AlreadyActivatedError,
    e.RateLimitedError,
    *_FAULTS,
)
_DOCUMENTED: dict[str, tuple[type[LicenseError], ...]] = {
    "health": (*_EVERY_ROUTE, e.LedgerUnavailableError),
    "activate_manual": (
        *_EVERY_ROUTE,
        *_REDEMPTION,
        e.RequestCodeError,
        e.ActivationKeyFormatError,
    ),
    "activate_auto": (
        *_EVERY_ROUTE,
        *_REDEMPTION,
        e.NoLicenseForAddressError,
        e.CallbackError,
    ),
    "renew": (
        *_EVERY_ROUTE,
        *_FAULTS,
        e.BadInputError,
        e.RenewalCodeError,
        e.RateLimitedError,
        e.ActivationSupersededError,
        e.ActivationNotFoundError,
        e.WrongServerError,
        e.LicenseNotFoundError,
        e.LicenseRevokedError,
        e.LicenseExpiredError,
        e.ProductMismatchError,
    ),
    "revocations": (
        *_EVERY_ROUTE,
        *_FAULTS,
        e.BadInputError,
        e.RateLimitedError,
        e.RevocationListTooLargeError,
    ),
}


def create_app(config: ServerConfig, passphrase: bytes | None = None) -> FastAPI:
    """Build the license server app.

    Args:
        config: the server's settings.
        passphrase: of the signing key, when it is encrypted.
    """
    iss = Issuer(
        config.ledger,
        config.keys,
        passphrase=passphrase,
        actor="server",
        config=IssuerConfig(rate_limit=config.rate_limit()),
    )
    proxies = parse_proxies(config.trusted_proxies)
    list_rate = config.revocations_rate()
    warned: list[object] = [None]  # the last list whose size was warned about
    app = problems.new_app("licet license server")

    def caller(request: Request) -> str:
        return problems.client_of(request, proxies)

    @app.exception_handler(LicenseError)
    async def on_license_error(request: Request, err: LicenseError) -> JSONResponse:
        return problems.problem_for(err)

    @app.exception_handler(RequestValidationError)
    async def on_invalid(request: Request, err: RequestValidationError) -> JSONResponse:
        return problems.invalid_request(err)

    @app.exception_handler(StarletteHTTPException)
    async def on_http(request: Request, err: StarletteHTTPException) -> JSONResponse:
        return problems.http_refusal(request, err)

    @app.exception_handler(Exception)
    async def on_bug(request: Request, err: Exception) -> JSONResponse:
        return problems.bug_problem(err)

    def documented(name: str) -> dict[int | str, dict[str, Any]]:
        answers: dict[int | str, dict[str, Any]] = {}
        answers.update(apidoc.refusals(_DOCUMENTED[name], problems.BUG_STATUS))
        return answers

    add_health_route(app, iss, documented("health"))

    @app.post(
        "/v1/activations",
        response_model=TokenResponse,
        responses=documented("activate_manual"),
    )
    def activate_manual(body: ManualRequest, request: Request) -> TokenResponse:
        """Manual online activation: the same content as an air-gapped request code."""
        activation_request = parse_request_code(body.request_code)
        result = iss.redeem(activation_request, method="online", client=caller(request))
        setattr(request.state, LICENSE_ID, result.license_id)
        return TokenResponse(token=result.token)

    @app.post("/v1/renewals", response_model=TokenResponse, responses=documented("renew"))
    def renew(body: RenewalBody, request: Request) -> TokenResponse:
        """Renew the lease of the license's current activation (same activation id, later exp)."""
        token = iss.renew(body.renewal_code, method="online", client=caller(request))
        return TokenResponse(token=token)

    @app.get(
        "/v1/revocations",
        response_class=Response,
        responses={
            200: {
                "description": "The signed revocation list (a compact JWS); `ETag` names it.",
                "content": {"application/jwt": {}},
                "headers": {"ETag": {"schema": {"type": "string"}}},
            },
            304: {"description": "Unchanged since the list whose ETag came in If-None-Match."},
            **documented("revocations"),
        },
    )
    def revocations(
        request: Request,
        if_none_match: Annotated[str, Header(max_length=1024)] = "",
    ) -> Response:
        """The signed revocation list, as the bare compact JWS (rate limited per client)."""
        # Counted in memory, before anything else: a flood never reaches the ledger.
        list_rate.take(caller(request))
        signed = iss.signed_revocations()
        if signed.warning is not None and signed.fits and warned[0] is not signed:
            warned[0] = signed  # once per list signed, not per request
            logging.getLogger("licet.server").warning("%s", signed.warning)
        text, etag = signed.text, signed.etag
        headers = {"ETag": etag, "Cache-Control": "no-cache"}
        wanted = [t.strip() for t in if_none_match.split(",")]
        if etag in wanted or "*" in wanted:
            return Response(status_code=304, headers=headers)
        return Response(text, media_type="application/jwt", headers=headers)

    @app.post(
        "/v1/activations/auto",
        response_model=TokenResponse,
        responses=documented("activate_auto"),
    )
    def activate_auto(body: AutoRequest, request: Request) -> TokenResponse:
        """Automatic activation: the caller's address names the license; a callback proves it."""
        address = caller(request)
        fingerprint = parse_fingerprint(body.fingerprint)
        if body.identity not in IDENTITY_KINDS:
            raise e.BadInputError(f"identity must be one of {', '.join(IDENTITY_KINDS)}")

        def confirm() -> None:
            confirm_panel(
                address,
                body.callback_port,
                body.challenge_hash,
                allow_private=config.allow_private_callbacks,
                timeout=config.callback_timeout,
                max_bytes=config.callback_max_bytes,
            )

        result = iss.activate_by_address(
            address,
            product=body.product,
            fingerprint=fingerprint,
            hostname=body.hostname,
            confirm=confirm,
            identity=body.identity,
        )
        setattr(request.state, LICENSE_ID, result.license_id)
        return TokenResponse(token=result.token)

    problems.install_problem_pages(app)
    description = (
        "Refusals are RFC 9457 problem documents (application/problem+json); "
        f"each `type` is a page under {apidoc.PROBLEMS_PATH}."
    )
    app.openapi = lambda: problems.openapi_document(app, description)  # type: ignore[method-assign]
    return app


def add_health_route(app: FastAPI, iss: Issuer, responses: dict[int | str, dict[str, Any]]) -> None:
    """``GET /v1/health``: 200 when this node can write its ledger, else 503 ``ledger-unavailable``.

    A load balancer's check (``deploy/ha/haproxy.cfg``): a node whose
    database is away or read-only is routed around. One query per check.
    """

    @app.get("/v1/health", response_model=HealthResponse, responses=responses)
    def health() -> HealthResponse:
        """The server is up and can write its ledger now; names the provider."""
        # A worker thread, not the event loop: the ledger's check may wait on the database.
        iss.check_ledger()
        return HealthResponse(status="ok", provider=iss.provider, ledger="ok")


def app_from_environment() -> Any:
    """The app of one uvicorn worker, configured by ``issuer serve`` through the environment."""
    raw = json.loads(os.environ[_CONFIG_ENV])
    raw["trusted_proxies"] = tuple(raw.get("trusted_proxies", ()))
    config = ServerConfig(**raw)
    problems.log_to_stderr()
    app = create_app(config, read_passphrase(None))
    paths = {route.path for route in app.routes if hasattr(route, "path")}
    proxies = parse_proxies(config.trusted_proxies)
    # Outermost, so that requests refused for their size are logged too; every
    # line names the client by the rule the routes use, not the proxy.
    return log_requests(
        limit_body(app, config.max_body_bytes, config.max_header_bytes),
        paths=paths,
        stream=sys.stderr,
        client=lambda scope: problems.client_of(Request(scope), proxies),
    )


def serve(
    config: ServerConfig,
    *,
    host: str,
    port: int,
    workers: int = 1,
    passphrase_file: Path | None = None,
    on_listening: Callable[[str], None] | None = None,
) -> None:
    """Run the license server with uvicorn (blocks).

    Args:
        config: the server's settings.
        host: address to listen on (``::`` listens on IPv6 and IPv4).
        port: port to listen on.
        workers: worker processes.
        passphrase_file: file holding the signing key's passphrase.
        on_listening: called with the server's URL once the socket listens.

    Raises:
        ListenError: the port is busy or the address cannot be used.
        LicenseError: the ledger or the signing key cannot be used.
    """
    if passphrase_file is not None:  # workers read it from there, never from argv
        os.environ[PASSPHRASE_FILE_ENV] = str(passphrase_file.resolve())
    # Fail fast, with the library's message, before any worker starts.
    Issuer(config.ledger, config.keys, passphrase=read_passphrase(None)).signing_key_id()
    os.environ[_CONFIG_ENV] = json.dumps(dataclasses.asdict(config))
    DeadlineProtocol.receive_timeout = config.receive_timeout
    sock = listen(host, port)
    uv_config = uvicorn.Config(
        "issuer.web.license_server:app_from_environment",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        http=DeadlineProtocol,
        h11_max_incomplete_event_size=config.max_header_bytes,
        proxy_headers=False,  # the app decides which proxies it trusts
        server_header=False,
        timeout_keep_alive=5,
        timeout_graceful_shutdown=SHUTDOWN_GRACE,
        log_level="warning",
        access_log=False,  # issuer.web.requestlog logs each request, without keys or tokens
    )
    if on_listening is not None:
        shown = f"[{host}]" if ":" in host else host
        on_listening(f"http://{shown}:{port}")
    try:
        if workers > 1:
            Multiprocess(uv_config, sockets=[sock]).run()
        else:
            uvicorn.Server(uv_config).run(sockets=[sock])
    except KeyboardInterrupt:
        pass
    finally:
        sock.close()
