"""The PostgreSQL tests skip, saying why, without a server — and fail instead under CI=true."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NOWHERE = "postgresql://postgres@127.0.0.1:1/postgres"  # port 1: nothing listens there


def run_contract_test(ci: str | None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    env["LICET_TEST_POSTGRES_URL"] = NOWHERE
    if ci is not None:
        env["CI"] = ci
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
         "tests/unit/issuer/test_ledger_contract.py", "-k", "a_newer_schema_is_refused"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
    )


def test_without_a_server_the_postgres_tests_are_skipped_and_the_summary_says_why() -> None:
    proc = run_contract_test(None)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "1 skipped" in proc.stdout
    assert "SKIPPED" in proc.stdout and "PostgreSQL ledger tests need a server" in proc.stdout


def test_under_ci_a_missing_server_fails_the_run() -> None:
    proc = run_contract_test("true")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "may not be skipped" in proc.stdout
    assert "skipped" not in proc.stdout.splitlines()[-1]
