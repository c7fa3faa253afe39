"""`Verifier.activate`: online activation, verification and storage in one call, as the verifier."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from clirun import cli, provider_home
from servers import LicenseServer

from verifier import InvalidActivationKeyError, TokenStore, TrustedKeys, Verifier, WrongServerError
from verifier.activation_key import key_from_bytes


def test_verifier_activate_binds_the_key_to_the_verifiers_own_machine_id(tmp_path: Path) -> None:
    home = provider_home(tmp_path)
    created = json.loads(cli("issuer", "license", "create", "--product", "ispmanager", "--feature", "dns",
                             "--json", cwd=home).stdout)
    trust = TrustedKeys.from_file(home / "keys" / "trusted_keys.json")
    store = TokenStore(tmp_path / "panel.token")
    panel = Verifier("ispmanager", trust, machine_id="container-7", store=store)
    server = LicenseServer(home)
    try:
        with pytest.raises(InvalidActivationKeyError):
            panel.activate(key_from_bytes(b"\x05" * 15), server_url=server.url)
        assert store.load() is None  # a refusal stores nothing

        lic = panel.activate(created["activation_key"], server_url=server.url)
    finally:
        server.stop()
    assert lic.license_id == created["license_id"] and lic.has("dns")
    token = store.load()
    assert token is not None and panel.status(token).valid
    # Bound to the machine id the panel verifies with, not to this host's hardware:
    # the same panel restarted checks it, the hardware identity does not match it.
    assert Verifier("ispmanager", trust, machine_id="container-7").verify(token).license_id == lic.license_id
    with pytest.raises(WrongServerError):
        Verifier("ispmanager", trust, machine_id="another-box").verify(token)
    shown = json.loads(cli("issuer", "license", "show", created["license_id"], "--json", cwd=home).stdout)
    assert shown["status"] == "activated"


def test_verifier_activate_needs_a_store(tmp_path: Path) -> None:
    home = provider_home(tmp_path)
    trust = TrustedKeys.from_file(home / "keys" / "trusted_keys.json")
    from verifier import BadInputError

    with pytest.raises(BadInputError, match="store"):
        Verifier("ispmanager", trust, machine_id="m").activate("X" * 24, server_url="http://127.0.0.1:9")
