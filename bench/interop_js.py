"""Benchmark: the JavaScript verifier (interop/js) next to Verifier.verify, for the same token.

Informational (no target): one run's median per-call time of each, and their ratio.
Both verify the conformance vectors' "valid" token fully at the vectors' clock:
Python with its verified-token cache off (cache_size=0), so each call checks the
signature like the JavaScript one does; the cached figure is printed beside it.
Needs node and npm (the script runs ``npm ci`` in interop/js when jose is missing).
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import per_call

from verifier import TrustedKeys, Verifier, VerifierConfig
from verifier.fingerprint import fingerprint_from_sources

ROOT = Path(__file__).resolve().parent.parent
JS = ROOT / "interop" / "js"


def main() -> int:
    print("bench/interop_js.py — the JavaScript verifier next to Verifier.verify (informational)")
    if shutil.which("node") is None or shutil.which("npm") is None:
        print("  skipped: node and npm are needed")
        return 0
    if not (JS / "node_modules" / "jose").is_dir():
        subprocess.run(["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=JS, check=True)
    doc = json.loads((ROOT / "vectors" / "token.json").read_text(encoding="utf-8"))
    case = next(c for c in doc["cases"] if c["id"] == "valid")
    inp, server = case["input"], case["input"]["server"]
    now = dt.datetime.fromisoformat(case["now"].replace("Z", "+00:00"))
    keys = TrustedKeys.from_jwks(doc["trusted_keys"])
    bound = fingerprint_from_sources(inp["product"], server["machine_id"], server["dmi_uuid"], server["macs"])

    def verifier(cache: int) -> Verifier:
        return Verifier(
            product=inp["product"], trusted_keys=keys, clock=lambda: now, server_fingerprint=bound, config=VerifierConfig(cache_size=cache)
        )

    full, cached = verifier(0), verifier(64)
    token = inp["token"]
    python_full = per_call(lambda: full.verify(token), 2000) * 1e6
    python_cached = per_call(lambda: cached.verify(token), 20000) * 1e6
    run = subprocess.run(["node", "bench.js", "2000"], cwd=JS, capture_output=True, text=True, check=True)
    js = json.loads(run.stdout.strip().splitlines()[-1])["median_us"]
    print(f"  {'Verifier.verify, full check (cache off), us per call':<58} {python_full:>10.1f}")
    print(f"  {'Verifier.verify, repeated token (cache on), us per call':<58} {python_cached:>10.2f}")
    print(f"  {'interop/js verifyToken, full check, us per call':<58} {js:>10.1f}")
    print(f"  {'ratio JS / Python (full checks)':<58} {js / python_full:>10.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
