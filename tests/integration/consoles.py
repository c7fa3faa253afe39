"""A real `issuer console` in a subprocess, and the accounts it needs (made with the real CLI)."""

from __future__ import annotations

import contextlib
import http.client
import json
import ssl
import urllib.request
from pathlib import Path
from typing import Any

import timecheck
from clirun import cli, script
from servers import ServedProcess, free_port

PASSWORD = "correct horse battery staple"


class ConsoleServer(ServedProcess):
    """`issuer console` on 127.0.0.1, started from the installed console script."""

    def __init__(self, home: Path, *args: str, context: ssl.SSLContext | None = None) -> None:
        self.port = free_port()
        self.url = f"{'https' if context else 'http'}://127.0.0.1:{self.port}"
        argv = [script("issuer"), "console", "--host", "127.0.0.1", "--port", str(self.port), *args]
        super().__init__(argv, cwd=home, probe_url=self.url + "/openapi.json", context=context)


def add_user(home: Path, name: str, password: str = PASSWORD) -> None:
    cli("issuer", "admin", "user", "add", name, cwd=home, input=password + "\n")


def make_token(home: Path, name: str, scope: str) -> str:
    out = cli("issuer", "admin", "token", "create", name, "--scope", scope, "--json", cwd=home).stdout
    token = json.loads(out)["token"]
    assert isinstance(token, str)
    return token


def license_files(home: Path) -> dict[str, bytes]:
    """The bytes of every license, index and audit-log file: what a refused change must not touch."""
    ledger = home / "ledger"
    return {
        str(p.relative_to(ledger)): p.read_bytes()
        for kind in ("licenses", "keys", "ips", "index", "events")
        for p in sorted((ledger / kind).glob("*.json"))
    }


def api(url: str, method: str, path: str, token: str | None, body: Any = None, raw: bytes | None = None,
        content_type: str = "application/json") -> tuple[int, dict[str, str], Any]:
    """One admin API call with urllib: (status, headers, parsed JSON body)."""
    data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
    request = urllib.request.Request(url + path, data=data, method=method)
    if data is not None:
        request.add_header("Content-Type", content_type)
    if token is not None:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            answer = response.status, dict(response.headers), json.loads(response.read() or b"null")
    except urllib.error.HTTPError as err:
        answer = err.code, dict(err.headers), json.loads(err.read() or b"null")
    timecheck.collect(f"{method} {path}", answer[2])
    return answer


def post_huge(url: str, path: str, token: str, body: bytes) -> tuple[int, dict[str, str], Any]:
    """POST a body the server refuses before reading it all: it may hang up mid-send, which is fine."""
    host, port = url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    conn.putrequest("POST", path)
    conn.putheader("Authorization", f"Bearer {token}")
    conn.putheader("Content-Type", "application/json")
    conn.putheader("Content-Length", str(len(body)))
    conn.endheaders()
    with contextlib.suppress(BrokenPipeError, ConnectionResetError):
        for start in range(0, len(body), 65536):
            conn.send(body[start:start + 65536])
    response = conn.getresponse()
    try:
        return response.status, {k.lower(): v for k, v in response.getheaders()}, json.loads(response.read())
    finally:
        conn.close()
