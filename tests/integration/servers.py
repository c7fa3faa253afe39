"""Real servers for the tests: `issuer serve` in a subprocess, Debian's HAProxy, panel callback responders."""

from __future__ import annotations

import contextlib
import http.server
import itertools
import json
import os
import queue
import random
import shutil
import socket
import ssl
import subprocess
import tempfile
import textwrap
import threading
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import timecheck
from clirun import script
from support import serve_in_background

from verifier.client import CHALLENGE_PATH, Challenge


def wait_until(condition: Callable[[], bool], deadline: float, what: str) -> None:
    """Poll ``condition`` until it holds; fail naming ``what`` after ``deadline`` seconds."""
    end = time.monotonic() + deadline
    while not condition():
        if time.monotonic() > end:
            raise AssertionError(f"waited {deadline:g} s for {what}")
        time.sleep(0.02)


def first_line(proc: subprocess.Popen[str], deadline: float) -> str:
    """The first line ``proc`` prints, waiting at most ``deadline`` seconds for it."""
    assert proc.stdout is not None
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: lines.put(proc.stdout.readline() if proc.stdout else ""), daemon=True).start()
    try:
        return lines.get(timeout=deadline)
    except queue.Empty:
        raise AssertionError(f"{proc.args[:2]} printed nothing within {deadline:g} s") from None


def _process_tree(pid: int) -> list[int]:
    pids, pending = [], [pid]
    while pending:
        current = pending.pop()
        pids.append(current)
        for task in Path(f"/proc/{current}/task").glob("*"):
            with contextlib.suppress(OSError):
                pending.extend(int(child) for child in (task / "children").read_text().split())
    return pids


def has_open(pid: int, path: Path) -> bool:
    """Whether process ``pid`` (or one of its children) has ``path`` open — e.g. is waiting for its lock."""
    target = os.path.realpath(path)
    for each in _process_tree(pid):
        for fd in Path(f"/proc/{each}/fd").glob("*"):
            with contextlib.suppress(OSError):
                if os.readlink(fd) == target:
                    return True
    return False


#: Ports handed to servers come from below Linux's ephemeral range (32768-60999), so
#: no client connection can take one between the choice and the server's bind, and
#: each pytest-xdist worker draws from its own slice, so no two workers pick alike.
_PORT_BASE, _PORT_SLICE = 20000, 1500
_next_port = itertools.count(random.randrange(_PORT_SLICE))


def post_json(url: str, body: bytes, content_type: str = "application/json") -> tuple[int, str, Any]:
    """POST to a license server: (status, content type, parsed JSON answer), refusals included.

    Every answer goes to the suite's check of times (tests/timecheck.py).
    """
    request = urllib.request.Request(url, data=body, headers={"Content-Type": content_type}, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            answer = response.status, response.headers["Content-Type"], json.loads(response.read())
    except urllib.error.HTTPError as err:
        answer = err.code, err.headers["Content-Type"], json.loads(err.read())
    timecheck.collect(f"POST {url}", answer[2])
    return answer


def free_port(host: str = "127.0.0.1") -> int:
    """A port on ``host`` that nothing listens on and that no other test worker will choose."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw")
    first = _PORT_BASE + (int(worker) % 8 if worker.isdigit() else 0) * _PORT_SLICE
    for _ in range(_PORT_SLICE):
        port = first + next(_next_port) % _PORT_SLICE
        with socket.socket() as s:
            try:
                s.bind((host, port))
            except OSError:
                continue
            return port
    raise AssertionError(f"no free port in {first}-{first + _PORT_SLICE - 1}")


class ServedProcess:
    """A server subprocess, polled until ``probe_url`` answers 200.

    Its output goes to an unnamed temporary file, never a pipe: a pipe nobody
    reads fills at 64 KiB of request log, and the server then blocks on its
    next log line and stops answering.
    """

    def __init__(
        self,
        argv: list[str],
        *,
        cwd: Path,
        probe_url: str,
        env: dict[str, str] | None = None,
        context: ssl.SSLContext | None = None,
    ) -> None:
        self.log = tempfile.TemporaryFile(mode="w+", encoding="utf-8")  # noqa: SIM115 - lives as long as the server
        self.proc = subprocess.Popen(argv, cwd=cwd, env=env, stdout=self.log, stderr=subprocess.STDOUT, text=True)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{' '.join(argv[:2])} exited: {self.output()}")
            try:
                with urllib.request.urlopen(probe_url, timeout=1, context=context) as response:
                    if response.status == 200:
                        return
            except OSError:
                # A server comes up in about half a second; a finer poll saves each test
                # part of a tenth of a second, ~80 times a run.
                time.sleep(0.02)
        self.stop()
        raise RuntimeError(f"{' '.join(argv[:2])} did not come up: {self.output()}")

    def output(self) -> str:
        """Everything the server printed so far."""
        self.log.seek(0)
        return self.log.read()

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


class LicenseServer(ServedProcess):
    """`issuer serve` on 127.0.0.1, started from the installed console script.

    ``command`` builds another command line for the port (a deployment file's),
    run with ``env``.
    """

    def __init__(
        self,
        home: Path,
        *args: str,
        command: Callable[[int], list[str]] | None = None,
        env: dict[str, str] | None = None,
    ) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        argv = [script("issuer"), "serve", "--host", "127.0.0.1", "--port", str(self.port), *args]
        super().__init__(argv if command is None else command(self.port), cwd=home, env=env,
                         probe_url=self.url + "/v1/health")


class CallbackPanel:
    """A panel's callback endpoint with a chosen behaviour."""

    def __init__(self, challenge: Challenge, behaviour: str = "ok", host: str = "127.0.0.1") -> None:
        self.challenge = challenge
        self.behaviour = behaviour
        self.hits = 0
        panel = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                panel.hits += 1
                if panel.behaviour == "redirect":
                    self.send_response(302)
                    self.send_header("Location", f"http://127.0.0.1:{panel.port}{CHALLENGE_PATH}?again")
                    self.end_headers()
                    return
                if panel.behaviour == "slow":
                    time.sleep(3)
                body = {
                    "ok": challenge.value.encode(),
                    "wrong": b"not-the-challenge",
                    "huge": challenge.value.encode() + b" " * (1 << 20),
                    "slow": challenge.value.encode(),
                }[panel.behaviour]
                if self.path != CHALLENGE_PATH:
                    body = b""
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                # The license server hangs up on an oversized answer, as it should.
                with contextlib.suppress(OSError):
                    self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                return

        self.server = http.server.ThreadingHTTPServer((host, 0), Handler)
        self.port = int(self.server.server_address[1])
        serve_in_background(self.server)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def require_haproxy() -> str:
    """Debian's haproxy binary; skip (or, under CI=true, fail) when it is not installed."""
    found = shutil.which("haproxy") or shutil.which("haproxy", path="/usr/sbin:/usr/local/sbin")
    if found:
        return found
    message = "the HAProxy tests need Debian's haproxy (apt-get install haproxy)"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(message + " — CI=true, so they may not be skipped", pytrace=False)
    pytest.skip(message)


class HAProxy(ServedProcess):
    """A real HAProxy on 127.0.0.1 in front of ``backend_port``, with ``option forwardfor``.

    It reaches the backend from ``source``, so a test can trust that address
    alone and still send requests through it from other loopback addresses.
    """

    def __init__(self, folder: Path, backend_port: int, *, source: str) -> None:
        binary = require_haproxy()
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = folder / "haproxy.cfg"
        config.write_text(textwrap.dedent(f"""\
            global
                maxconn 64
            defaults
                mode http
                timeout connect 5s
                timeout client 30s
                timeout server 30s
            frontend licet
                bind 127.0.0.1:{self.port}
                option forwardfor
                default_backend nodes
            backend nodes
                server node1 127.0.0.1:{backend_port} source {source}
            """))
        super().__init__([binary, "-f", str(config), "-db"], cwd=folder, probe_url=self.url + "/v1/health")
