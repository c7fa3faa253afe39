"""The JavaScript verifier in interop/js reaches every conformance vector's outcome.

It needs Node and npm. Without them the test is skipped with the reason — except
under ``CI=true``, where a skip would hide a missing second implementation and
the test fails instead (the pattern of tests/pgsupport.py's require_postgres).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

JS = Path(__file__).resolve().parents[1] / "interop" / "js"


def require_node() -> None:
    """Skip (or, under CI=true, fail) when node or npm is missing."""
    missing = [tool for tool in ("node", "npm") if shutil.which(tool) is None]
    if not missing:
        return
    message = f"the JavaScript interop verifier needs {' and '.join(missing)} on PATH"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(message + " — CI=true, so it may not be skipped", pytrace=False)
    pytest.skip(message)


@pytest.mark.xdist_group("interop-js")
def test_the_javascript_verifier_agrees_with_every_vector() -> None:
    require_node()
    if not (JS / "node_modules" / "jose").is_dir():
        subprocess.run(["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=JS, check=True, timeout=300)
    run = subprocess.run(["npm", "test", "--silent"], cwd=JS, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout + run.stderr
    found = re.search(r"(\d+) of (\d+) vectors pass", run.stdout)
    assert found is not None and found.group(1) == found.group(2) and int(found.group(1)) > 0, run.stdout
