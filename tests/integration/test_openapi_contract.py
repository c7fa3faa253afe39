"""The license server's OpenAPI document tells the truth: Schemathesis against a real `issuer serve`.

Every generated request (valid by the schema, invalid by it, unsupported
methods) goes to `issuer serve` on 127.0.0.1 and every answer is checked
against the document with `--checks all` plus licet's own checks
(contract_hooks.py). A fixed seed and a bounded number of examples keep the
run reproducible; any finding fails the suite.
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
from clirun import cli, script
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


@pytest.fixture(scope="module")
def contract_server(home: Path) -> Iterator[LicenseServer]:
    # A license on the tests' own address, so automatic activation gets past the lookup.
    cli("issuer", "license", "create", "--product", PRODUCT, "--ip", "127.0.0.1", cwd=home)
    srv = LicenseServer(home)
    yield srv
    srv.stop()


def run_schemathesis(url: str, tmp_path: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    config = tmp_path / "schemathesis.toml"
    config.write_text(CONFIG)
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


def test_schemathesis_finds_nothing_against_the_license_server(contract_server: LicenseServer, tmp_path: Path) -> None:
    with urllib.request.urlopen(contract_server.url + "/openapi.json", timeout=10) as response:
        document = json.loads(response.read())
    operations = sum(len(item) for item in document["paths"].values())
    run = run_schemathesis(contract_server.url, tmp_path)
    report = run.stdout + run.stderr
    assert run.returncode == 0, report
    # Every operation was exercised, and the run really generated cases.
    assert f"Tested: {operations}" in report, report
    generated = re.search(r"(\d+) generated", report)
    assert generated is not None and int(generated.group(1)) > 0, report
