"""Crash safety: SIGKILL a busy issuer at random moments; the ledger must hold every confirmed change."""

from __future__ import annotations

import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from servers import first_line
from support import PRODUCT, FakeClock, current_license, make_issuer

from issuer import Issuer
from issuer.ledger.shards import JOURNAL_FILE
from issuer.licensing.minting import key_hash

CHILD = Path(__file__).with_name("crash_child.py")
KILLS = 20


def check_consistent(folder: Path, confirmed: list[list[str]]) -> None:
    iss = Issuer(folder / "ledger", folder / "keys")
    views = {v.license_id: v for v in iss.licenses()}  # every shard parses; a journal is replayed
    assert not (folder / "ledger" / JOURNAL_FILE).exists()
    for view in views.values():
        record = view.record
        assert (record.status == "activated") == (record.activation is not None), record
        # The current key is indexed to this license: no half-applied regeneration.
        found = current_license(iss, key_hash(view.activation_key))
        assert found.license_id == record.license_id
        assert [e.action for e in record.history].count("regenerated") == record.generation - 1
    for op, license_id, detail in confirmed:
        record = views[license_id].record
        if op == "activated":
            ids = [a.activation_id for a in (*record.past_activations, *([record.activation] if record.activation else []))]
            assert detail in ids, (license_id, detail, ids)
        else:
            assert record.generation >= int(detail)


@pytest.mark.slow
def test_sigkill_at_random_moments_never_loses_or_half_applies_a_change(tmp_path: Path) -> None:
    iss = make_issuer(tmp_path, FakeClock())
    for _ in range(6):
        iss.create_license(PRODUCT)
    rng = random.Random(1234)
    confirmed: list[list[str]] = []
    kills = 0
    for run in range(KILLS):
        child = subprocess.Popen(
            [sys.executable, str(CHILD), str(tmp_path), str(run * 1_000)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert first_line(child, deadline=60).strip() == "ready", child.stderr.read() if child.stderr else ""
        time.sleep(rng.uniform(0.02, 0.4))
        child.send_signal(signal.SIGKILL)
        out, err = child.communicate(timeout=30)
        assert child.returncode == -signal.SIGKILL, err
        kills += 1
        lines = out.split("\n")[:-1]  # the last piece may be a line cut by the kill
        confirmed += [line.split()[1:] for line in lines if line.startswith("done ")]
        check_consistent(tmp_path, confirmed)
    assert kills == KILLS
    assert len(confirmed) > 50, "the child barely ran; the test would prove little"
