"""`issuer serve`'s request log (one JSON line per request, no key or token) and its banner."""

from __future__ import annotations

import json
import socket
import urllib.error
import urllib.request
from pathlib import Path

from clirun import cli, provider_home, script
from servers import LicenseServer

from verifier.client import activate_online
from verifier.request import request_code


def _post(url: str, body: bytes) -> int:
    request = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"}, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as err:
        return err.code


def test_each_request_is_logged_as_json_without_keys_or_tokens(tmp_path: Path) -> None:
    home = provider_home(tmp_path)
    created = json.loads(cli("issuer", "license", "create", "--product", "ispmanager", "--json", cwd=home).stdout)
    key, lid = created["activation_key"], created["license_id"]
    wrong = json.loads(cli("issuer", "license", "create", "--product", "ispmanager", "--json", cwd=home).stdout)
    cli("issuer", "license", "regenerate", wrong["license_id"], cwd=home)  # its first key is dead now

    server = LicenseServer(home)
    secrets: list[str] = [key, key.replace("-", ""), wrong["activation_key"]]
    try:
        token = activate_online(server.url, "ispmanager", key, machine_id="logged-box")
        secrets.append(token)
        code = request_code("ispmanager", wrong["activation_key"], machine_id="other-box")
        secrets.append(code)
        assert _post(server.url + "/v1/activations", json.dumps({"request_code": code}).encode()) == 403
        # A client may put anything into a path or a query: neither is logged.
        assert _post(f"{server.url}/v1/activations/{key}?token={token}", b"{}") == 404
        assert _post(server.url + "/v1/activations", b"x" * (64 * 1024)) == 413
        with urllib.request.urlopen(server.url + "/v1/health", timeout=10) as response:
            assert response.status == 200
    finally:
        server.stop()
    output = server.output()

    lines = output.splitlines()
    assert lines[0].startswith(f"licet license server on http://127.0.0.1:{server.port}")
    records = [json.loads(line) for line in lines if line.startswith("{")]
    assert all(set(r) == {"time", "method", "path", "status", "client", "license_id", "duration_ms"} for r in records)
    seen = [(r["method"], r["path"], r["status"], r["license_id"]) for r in records]
    assert ("POST", "/v1/activations", 200, lid) in seen
    assert ("POST", "/v1/activations", 403, None) in seen
    assert ("POST", "-", 404, None) in seen
    assert ("POST", "/v1/activations", 413, None) in seen
    assert ("GET", "/v1/health", 200, None) in seen
    assert all(r["client"] == "127.0.0.1" and r["time"].endswith("Z") and r["duration_ms"] >= 0 for r in records)
    for secret in secrets:
        assert secret not in output
    assert token.split(".")[2] not in output and token.split(".")[1][:40] not in output


def test_banner_only_once_listening_and_a_busy_port_is_one_line(tmp_path: Path) -> None:
    import subprocess

    home = provider_home(tmp_path)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        proc = subprocess.run(
            [script("issuer"), "serve", "--host", "127.0.0.1", "--port", str(port)],
            cwd=home, capture_output=True, text=True, timeout=60,
        )
    assert proc.returncode == 1
    assert proc.stdout == ""  # no "listening" banner for a server that never listened
    assert proc.stderr.strip().splitlines() == [f"issuer: cannot listen on 127.0.0.1:{port}: Address already in use"]


def test_console_on_a_busy_port_is_one_line_exit_1_and_no_banner(tmp_path: Path) -> None:
    import subprocess

    home = provider_home(tmp_path)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        proc = subprocess.run(
            [script("issuer"), "console", "--host", "127.0.0.1", "--port", str(port)],
            cwd=home, capture_output=True, text=True, timeout=60,
        )
    assert proc.returncode == 1  # never uvicorn's exit 3
    assert proc.stdout == ""  # no banner for a console that never listened
    assert proc.stderr.strip().splitlines() == [f"issuer: cannot listen on 127.0.0.1:{port}: Address already in use"]
