"""Which addresses the license server may call back, and whose address it believes."""

from __future__ import annotations

import pytest

from issuer.server import callback_allowed

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
