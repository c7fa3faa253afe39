"""``issuer serve``: the license server for online manual and automatic activation.

A FastAPI app over the same ledger and the same activation function as the
CLI. The only module of licet that imports fastapi, uvicorn (and its h11) or httpx (the
``server`` extra).

Endpoints (JSON; OpenAPI at ``/openapi.json``)::

    POST /v1/activations       {"request_code"}                         manual online
    POST /v1/activations/auto  {"product", "fingerprint", "callback_port",
                                "challenge_hash", "hostname"}           automatic
    GET  /v1/health

Every refusal is ``application/problem+json`` (RFC 9457) carrying the
library's stable ``code``. Every request is logged on stderr as one JSON line
(:mod:`issuer.requestlog`), without keys or tokens.

Automatic activation trusts only the TCP peer address (or, behind a
configured trusted proxy, the address that proxy appended to
X-Forwarded-For) — never an address in the body. It calls the panel back on
that address, expects the challenge whose SHA-256 came with the request, and
only then activates.

Example:
    $ issuer serve --host 0.0.0.0 --port 8443 --workers 2
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import ipaddress
import json
import os
import socket
import sys
import time
from collections.abc import Awaitable, Callable, MutableMapping
from pathlib import Path
from typing import Annotated, Any

import h11
import httpx
import uvicorn
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException as StarletteHTTPException
from uvicorn.protocols.http.h11_impl import H11Protocol

from issuer.ratelimit import FailureLimiter
from issuer.requestlog import CLIENT, LICENSE_ID, log_requests
from issuer.service import Issuer
from keytool.passphrase import PASSPHRASE_FILE_ENV, read_passphrase
from verifier.client import CHALLENGE_PATH
from verifier.errors import (
    CallbackError,
    InvalidActivationKeyError,
    LicenseError,
    NoLicenseForAddressError,
)
from verifier.fingerprint import parse_fingerprint
from verifier.request import MAX_REQUEST_CODE, parse_request_code

__all__ = ["ServerConfig", "create_app", "serve"]

_CONFIG_ENV = "LICET_SERVE_CONFIG"  # hand-off from `issuer serve` to its worker processes
ASGIApp = Callable[
    [MutableMapping[str, Any], Callable[[], Awaitable[Any]], Callable[[Any], Awaitable[None]]],
    Awaitable[None],
]


@dataclasses.dataclass(frozen=True)
class ServerConfig:
    """How the license server runs.

    Attributes:
        ledger: the ledger folder.
        keys: the keys folder.
        allow_private_callbacks: let automatic activation call back loopback
            and private addresses (tests, intranets); off by default.
        trusted_proxies: peers whose X-Forwarded-For is believed.
        max_body_bytes: request bodies larger than this are refused (default 16 KiB).
        callback_timeout: seconds for the whole back-request (default 5).
        callback_max_bytes: largest callback answer read (default 1 KiB).
        failure_limit: failed key attempts per address per 15 minutes (default 10).
        receive_timeout: seconds a client has to send a whole request, headers
            and body (default 10); slower connections are closed.
        max_header_bytes: request headers larger than this are refused (default 16 KiB).
    """

    ledger: str
    keys: str
    allow_private_callbacks: bool = False
    trusted_proxies: tuple[str, ...] = ()
    max_body_bytes: int = 16 * 1024
    callback_timeout: float = 5.0
    callback_max_bytes: int = 1024
    failure_limit: int = 10
    receive_timeout: float = 10.0
    max_header_bytes: int = 16 * 1024


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


class ManualRequest(BaseModel):
    """Body of ``POST /v1/activations``."""

    model_config = ConfigDict(strict=True, extra="ignore")
    request_code: Annotated[str, Field(min_length=1, max_length=MAX_REQUEST_CODE)]


class AutoRequest(BaseModel):
    """Body of ``POST /v1/activations/auto``. Any address in it is ignored."""

    model_config = ConfigDict(strict=True, extra="ignore")
    product: Annotated[str, Field(min_length=1, max_length=64)]
    fingerprint: Annotated[list[str], Field(min_length=1, max_length=10)]
    callback_port: Annotated[int, Field(ge=1, le=65535)]
    challenge_hash: Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]
    hostname: Annotated[str, Field(max_length=253)] = ""


class TokenResponse(BaseModel):
    """A successful activation."""

    token: str


def problem(status: int, code: str, detail: str, **extra: Any) -> JSONResponse:
    """An RFC 9457 problem document."""
    body = {"type": f"urn:licet:problem:{code}", "title": code.replace("-", " "), "status": status}
    body.update({"detail": detail, "code": code, **extra})
    return JSONResponse(body, status_code=status, media_type="application/problem+json")


def _problem_for(err: LicenseError) -> JSONResponse:
    return problem(err.http_status, err.code, err.message, **err.details())


def client_address(request: Request, trusted_proxies: tuple[str, ...]) -> str:
    """The caller's address: the TCP peer, or what a trusted proxy says it forwarded."""
    peer = request.client.host if request.client else ""
    if peer in trusted_proxies:
        forwarded = request.headers.get("x-forwarded-for", "")
        hops = [h.strip() for h in forwarded.split(",") if h.strip()]
        if hops:
            try:
                return str(ipaddress.ip_address(hops[-1]))  # the hop the proxy itself added
            except ValueError:
                pass
    return peer


def callback_allowed(address: str, allow_private: bool) -> bool:
    """Whether a back-request may go to ``address``: public addresses only, unless allowed."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if ip.is_unspecified or ip.is_multicast:
        return False
    return allow_private or ip.is_global


def fetch_challenge(address: str, port: int, config: ServerConfig) -> bytes:
    """Ask the panel at ``address:port`` for its challenge, within tight bounds.

    Raises:
        CallbackError: unreachable, slow, redirected, not 200, or too large.
    """
    host = f"[{address}]" if ":" in address else address
    url = f"http://{host}:{port}{CHALLENGE_PATH}"
    deadline = time.monotonic() + config.callback_timeout
    body = b""
    try:
        with (
            httpx.Client(
                follow_redirects=False, trust_env=False, timeout=config.callback_timeout
            ) as client,
            client.stream("GET", url) as response,
        ):
            if response.status_code != 200:
                raise CallbackError(
                    f"the panel at {address}:{port} answered the callback with "
                    f"HTTP {response.status_code}"
                )
            for chunk in response.iter_raw():
                body += chunk
                if len(body) > config.callback_max_bytes:
                    raise CallbackError("the panel's callback answer is too large")
                if time.monotonic() > deadline:
                    raise CallbackError("the panel's callback answer is too slow")
    except httpx.HTTPError as err:
        raise CallbackError(
            f"the license server could not reach the panel at {address}:{port} "
            f"({type(err).__name__})"
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
                "headers-too-large",
                f"request headers are larger than {max_header_bytes} bytes",
            )
            await too_long(scope, receive, send)
            return
        declared = dict(headers).get(b"content-length")
        too_big = problem(413, "body-too-large", f"request body is larger than {max_bytes} bytes")
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
    iss = Issuer(config.ledger, config.keys, passphrase=passphrase, actor="server")
    limiter = FailureLimiter(Path(config.ledger) / "ratelimit.json", limit=config.failure_limit)
    app = FastAPI(title="licet license server", version="1", docs_url=None, redoc_url=None)

    @app.exception_handler(LicenseError)
    async def on_license_error(request: Request, err: LicenseError) -> JSONResponse:
        return _problem_for(err)

    @app.exception_handler(RequestValidationError)
    async def on_invalid(request: Request, err: RequestValidationError) -> JSONResponse:
        first = err.errors()[0] if err.errors() else {}
        where = ".".join(str(part) for part in first.get("loc", ()) if part != "body")
        detail = (
            f"{where}: {first.get('msg', 'invalid')}"
            if where
            else str(first.get("msg", "invalid body"))
        )
        return problem(422, "bad-input", f"invalid request body — {detail}")

    @app.exception_handler(StarletteHTTPException)
    async def on_http(request: Request, err: StarletteHTTPException) -> JSONResponse:
        code = {404: "not-found", 405: "method-not-allowed"}.get(err.status_code, "http-error")
        return problem(err.status_code, code, str(err.detail))

    @app.get("/v1/health")
    def health() -> dict[str, str]:
        return {"status": "ok", "provider": iss.provider}

    @app.post("/v1/activations", response_model=TokenResponse)
    def activate_manual(body: ManualRequest, request: Request) -> TokenResponse:
        """Manual online activation: the same content as an air-gapped request code."""
        address = client_address(request, config.trusted_proxies)
        setattr(request.state, CLIENT, address)
        limiter.check(address)
        activation_request = parse_request_code(body.request_code)
        try:
            result = iss.redeem(activation_request, method="online")
        except InvalidActivationKeyError:
            limiter.record_failure(address)
            raise
        setattr(request.state, LICENSE_ID, result.license_id)
        return TokenResponse(token=result.token)

    @app.post("/v1/activations/auto", response_model=TokenResponse)
    def activate_auto(body: AutoRequest, request: Request) -> TokenResponse:
        """Automatic activation: the caller's address names the license; a callback proves it."""
        address = client_address(request, config.trusted_proxies)
        setattr(request.state, CLIENT, address)
        fingerprint = parse_fingerprint(body.fingerprint)
        assigned = iss.ledger.licenses_for_ip(address) if address else []
        candidates = [r.license_id for r in assigned if r.product == body.product]
        if not candidates:
            raise NoLicenseForAddressError(
                f"no {body.product} license is assigned to {address} — activate manually with a key"
            )
        if not callback_allowed(address, config.allow_private_callbacks):
            raise CallbackError(
                f"callbacks to the private address {address} are disabled on this server"
            )
        answer = fetch_challenge(address, body.callback_port, config)
        digest = hashlib.sha256(answer.strip()).hexdigest()
        if not hmac.compare_digest(digest, body.challenge_hash):
            raise CallbackError("the panel answered the callback with the wrong challenge")
        last_error: LicenseError = NoLicenseForAddressError()
        for license_id in candidates:
            setattr(request.state, LICENSE_ID, license_id)
            try:
                result = iss.redeem_for_license(
                    license_id,
                    product=body.product,
                    fingerprint=fingerprint,
                    hostname=body.hostname,
                    method="automatic",
                )
                return TokenResponse(token=result.token)
            except LicenseError as err:  # try the next license on this address
                last_error = err
        raise last_error

    return app


def app_from_environment() -> Any:
    """The app of one uvicorn worker, configured by ``issuer serve`` through the environment."""
    raw = json.loads(os.environ[_CONFIG_ENV])
    raw["trusted_proxies"] = tuple(raw.get("trusted_proxies", ()))
    config = ServerConfig(**raw)
    app = create_app(config, read_passphrase(None))
    paths = {route.path for route in app.routes if hasattr(route, "path")}
    # Outermost, so that requests refused for their size are logged too.
    return log_requests(
        _limit_body(app, config.max_body_bytes, config.max_header_bytes),
        paths=paths,
        stream=sys.stderr,
    )


def serve(
    config: ServerConfig,
    *,
    host: str,
    port: int,
    workers: int = 1,
    passphrase_file: Path | None = None,
    on_listening: Callable[[], None] | None = None,
) -> None:
    """Run the license server with uvicorn (blocks).

    Args:
        config: the server's settings.
        host: address to listen on.
        port: port to listen on.
        workers: uvicorn worker processes.
        passphrase_file: of the signing key, when it is encrypted.
        on_listening: called once the socket listens (connections queue from
            then on), before the workers start: the place for a banner that
            must not appear when the server cannot start.

    Raises:
        LicenseError: the address cannot be bound (in use, not local, no permission).
    """
    if passphrase_file is not None:  # workers read it from there, never from argv
        os.environ[PASSPHRASE_FILE_ENV] = str(passphrase_file.resolve())
    # Fail fast, with the library's message, before any worker starts.
    Issuer(config.ledger, config.keys, passphrase=read_passphrase(None)).signing_key_id()
    os.environ[_CONFIG_ENV] = json.dumps(dataclasses.asdict(config))
    DeadlineProtocol.receive_timeout = config.receive_timeout
    sock = _listen(host, port)
    if on_listening is not None:
        on_listening()
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
        log_level="warning",
        access_log=False,  # issuer.requestlog logs each request, without keys or tokens
    )
    server = uvicorn.Server(uv_config)
    if workers > 1:
        from uvicorn.supervisors import Multiprocess

        Multiprocess(uv_config, sockets=[sock]).run()
    else:
        server.run(sockets=[sock])
    if not server.started and workers == 1:
        raise LicenseError(f"the license server on {host}:{port} did not start (see above)")


def _listen(host: str, port: int) -> socket.socket:
    """Bind and listen the way uvicorn would, but report a failure as one line."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
        sock.listen(2048)
    except OSError as err:
        sock.close()
        raise LicenseError(f"cannot listen on {host}:{port}: {err.strerror or err}") from err
    sock.set_inheritable(True)
    return sock
