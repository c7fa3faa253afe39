"""``issuer serve``: the license server for online manual and automatic activation.

A FastAPI app over the same ledger and the same activation function as the
CLI (the ``server`` extra; h11, under uvicorn, also speaks the callback's
HTTP). Its refusals and their documentation are shared with the console
(:mod:`issuer.httpapi`).

Endpoints (JSON; OpenAPI at ``/openapi.json``)::

    POST /v1/activations       {"request_code"}                         manual online
    POST /v1/activations/auto  {"product", "fingerprint", "callback_port",
                                "challenge_hash", "hostname"}           automatic
    POST /v1/renewals          {"renewal_code"}                         lease renewal
    GET  /v1/revocations       the signed revocation list (application/jwt, ETag),
                               answered from memory while the ledger's serial stays
                               the same, rate limited per client (429)
    GET  /v1/health
    GET  /problems, /problems/{code}                                   what each code means

Every refusal is ``application/problem+json`` (RFC 9457) carrying the
library's stable ``code``, and the OpenAPI document lists, per operation and
status, the codes it may answer (built by :mod:`issuer.apidoc` from the error
classes each route declares); request bodies refuse unknown members. For
failures on the provider's side (ledger, keys, a bug) the detail is generic,
with an incident id, and the real one goes to the log. Every request is
logged on stderr as one JSON line (:mod:`issuer.requestlog`), without keys or
tokens.

Automatic activation trusts only the TCP peer address (or, behind trusted
proxies, the right-most X-Forwarded-For hop that is not one of them, every
header line read in order as one list) — never an address in the body. It
calls the panel back on that address under one deadline, expects the
challenge whose SHA-256 came with the request, and only then activates.
Routes call the :class:`~issuer.service.Issuer` façade only.

Example:
    $ issuer serve --host 0.0.0.0 --port 8443 --workers 2
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import json
import logging
import os
import re
import socket
import sys
import time
from collections.abc import Awaitable, Callable, MutableMapping
from pathlib import Path
from typing import Annotated, Any, Literal

import h11
import uvicorn
from fastapi import FastAPI, Header, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException as StarletteHTTPException
from uvicorn.protocols.http.h11_impl import H11Protocol
from uvicorn.supervisors import Multiprocess

from issuer import apidoc, httpapi
from issuer.addresses import callback_allowed, parse_proxies
from issuer.errors import ListenError
from issuer.httpapi import problem
from issuer.ratelimit import RateLimit, RequestRate
from issuer.requestlog import LICENSE_ID, log_requests
from issuer.service import NAME_PATTERN, Issuer, IssuerConfig
from keytool.passphrase import PASSPHRASE_FILE_ENV, read_passphrase
from verifier import errors as e
from verifier.claims import IDENTITY_HARDWARE, IDENTITY_KINDS
from verifier.client import CHALLENGE_PATH
from verifier.errors import CallbackError, LicenseError
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

__all__ = ["ServerConfig", "create_app", "serve"]

_CONFIG_ENV = "LICET_SERVE_CONFIG"  # hand-off from `issuer serve` to its worker processes
_MAX_CALLBACK_HEADERS = 8 * 1024
ASGIApp = Callable[
    [MutableMapping[str, Any], Callable[[], Awaitable[Any]], Callable[[Any], Awaitable[None]]],
    Awaitable[None],
]


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


# On SIGTERM, requests in progress get this long to finish before the process exits.
# Without it, one idle TLS keep-alive connection (every browser keeps one open) holds
# the exit for asyncio's 30-second TLS shut-down, and a restart hangs that long.
SHUTDOWN_GRACE = 5  # seconds, whole: uvicorn takes an int


class DeadlineProtocol(H11Protocol):
    """uvicorn's h11 protocol with a deadline for receiving each whole request.

    uvicorn has no such timeout: its keep-alive timer restarts with every byte,
    so a client trickling a request (slowloris) would hold a connection for
    ever. ASGI middleware cannot help: it runs only once the headers are in.
    """

    receive_timeout = 10.0

    def connection_made(self, transport: Any) -> None:
        super().connection_made(transport)
        self._arm_deadline()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._arm_deadline()

    def connection_lost(self, exc: Exception | None) -> None:
        deadline = getattr(self, "_deadline", None)
        if deadline is not None:
            deadline.cancel()
        super().connection_lost(exc)

    def _arm_deadline(self) -> None:
        deadline = getattr(self, "_deadline", None)
        if deadline is not None:
            deadline.cancel()
        self._deadline = self.loop.call_later(self.receive_timeout, self._on_deadline)

    def _on_deadline(self) -> None:
        # IDLE: the request line or headers never completed; SEND_BODY: the body did not.
        if self.conn.their_state in (h11.IDLE, h11.SEND_BODY) and not self.transport.is_closing():
            self.transport.close()


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
    """The server is up, and whose it is."""

    status: Literal["ok"]
    provider: str


_EVERY_ROUTE = httpapi.EVERY_ROUTE
#: The provider's own faults (503, generic detail and an incident id).
_FAULTS: tuple[type[LicenseError], ...] = (
    *httpapi.LEDGER_FAULTS,
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
    "health": _EVERY_ROUTE,
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


def fetch_challenge(address: str, port: int, config: ServerConfig) -> bytes:
    """Ask the panel at ``address:port`` for its challenge, within tight bounds.

    One deadline (``callback_timeout``) covers the whole exchange — connect,
    request, status line, headers and body — so a panel trickling its answer
    a byte at a time holds a server thread no longer than that. Redirects are
    not followed; headers over 8 KiB and bodies over ``callback_max_bytes``
    are refused.

    Raises:
        CallbackError: unreachable, slow, redirected, not 200, not HTTP, or too large.
    """
    where = f"{address}:{port}"
    deadline = time.monotonic() + config.callback_timeout

    def remaining() -> float:
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError
        return left

    host = f"[{address}]" if ":" in address else address
    conn = h11.Connection(h11.CLIENT, max_incomplete_event_size=_MAX_CALLBACK_HEADERS)
    request = h11.Request(
        method="GET",
        target=CHALLENGE_PATH,
        headers=[("Host", f"{host}:{port}"), ("Connection", "close"), ("Accept", "text/plain")],
    )
    body = b""
    try:
        with socket.create_connection((address, port), timeout=remaining()) as sock:
            sock.settimeout(remaining())
            sock.sendall(conn.send(request) + conn.send(h11.EndOfMessage()))
            while True:
                event = conn.next_event()
                if event is h11.NEED_DATA:
                    sock.settimeout(remaining())
                    conn.receive_data(sock.recv(4096))
                elif isinstance(event, h11.Response):
                    if event.status_code != 200:
                        raise CallbackError(
                            f"the panel at {where} answered the callback with "
                            f"HTTP {event.status_code}"
                        )
                elif isinstance(event, h11.Data):
                    body += event.data
                    if len(body) > config.callback_max_bytes:
                        raise CallbackError("the panel's callback answer is too large")
                elif isinstance(event, h11.EndOfMessage | h11.ConnectionClosed):
                    break
    except TimeoutError as err:
        raise CallbackError(
            f"the panel at {where} did not answer the callback within {config.callback_timeout:g} s"
        ) from err
    except h11.RemoteProtocolError as err:
        raise CallbackError(f"the panel at {where} answered the callback with non-HTTP") from err
    except OSError as err:
        raise CallbackError(
            f"the license server could not reach the panel at {where} ({err.strerror or err})"
        ) from err
    return body


def _limit_body(app: ASGIApp, max_bytes: int, max_header_bytes: int) -> ASGIApp:
    """ASGI middleware: 431 for oversized headers, 413 for bodies over ``max_bytes``."""

    async def limited(scope: MutableMapping[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await app(scope, receive, send)
            return
        headers = scope.get("headers") or []
        if sum(len(name) + len(value) + 4 for name, value in headers) > max_header_bytes:
            too_long = problem(
                431,
                e.HeadersTooLargeError.code,
                f"request headers are larger than {max_header_bytes} bytes",
            )
            await too_long(scope, receive, send)
            return
        encoding = dict(headers).get(b"content-encoding", b"identity").strip().lower()
        if encoding not in (b"", b"identity"):
            refused = problem(
                422, e.BadInputError.code, "request bodies must be plain JSON, not encoded"
            )
            await refused(scope, receive, send)
            return
        declared = dict(headers).get(b"content-length")
        too_big = problem(
            413, e.BodyTooLargeError.code, f"request body is larger than {max_bytes} bytes"
        )
        if declared is not None and (not declared.isdigit() or int(declared) > max_bytes):
            await too_big(scope, receive, send)
            return
        # Bodies are small: read the whole body here (FastAPI would turn an error
        # raised while it reads into a 400), then hand it to the app in one piece.
        body = b""
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return  # the client went away
            body += message.get("body", b"")
            if len(body) > max_bytes:
                await too_big(scope, receive, send)
                return
            if not message.get("more_body", False):
                break
        delivered = False

        async def replay() -> Any:
            nonlocal delivered
            if not delivered:
                delivered = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await app(scope, replay, send)

    return limited


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
    app = httpapi.new_app("licet license server")

    def caller(request: Request) -> str:
        return httpapi.client_of(request, proxies)

    @app.exception_handler(LicenseError)
    async def on_license_error(request: Request, err: LicenseError) -> JSONResponse:
        return httpapi.problem_for(err)

    @app.exception_handler(RequestValidationError)
    async def on_invalid(request: Request, err: RequestValidationError) -> JSONResponse:
        return httpapi.invalid_request(err)

    @app.exception_handler(StarletteHTTPException)
    async def on_http(request: Request, err: StarletteHTTPException) -> JSONResponse:
        return httpapi.http_refusal(request, err)

    @app.exception_handler(Exception)
    async def on_bug(request: Request, err: Exception) -> JSONResponse:
        return httpapi.bug_problem(err)

    def documented(name: str) -> dict[int | str, dict[str, Any]]:
        answers: dict[int | str, dict[str, Any]] = {}
        answers.update(apidoc.refusals(_DOCUMENTED[name], httpapi.BUG_STATUS))
        return answers

    @app.get(
        "/v1/health",
        response_model=HealthResponse,
        responses=documented("health"),
    )
    async def health() -> HealthResponse:
        """The server is up; names the provider."""
        # async: answered on the event loop, never queued behind busy worker threads
        return HealthResponse(status="ok", provider=iss.provider)

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
            if not callback_allowed(address, config.allow_private_callbacks):
                raise CallbackError(
                    f"callbacks to the private address {address} are disabled on this server"
                )
            answer = fetch_challenge(address, body.callback_port, config)
            digest = hashlib.sha256(answer.strip()).hexdigest()
            if not hmac.compare_digest(digest, body.challenge_hash):
                raise CallbackError("the panel answered the callback with the wrong challenge")

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

    httpapi.install_problem_pages(app)
    description = (
        "Refusals are RFC 9457 problem documents (application/problem+json); "
        f"each `type` is a page under {apidoc.PROBLEMS_PATH}."
    )
    app.openapi = lambda: httpapi.openapi_document(app, description)  # type: ignore[method-assign]
    return app


def app_from_environment() -> Any:
    """The app of one uvicorn worker, configured by ``issuer serve`` through the environment."""
    raw = json.loads(os.environ[_CONFIG_ENV])
    raw["trusted_proxies"] = tuple(raw.get("trusted_proxies", ()))
    config = ServerConfig(**raw)
    httpapi.log_to_stderr()
    app = create_app(config, read_passphrase(None))
    paths = {route.path for route in app.routes if hasattr(route, "path")}
    proxies = parse_proxies(config.trusted_proxies)
    # Outermost, so that requests refused for their size are logged too; every
    # line names the client by the rule the routes use, not the proxy.
    return log_requests(
        _limit_body(app, config.max_body_bytes, config.max_header_bytes),
        paths=paths,
        stream=sys.stderr,
        client=lambda scope: httpapi.client_of(Request(scope), proxies),
    )


def _listen(host: str, port: int) -> socket.socket:
    """Bind and listen now, so a busy port is a refusal before anything is announced.

    Raises:
        ListenError: the address is busy, not local, or not allowed.
    """
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
        family, kind, proto, _, address = infos[0]
        sock = socket.socket(family, kind, proto)
    except (OSError, IndexError) as err:
        raise ListenError(f"cannot listen on {host}:{port}: {err}") from None
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)  # IPv4 clients too
        sock.bind(address)
        sock.listen(2048)
    except OSError as err:
        sock.close()
        raise ListenError(f"cannot listen on {host}:{port}: {err.strerror or err}") from None
    sock.set_inheritable(True)  # worker processes serve this same socket
    return sock


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
    sock = _listen(host, port)
    uv_config = uvicorn.Config(
        "issuer.server:app_from_environment",
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
        access_log=False,  # issuer.requestlog logs each request, without keys or tokens
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
