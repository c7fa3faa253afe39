"""The ``issuer console`` application: pages, admin API, errors, limits, and how it runs.

The console is a separate process from ``issuer serve`` over the same ledger.
It binds to loopback unless told otherwise; any other address needs TLS
(``--tls-cert``/``--tls-key``) or an explicit ``--allow-plain-http`` for a
TLS-terminating proxy, because it carries passwords, session cookies and
activation keys. Behind such a proxy (``--trusted-proxy``) the client address
that login limits count is taken from ``X-Forwarded-For`` by the license
server's rule (:func:`issuer.web.problems.client_of`).

Example:
    >>> app = create_console_app(ConsoleConfig(ledger="ledger", keys="keys"))  # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
import ipaddress
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import uvicorn
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.staticfiles import StaticFiles

from issuer.addresses import parse_proxies
from issuer.facade import Issuer
from issuer.web import (
    admin_api,
    admin_webhooks,
    apidoc,
    console_pages,
    console_webhooks,
    problems,
)
from issuer.web.plumbing import SHUTDOWN_GRACE, DeadlineProtocol, limit_body, listen
from keytool.passphrase import read_passphrase
from verifier.clock import Clock, utc_now
from verifier.errors import BadInputError, LicenseError

__all__ = ["ConsoleConfig", "check_bind", "create_console_app", "serve_console"]

_DESCRIPTION = (
    "Admin REST API under /v1/admin/ (Bearer token: read scope for GET and HEAD, without "
    "activation keys; keys scope for GET and HEAD with them; write scope for the rest). "
    "Refusals are RFC 9457 problem documents "
    "(application/problem+json) with a stable `code`; each `type` is a page under "
    f"{apidoc.PROBLEMS_PATH}. The HTML console pages are not part of this document."
)
_CONFIG_ENV = "LICET_CONSOLE_CONFIG"  # hand-off from `issuer console` to the uvicorn app factory
_SECURITY_HEADERS = {
    "content-security-policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
        "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
    "cache-control": "no-store",
}


@dataclasses.dataclass(frozen=True)
class ConsoleConfig:
    """How the console runs.

    Attributes:
        ledger: the ledger folder.
        keys: the keys folder.
        secure_cookies: mark the session cookie ``Secure`` (on under TLS, and
            behind a TLS-terminating proxy).
        max_body_bytes: request bodies larger than this are refused (default 64 KiB).
        max_header_bytes: request headers larger than this are refused (default 16 KiB).
        receive_timeout: seconds a client has to send a whole request (default 10).
        page_size: licenses per list page (default 50).
        trusted_proxies: addresses or networks of proxies whose
            X-Forwarded-For hops are believed (all lines, walked from the right);
            default none.

    Raises:
        BadInputError: a trusted proxy that is not an address or network.
    """

    ledger: str
    keys: str
    secure_cookies: bool = False
    max_body_bytes: int = 64 * 1024
    max_header_bytes: int = 16 * 1024
    receive_timeout: float = 10.0
    page_size: int = 50
    trusted_proxies: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        parse_proxies(self.trusted_proxies)


def check_bind(host: str, *, tls: bool, allow_plain_http: bool) -> None:
    """Refuse to serve passwords and keys in clear text beyond this machine.

    Raises:
        BadInputError: a non-loopback address without TLS or ``--allow-plain-http``.
    """
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = host == "localhost"
    if not loopback and not tls and not allow_plain_http:
        raise BadInputError(
            f"refusing to serve the console on {host} without TLS — give --tls-cert and "
            "--tls-key, or --allow-plain-http behind a TLS-terminating proxy"
        )


def create_console_app(
    config: ConsoleConfig, *, clock: Clock = utc_now, issuer: Issuer | None = None
) -> FastAPI:
    """Build the console app (pages and admin API).

    Args:
        config: the console's settings.
        clock: time source (sessions, login limits, license dates).
        issuer: an issuer to use instead of opening ``config.ledger`` (tests).
    """
    iss = issuer or Issuer(
        config.ledger,
        config.keys,
        clock=clock,
        # The revocation list download signs: an encrypted key's passphrase comes
        # from LICET_KEY_PASSPHRASE[_FILE], never from the command line.
        passphrase=read_passphrase(None),
        actor="console",
    )
    app = problems.new_app("licet provider console and admin API")
    app.state.issuer = iss
    app.state.config = config
    app.state.proxies = parse_proxies(config.trusted_proxies)

    def wants_problem(request: Request) -> bool:
        # The API and the problem pages answer problem documents; the pages, HTML.
        path = request.url.path
        return path.startswith("/v1/") or path.startswith(apidoc.PROBLEMS_PATH)

    @app.exception_handler(LicenseError)
    async def on_license_error(request: Request, err: LicenseError) -> Response:
        if wants_problem(request):
            response = problems.problem_for(err)
            if err.http_status == 401:
                response.headers["www-authenticate"] = "Bearer"
            return response
        return await console_pages.error_page(request, err.http_status, console_pages.said(err))

    @app.exception_handler(RequestValidationError)
    async def on_invalid(request: Request, err: RequestValidationError) -> Response:
        answer = problems.invalid_request(err)
        if wants_problem(request):
            return answer
        return await console_pages.error_page(
            request, 422, json.loads(bytes(answer.body))["detail"]
        )

    @app.exception_handler(StarletteHTTPException)
    async def on_http(request: Request, err: StarletteHTTPException) -> Response:
        if wants_problem(request):
            return problems.http_refusal(request, err)
        page = await console_pages.error_page(request, err.status_code, str(err.detail))
        page.headers.update(err.headers or {})
        if err.status_code == 405:
            page.headers["Allow"] = problems.allowed_methods(request)
        return page

    @app.exception_handler(Exception)
    async def on_bug(request: Request, err: Exception) -> Response:
        answer = problems.bug_problem(err)
        if wants_problem(request):
            return answer
        return await console_pages.error_page(
            request, 500, json.loads(bytes(answer.body))["detail"]
        )

    @app.middleware("http")
    async def security_headers(request: Request, call_next: Any) -> Response:
        response: Response = await call_next(request)
        for name, value in _SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        if config.secure_cookies:
            response.headers.setdefault("strict-transport-security", "max-age=31536000")
        return response

    app.include_router(admin_api.router)
    app.include_router(admin_webhooks.router)
    problems.install_problem_pages(app)
    console_pages.install(app)
    app.include_router(console_webhooks.router)
    app.mount("/static", StaticFiles(directory=Path(__file__).parent / "static"), name="static")
    app.openapi = lambda: problems.openapi_document(app, _DESCRIPTION)  # type: ignore[method-assign]
    return app


def app_from_environment() -> Any:
    """The app uvicorn runs, configured by ``issuer console`` through the environment."""
    raw = json.loads(os.environ[_CONFIG_ENV])
    raw["trusted_proxies"] = tuple(raw.get("trusted_proxies", ()))
    config = ConsoleConfig(**raw)
    problems.log_to_stderr()  # incidents: the client gets an id, the log the detail
    app = create_console_app(config)
    return limit_body(app, config.max_body_bytes, config.max_header_bytes)


def serve_console(
    config: ConsoleConfig,
    *,
    host: str,
    port: int,
    tls_cert: Path | None = None,
    tls_key: Path | None = None,
    on_listening: Callable[[str], None] | None = None,
) -> None:
    """Run the console with uvicorn (blocks).

    Args:
        config: the console's settings.
        host: address to listen on.
        port: port to listen on.
        tls_cert: TLS certificate (PEM), with ``tls_key``.
        tls_key: TLS private key (PEM).
        on_listening: called with the console's URL once the socket listens.

    Raises:
        ListenError: the port is busy or the address cannot be used (before
            anything is announced).
        LicenseError: the ledger cannot be used.
    """
    Issuer(config.ledger, config.keys)  # fail fast, with the library's message
    os.environ[_CONFIG_ENV] = json.dumps(dataclasses.asdict(config))
    DeadlineProtocol.receive_timeout = config.receive_timeout
    sock = listen(host, port)  # a busy port is one refusal line, never uvicorn's exit 3
    uv_config = uvicorn.Config(
        "issuer.web.console_app:app_from_environment",
        factory=True,
        host=host,
        port=port,
        http=DeadlineProtocol,
        h11_max_incomplete_event_size=config.max_header_bytes,
        proxy_headers=False,
        server_header=False,
        timeout_keep_alive=5,
        timeout_graceful_shutdown=SHUTDOWN_GRACE,
        log_level="warning",
        ssl_certfile=None if tls_cert is None else str(tls_cert),
        ssl_keyfile=None if tls_key is None else str(tls_key),
    )
    if on_listening is not None:
        shown = f"[{host}]" if ":" in host else host
        on_listening(f"{'https' if tls_cert is not None else 'http'}://{shown}:{port}")
    try:
        uvicorn.Server(uv_config).run(sockets=[sock])
    except KeyboardInterrupt:
        pass
    finally:
        sock.close()
