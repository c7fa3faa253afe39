"""Which addresses the license server may call back, and whose address it believes."""

from __future__ import annotations

import pytest

from issuer.addresses import callback_allowed

PRIVATE_OR_SPECIAL = [
    "127.0.0.1",
    "127.1.2.3",
    "10.0.0.1",
    "10.255.255.255",
    "172.16.0.1",
    "192.168.1.1",
    "169.254.169.254",  # cloud metadata
    "100.64.0.1",  # carrier-grade NAT
    "0.0.0.0",
    "::1",
    "::",
    "::ffff:127.0.0.1",
    "::ffff:10.0.0.1",
    "::ffff:169.254.169.254",
    "fc00::1",
    "fe80::1",
    "224.0.0.1",
    "ff02::1",
    "198.51.100.7",  # documentation range
]
NOT_AN_ADDRESS = ["2130706433", "0x7f000001", "017700000001", "127.1", "0177.0.0.1", "localhost", "", "1.2.3.4.5", "[::1]"]


@pytest.mark.parametrize("address", PRIVATE_OR_SPECIAL + NOT_AN_ADDRESS)
def test_private_special_and_odd_addresses_are_refused_by_default(address: str) -> None:
    assert callback_allowed(address, allow_private=False) is False


@pytest.mark.parametrize("address", [*NOT_AN_ADDRESS, "0.0.0.0", "::", "224.0.0.1", "ff02::1"])
def test_odd_unspecified_and_multicast_addresses_are_refused_even_when_private_is_allowed(address: str) -> None:
    assert callback_allowed(address, allow_private=True) is False


@pytest.mark.parametrize("address", ["8.8.8.8", "2001:4860:4860::8888", "::ffff:8.8.8.8"])
def test_public_addresses_are_allowed(address: str) -> None:
    assert callback_allowed(address, allow_private=False) is True


@pytest.mark.parametrize("address", ["127.0.0.1", "::1", "10.0.0.1"])
def test_loopback_and_private_addresses_are_allowed_only_with_the_flag(address: str) -> None:
    assert callback_allowed(address, allow_private=True) is True


def test_a_broken_provider_setup_is_a_503_not_a_client_error(tmp_path, caplog) -> None:  # type: ignore[no-untyped-def]
    from starlette.testclient import TestClient
    from support import PRODUCT, FakeClock, code_for, make_issuer

    from issuer.web.license_server import ServerConfig, create_app

    iss = make_issuer(tmp_path, FakeClock())
    key = iss.create_license(PRODUCT).activation_key
    for pem in (tmp_path / "keys").glob("*.pem"):
        pem.chmod(0o644)  # the provider's key file is now unsafe: the server must refuse to sign
    client = TestClient(create_app(ServerConfig(ledger=str(tmp_path / "ledger"), keys=str(tmp_path / "keys"))))
    response = client.post("/v1/activations", json={"request_code": code_for(key, "alpha")})
    assert response.status_code == 503
    reply = response.json()
    assert reply["code"] == "private-key-error" and reply["incident"] in reply["detail"]
    assert ".pem" not in reply["detail"] and "keys" not in reply["detail"]  # the set-up stays private
    assert any(reply["incident"] in r.getMessage() and "readable by others" in r.getMessage() for r in caplog.records)
    assert iss.show(iss.licenses()[0].license_id).state == "issued"  # nothing was burnt
