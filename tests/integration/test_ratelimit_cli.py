"""`issuer ratelimit list|clear`: a customer locked out by the rate limit is freed without touching files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from clirun import assert_one_line_refusal, cli, provider_home
from servers import LicenseServer

from verifier import InvalidActivationKeyError, RateLimitedError
from verifier.activation_key import key_from_bytes
from verifier.client import activate_online


def test_a_locked_out_customer_is_listed_and_freed(tmp_path: Path) -> None:
    home = provider_home(tmp_path)
    created = json.loads(cli("issuer", "license", "create", "--product", "ispmanager", "--json", cwd=home).stdout)
    assert json.loads(cli("issuer", "ratelimit", "list", "--json", cwd=home).stdout) == []

    server = LicenseServer(home, "--failure-limit", "2")
    try:
        wrong = key_from_bytes(b"\x07" * 15)
        for _ in range(2):
            with pytest.raises(InvalidActivationKeyError):
                activate_online(server.url, "ispmanager", wrong, machine_id="typo-box")
        with pytest.raises(RateLimitedError):  # locked out, even with the right key
            activate_online(server.url, "ispmanager", created["activation_key"], machine_id="typo-box")

        (entry,) = json.loads(cli("issuer", "ratelimit", "list", "--failure-limit", "2", "--json", cwd=home).stdout)
        assert entry["bucket"] == "127.0.0.1" and entry["failures"] == 2 and entry["blocked_until"].endswith("Z")
        table = cli("issuer", "ratelimit", "list", "--failure-limit", "2", cwd=home).stdout.splitlines()
        assert table[0].split()[:2] == ["CLIENT", "FAILURES"] and table[1].startswith("127.0.0.1")
        # With the server's default limit of 10 the same client is not blocked yet.
        (lenient,) = json.loads(cli("issuer", "ratelimit", "list", "--json", cwd=home).stdout)
        assert lenient["blocked_until"] is None

        assert_one_line_refusal(cli("issuer", "ratelimit", "clear", "127.0.0.300", cwd=home, check=None),
                                "is not an IP address", code=2)
        assert cli("issuer", "ratelimit", "clear", "192.0.2.1", cwd=home).stdout.strip() == (
            "no failed attempts recorded for 192.0.2.1"
        )
        cleared = json.loads(cli("issuer", "ratelimit", "clear", "127.0.0.1", "--json", cwd=home).stdout)
        assert cleared == {"cleared": ["127.0.0.1"]}
        token = activate_online(server.url, "ispmanager", created["activation_key"], machine_id="typo-box")
        assert token.count(".") == 2
    finally:
        server.stop()
    assert json.loads(cli("issuer", "ratelimit", "list", "--json", cwd=home).stdout) == []
