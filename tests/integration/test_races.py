"""Single use under real concurrency: separate processes contend for one key."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path
from typing import Any

from clirun import script
from racing import CTX, run_all
from servers import has_open, wait_until
from support import PRODUCT, FakeClock, code_for, make_issuer, request_for

from issuer import Issuer
from issuer.ledger.folder import LOCK_FILE
from verifier import LicenseError


def _redeem(folder: str, key: str, server: str, barrier: Any, results: Any) -> None:
    iss = Issuer(Path(folder) / "ledger", Path(folder) / "keys")
    request = request_for(key, server)
    barrier.wait(timeout=60)
    try:
        results.put(("ok", server, iss.redeem(request, method="air-gapped").activation_id))
    except LicenseError as err:
        results.put(("refused", server, err.code))


def _regenerate(folder: str, license_id: str, barrier: Any, results: Any) -> None:
    iss = Issuer(Path(folder) / "ledger", Path(folder) / "keys")
    barrier.wait(timeout=60)
    try:
        results.put(("ok", iss.regenerate(license_id).record.generation))
    except LicenseError as err:
        results.put(("refused", err.code))


def test_eight_servers_racing_for_one_key_yield_one_activation(tmp_path: Path) -> None:
    iss = make_issuer(tmp_path, FakeClock())
    created = iss.create_license(PRODUCT)
    servers = [f"server{i}" for i in range(8)]
    results = run_all(_redeem, [(str(tmp_path), created.activation_key, s) for s in servers])
    winners = [r for r in results if r[0] == "ok"]
    assert len(winners) == 1, results
    assert sorted(r[2] for r in results if r[0] == "refused") == ["already-activated"] * 7
    record = iss.show(created.license_id).record
    assert record.activation is not None and record.activation.activation_id == winners[0][2]
    assert record.activation.hostname == winners[0][1]
    assert [e.action for e in record.history].count("activated") == 1


def test_two_regenerations_racing_yield_one(tmp_path: Path) -> None:
    iss = make_issuer(tmp_path, FakeClock())
    created = iss.create_license(PRODUCT)
    results = run_all(_regenerate, [(str(tmp_path), created.license_id)] * 2)
    assert sorted(results) == [("ok", 2), ("refused", "regeneration-too-soon")]
    assert iss.show(created.license_id).record.generation == 2


def _library_redeem(folder: str, key: str, go: Any, results: Any) -> None:
    iss = Issuer(Path(folder) / "ledger", Path(folder) / "keys")
    go.wait(timeout=60)
    try:
        results.put(("ok", iss.redeem(request_for(key, "library-server"), method="air-gapped").activation_id))
    except LicenseError as err:
        results.put(("refused", err.code))


def test_cli_and_library_racing_yield_one_activation(tmp_path: Path) -> None:
    import subprocess

    iss = make_issuer(tmp_path, FakeClock())
    created = iss.create_license(PRODUCT)
    # The library process is forked before the test takes the lock: a forked
    # child would otherwise inherit the lock-holding descriptor.
    go, results = CTX.Event(), CTX.Queue()
    lib = CTX.Process(target=_library_redeem, args=(str(tmp_path), created.activation_key, go, results))
    lib.start()
    lock_fd = os.open(tmp_path / "ledger" / LOCK_FILE, os.O_RDWR | os.O_CLOEXEC)
    fcntl.flock(lock_fd, fcntl.LOCK_EX)  # both contenders queue up behind this
    try:
        cli = subprocess.Popen(
            [script("issuer"), "activate", code_for(created.activation_key, "cli-server")],
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        go.set()
        lock = tmp_path / "ledger" / LOCK_FILE
        wait_until(lambda: has_open(cli.pid, lock), 60, "the CLI to queue for the ledger lock")
        wait_until(lambda: lib.pid is not None and has_open(lib.pid, lock), 60, "the library to queue for the lock")
    finally:
        os.close(lock_fd)
    out, err = cli.communicate(timeout=60)
    library_result = results.get(timeout=60)
    lib.join(timeout=30)
    outcomes = ["ok" if cli.returncode == 0 else "refused", library_result[0]]
    assert sorted(outcomes) == ["ok", "refused"], (out, err, library_result)
    if cli.returncode != 0:
        assert "already activated" in err
    else:
        assert library_result[1] == "already-activated"
    record = iss.show(created.license_id).record
    assert [e.action for e in record.history].count("activated") == 1


def _renew_repeatedly(folder: str, token: str, server: str, barrier: Any, results: Any) -> None:
    from support import renewal_for

    iss = Issuer(Path(folder) / "ledger", Path(folder) / "keys")
    barrier.wait()
    outcomes = []
    for _ in range(15):
        try:
            outcomes.append(("renewed", iss.renew(renewal_for(token, server))))
        except LicenseError as err:
            outcomes.append(("refused", err.code))
    results.put(outcomes)


def _regenerate_once(folder: str, license_id: str, barrier: Any, results: Any) -> None:
    iss = Issuer(Path(folder) / "ledger", Path(folder) / "keys")
    barrier.wait()
    iss.regenerate(license_id)
    results.put([("regenerated", "")])


def test_renewals_racing_a_regeneration_never_renew_a_superseded_activation(tmp_path: Path) -> None:
    from support import panel_verifier

    iss = make_issuer(tmp_path, FakeClock())
    created = iss.create_license(PRODUCT)
    token = iss.redeem(request_for(created.activation_key, "alpha"), method="air-gapped").token
    args: list[tuple[Any, ...]] = [(str(tmp_path), token, "alpha")] * 3
    barrier, results = CTX.Barrier(4), CTX.Queue()
    procs = [CTX.Process(target=_renew_repeatedly, args=(*a, barrier, results)) for a in args]
    procs.append(CTX.Process(target=_regenerate_once, args=(str(tmp_path), created.license_id, barrier, results)))
    for p in procs:
        p.start()
    outcomes = [o for _ in procs for o in results.get(timeout=120)]
    for p in procs:
        p.join(timeout=30)
        assert p.exitcode == 0
    record = iss.show(created.license_id).record
    superseded = record.past_activations[-1]
    assert record.activation is None and superseded.superseded_at is not None
    renewed = [o[1] for o in outcomes if o[0] == "renewed"]
    refused = [o[1] for o in outcomes if o[0] == "refused"]
    assert set(refused) <= {"activation-superseded"}
    # Every renewal the ledger granted happened before the regeneration, and no token
    # outlives the lease the ledger recorded (which the revocation entry covers).
    # The history is appended in lock order: no renewal after the regeneration.
    actions = [e.action for e in record.history]
    assert actions.count("renewed") == len(renewed)
    assert "renewed" not in actions[actions.index("regenerated"):]
    _, entries = iss.ledger.revocations()
    entry = next(e for e in entries if e.ident == superseded.activation_id)
    from verifier.clock import utc_now

    v = panel_verifier(iss, "alpha", utc_now)  # type: ignore[arg-type]  # the children sign with the real clock
    assert all(v.verify(t).expires_at <= entry.until for t in renewed)
