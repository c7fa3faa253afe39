"""Test helpers: a movable clock, real keyrings in temporary folders, token forgery."""

from __future__ import annotations

import datetime as dt
import json
import os
import socketserver
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from keytool import Keyring
from verifier import TrustedKeys, Verifier
from verifier.claims import IDENTITY_HARDWARE, build_claims
from verifier.clock import BootClock
from verifier.encoding import b64url_encode
from verifier.fingerprint import fingerprint_from_sources

PRODUCT = "ispmanager"
ISSUER = "acme-hosting"
T0 = dt.datetime(2026, 1, 15, 12, 0, 0, tzinfo=dt.UTC)


class FakeClock:
    """An injectable clock the test moves by hand."""

    def __init__(self, now: dt.datetime = T0) -> None:
        self.now = now

    def __call__(self) -> dt.datetime:
        return self.now

    def advance(self, **delta: float) -> dt.datetime:
        self.now += dt.timedelta(**delta)
        return self.now


class FakeBoot:
    """A machine's boot clock the test moves by hand; :meth:`reboot` starts a new boot.

    ``clock`` is what a verifier started now is given. A verifier made before
    a reboot keeps reading this clock under the old boot id, which no real
    process can do: make a new verifier after each reboot.
    """

    def __init__(self, seconds: float = 1000.0) -> None:
        self.boots = 1
        self.seconds = seconds

    @property
    def boot_id(self) -> str:
        return f"boot-{self.boots}"

    @property
    def clock(self) -> BootClock:
        return BootClock(self.boot_id, self.read)

    def read(self) -> float:
        return self.seconds

    def advance(self, **delta: float) -> None:
        self.seconds += dt.timedelta(**delta).total_seconds()

    def reboot(self, uptime: float = 30.0) -> None:
        self.boots += 1
        self.seconds = uptime


#: Tests that bound a wall-clock time share one xdist worker, so no two of them run at once.
TIMING = pytest.mark.xdist_group("timing")


def wait_past_second() -> None:
    """Wait until the wall clock shows a later whole second than now (under a second).

    Tokens carry whole seconds and are deterministic: a renewal in the same
    second as the first token would be the same token. This waits on that
    condition, not for a fixed time.
    """
    now = int(time.time())
    while int(time.time()) <= now:
        time.sleep(0.01)


def server_fp(name: str, product: str = PRODUCT, nics: int = 1) -> tuple[str, ...]:
    """A realistic three-part fingerprint of a simulated server called ``name``."""
    macs = [f"52:54:00:{name.encode().hex()[:2]}:{i:02x}:01" for i in range(nics)]
    return fingerprint_from_sources(product, f"machine-{name}", f"uuid-{name}", macs)


def claims_for(
    fp: tuple[str, ...], clock: FakeClock, days: float = 30, **overrides: Any
) -> dict[str, Any]:
    claims = build_claims(
        issuer=ISSUER,
        license_id="LIC-TEST",
        product=PRODUCT,
        activation_id="ACT-TEST",
        issued_at=clock.now,
        expires_at=clock.now + dt.timedelta(days=days),
        renew_at=clock.now + dt.timedelta(days=days * 2 / 3),
        license_expires_at=None,
        fingerprint=fp,
        features=["dns", "mail"],
        limits={"domains": 10},
        identity=IDENTITY_HARDWARE,
    )
    claims.update(overrides)
    return claims


def forge(header: Mapping[str, Any], payload: Mapping[str, Any] | bytes, key: Ed25519PrivateKey) -> str:
    """Sign an arbitrary header and payload with Ed25519, bypassing every library guard."""
    h = b64url_encode(json.dumps(header).encode())
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    p = b64url_encode(body)
    signature = key.sign(f"{h}.{p}".encode())
    return f"{h}.{p}.{b64url_encode(signature)}"


class Provider:
    """A real keyring in a temporary folder, with the panel-side view of it."""

    def __init__(self, folder: Path, clock: FakeClock) -> None:
        self.clock = clock
        self.ring = Keyring(folder, clock=clock)
        self.record = self.ring.new()
        self.signer = self.ring.signer()

    @property
    def private_key(self) -> Ed25519PrivateKey:
        return self.signer._key

    def trusted(self) -> TrustedKeys:
        return self.ring.trusted_keys()

    def verifier(self, server: str = "alpha", **kwargs: Any) -> Verifier:
        kwargs.setdefault("clock", self.clock)
        kwargs.setdefault("server_fingerprint", server_fp(server))
        return Verifier(PRODUCT, self.trusted(), **kwargs)

    def token(self, server: str = "alpha", **overrides: Any) -> str:
        return self.signer.sign(claims_for(server_fp(server), self.clock, **overrides))

    def header(self, **overrides: Any) -> dict[str, Any]:
        header = {"alg": "EdDSA", "typ": "licet+jwt", "kid": self.record.kid}
        header.update(overrides)
        return header


def current_license(iss: Any, key_hash: str) -> Any:
    """The license ``key_hash`` opens as its current key, read under the ledger's lock (else InvalidActivationKeyError)."""
    from issuer import policy

    with iss.ledger.transaction() as tx:
        return policy.current_key(tx.license(key_hash=key_hash), key_hash)


def make_issuer(folder: Path, clock: FakeClock, ledger: str | None = None, **kwargs: Any) -> Any:
    """A real keyring in ``folder`` and a ledger there (or at ``ledger``, a URL); returns the Issuer."""
    from issuer import Issuer

    Keyring(folder / "keys", clock=clock).new()
    return Issuer.init(ledger or folder / "ledger", folder / "keys", name=ISSUER, clock=clock, **kwargs)


def request_for(key: str, server: str, product: str = PRODUCT, clock: FakeClock | None = None) -> Any:
    """The ActivationRequest a simulated server ``server`` would send."""
    from verifier import parse_request_code, request_code

    code = request_code(product, key, machine_id=f"machine-{server}", hostname=server, clock=clock or FakeClock())
    return parse_request_code(code)


def code_for(key: str, server: str, product: str = PRODUCT) -> str:
    from verifier import request_code

    return request_code(product, key, machine_id=f"machine-{server}", hostname=server, clock=FakeClock())


def ledger_bytes(folder: Path) -> dict[str, bytes]:
    """Every ledger file's bytes (lock and rate-limit attempts aside), to prove a refusal changed nothing."""
    return {
        str(p.relative_to(folder)): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and p.name != "ledger.lock" and p.relative_to(folder).parts[0] != "attempts"
    }


def renewal_for(token: str, server: str, product: str = PRODUCT, clock: FakeClock | None = None) -> str:
    """The renewal code the simulated server ``server`` prints for ``token``."""
    from verifier import renewal_code

    return renewal_code(token, product=product, machine_id=f"machine-{server}", hostname=server, clock=clock or FakeClock())


def panel_verifier(iss: Any, server: str, clock: FakeClock, store: Any = None, **kwargs: Any) -> Verifier:
    """The verifier a panel on simulated server ``server`` runs (same machine id as its requests)."""
    return Verifier(PRODUCT, Keyring(iss.keys).trusted_keys(), clock=clock, issuer=iss.provider,
                    machine_id=f"machine-{server}", store=store, **kwargs)


README = Path(__file__).resolve().parent.parent / "README.md"


def readme_section(name: str, document: dict[str, Any]) -> str:
    """The README's part between ``<!-- name:begin -->`` and ``<!-- name:end -->``, checked against ``document``.

    The part must be the OpenAPI document rendered by :mod:`issuer.web.apidoc`; with
    ``LICET_WRITE_README=1`` it is rewritten to be so. Returns the part.
    """
    from issuer.web import apidoc

    begin, end = f"<!-- {name}:begin -->\n", f"<!-- {name}:end -->\n"
    text = README.read_text()
    assert text.count(begin) == 1 and text.count(end) == 1
    head, rest = text.split(begin)
    current, tail = rest.split(end)
    wanted = apidoc.markdown(document) + "\n**Problem codes**\n\n" + apidoc.problem_table(document)
    if os.environ.get("LICET_WRITE_README") == "1":
        README.write_text(head + begin + wanted + end + tail)
        current = wanted
    assert current == wanted, f"README's {name} section differs from the OpenAPI document; regenerate it (LICET_WRITE_README=1)"
    return current


def problem_codes(operation: dict[str, Any]) -> dict[str, list[str]]:
    """The ``code`` values an OpenAPI operation documents for each status it refuses with."""
    from issuer.web import apidoc

    found = {}
    for status, answer in operation["responses"].items():
        schema = answer.get("content", {}).get(apidoc.PROBLEM_MEDIA_TYPE, {}).get("schema")
        if schema is not None:
            found[status] = schema["allOf"][1]["properties"]["code"]["enum"]
    return found


def one_hash_per_password(monkeypatch: pytest.MonkeyPatch) -> None:
    """Console users get real Argon2id hashes made once per worker, not once per test.

    An Argon2 hash costs tens of milliseconds by design, and the console's unit
    tests add two users per test: they need users who can log in, not new
    salts. The n-th hash of a password in a test is the n-th one made in this
    worker (hashes stay distinct within a test, as a ledger requires). Logging
    in still verifies the real hash; hashing's real cost runs through
    ``issuer serve`` in tests/integration/test_console_api.py.
    """
    import issuer.licensing.accounts as accounts

    used: dict[str | bytes, int] = {}

    class SharedHashes(type(accounts._hasher())):  # type: ignore[misc]
        def hash(self, password: str | bytes, *, salt: bytes | None = None) -> str:
            made = _HASHES.setdefault(password, [])
            n = used[password] = used.get(password, 0) + 1
            if len(made) < n:
                made.append(super().hash(password))
            return made[n - 1]

    monkeypatch.setattr(accounts, "_hasher", SharedHashes)


_HASHES: dict[str | bytes, list[str]] = {}


def serve_in_background(server: socketserver.BaseServer) -> threading.Thread:
    """Run a test's helper server in a daemon thread; returns the started thread.

    Polled every 20 ms, so that ``server.shutdown()`` returns at once: it
    waits for ``serve_forever``'s next poll, every 0.5 s by default.
    """
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    return thread
