"""The OpenAPI documents tell the truth: Schemathesis against a real `issuer serve` and `issuer console`.

Every generated request (valid by the schema, invalid by it, unsupported
methods) goes to the server on 127.0.0.1 and every answer is checked against
the document with `--checks all` plus licet's own checks (contract_hooks.py).
The console's admin API is also walked statefully along the document's links
(create → show → regenerate → change → revoke), with a write-scope token made
by `issuer admin token create`. A fixed seed and a bounded number of examples
keep the runs reproducible; any finding fails the suite.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from clirun import cli, provider_home, script
from consoles import ConsoleServer, make_token
from servers import LicenseServer
from support import PRODUCT

pytestmark = pytest.mark.slow

SEED = 20261129
EXAMPLES = 25
HERE = Path(__file__).parent

# Content refusals are answered 422 too (invalid-request-code); the hook
# makes sure such a 422 is never `bad-input`, i.e. never about the shape.
# A body the schema refuses may be refused for its size (413) before it is parsed.
CONFIG = """
[checks.positive_data_acceptance]
expected-statuses = ["2xx", "304", "403", "404", "409", "422", "429"]

[checks.negative_data_rejection]
expected-statuses = ["400", "401", "403", "404", "405", "406", "409", "413", "415", "422", "428", "429"]
"""

# Schema-valid requests to the admin API may name a license that does not exist
# (404), one already revoked (403), regenerate too soon (409), or name a product
# new to the ledger or a last day already past (422, never `bad-input`).
CONSOLE_CONFIG = """
[checks.positive_data_acceptance]
expected-statuses = ["2xx", "403", "404", "409", "422"]

[checks.negative_data_rejection]
expected-statuses = ["401", "403", "404", "405", "406", "413", "415", "422"]
"""


@pytest.fixture(scope="module")
def contract_server(home: Path) -> Iterator[LicenseServer]:
    # A license on the tests' own address, so automatic activation gets past the lookup.
    cli("issuer", "license", "create", "--product", PRODUCT, "--ip", "127.0.0.1", cwd=home)
    srv = LicenseServer(home)
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def contract_console(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ConsoleServer, str]]:
    folder = provider_home(tmp_path_factory.mktemp("console-contract"), ("--product", PRODUCT))
    token = make_token(folder, "contract", "write")
    server = ConsoleServer(folder)
    yield server, token
    server.stop()


def run_schemathesis(
    url: str, tmp_path: Path, *extra: str, config_text: str = CONFIG
) -> subprocess.CompletedProcess[str]:
    config = tmp_path / "schemathesis.toml"
    config.write_text(config_text)
    env = {**os.environ, "SCHEMATHESIS_HOOKS": "contract_hooks", "PYTHONPATH": str(HERE), "NO_COLOR": "1"}
    return subprocess.run(
        [
            script("st"),
            "--config-file",
            str(config),
            "run",
            f"{url}/openapi.json",
            "--checks",
            "all",
            "--max-examples",
            str(EXAMPLES),
            "--seed",
            str(SEED),
            "--workers",
            "1",
            "--request-timeout",
            "20",
            *extra,
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


# The automatic activation's body (a fingerprint: patterns, uniqueness, per-kind
# counts) costs Schemathesis' coverage phase ten seconds or so of generation, as
# much as every other operation together: it runs on its own, so xdist can give
# the two halves to two workers. Together they select every operation.
AUTO = "/v1/activations/auto"
LICENSE_SERVER_HALVES = {
    "automatic-activation": ("--include-path", AUTO),
    "every-other-operation": ("--exclude-path", AUTO),
}


@pytest.mark.parametrize("half", LICENSE_SERVER_HALVES)
def test_schemathesis_finds_nothing_against_the_license_server(
    contract_server: LicenseServer, tmp_path: Path, half: str
) -> None:
    with urllib.request.urlopen(contract_server.url + "/openapi.json", timeout=10) as response:
        document = json.loads(response.read())
    auto = len(document["paths"][AUTO])
    operations = {"automatic-activation": auto,
                  "every-other-operation": sum(len(item) for item in document["paths"].values()) - auto}[half]
    run = run_schemathesis(contract_server.url, tmp_path, *LICENSE_SERVER_HALVES[half])
    report = run.stdout + run.stderr
    assert run.returncode == 0, report
    # Every operation of the half was exercised, and the run really generated cases.
    assert f"Tested: {operations}" in report, report
    generated = re.search(r"(\d+) generated", report)
    assert generated is not None and int(generated.group(1)) > 0, report


def test_schemathesis_finds_nothing_against_the_console_admin_api(
    contract_console: tuple[ConsoleServer, str], tmp_path: Path
) -> None:
    console, token = contract_console
    with urllib.request.urlopen(console.url + "/openapi.json", timeout=10) as response:
        document = json.loads(response.read())
    operations = sum(len(item) for item in document["paths"].values())
    assert any(path.startswith("/v1/admin/") for path in document["paths"])
    run = run_schemathesis(
        console.url, tmp_path, "--header", f"Authorization: Bearer {token}", config_text=CONSOLE_CONFIG
    )
    report = run.stdout + run.stderr
    assert token not in report  # schemathesis masks the token in what it prints
    assert run.returncode == 0, report
    assert f"Tested: {operations}" in report, report
    generated = re.search(r"(\d+) generated", report)
    assert generated is not None and int(generated.group(1)) > 0, report
    # The stateful phase ran and followed the links from a created license.
    assert re.search(r"✅ Stateful", report), report
    links = re.search(r"API Links:\s+(\d+) covered", report)
    assert links is not None and int(links.group(1)) > 0, report
