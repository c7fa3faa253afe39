"""Hypothesis: no byte flip in a signed revocation list is accepted."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support import FakeClock, Provider

from verifier import LicenseError, RevocationsError
from verifier.revocations import REVOCATIONS_TYPE, build_revocation_claims, parse_revocations


@pytest.fixture(scope="module")
def signed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Provider, str]:
    clock = FakeClock()
    provider = Provider(Path(tmp_path_factory.mktemp("keys")), clock)
    claims = build_revocation_claims(issuer="acme-hosting", serial=7, issued_at=clock.now,
                                     expires_at=clock.now + dt.timedelta(days=30),
                                     licenses=["LIC-1", "LIC-2"], activations=["ACT-1"])
    return provider, provider.signer.sign(claims, typ=REVOCATIONS_TYPE)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_any_byte_flip_is_refused(signed: tuple[Provider, str], data: st.DataObject) -> None:
    provider, text = signed
    assert parse_revocations(text, provider.trusted()).serial == 7
    raw = bytearray(text.encode())
    position = data.draw(st.integers(0, len(raw) - 1), label="position")
    bit = data.draw(st.integers(0, 7), label="bit")
    raw[position] ^= 1 << bit
    tampered = raw.decode("latin-1")
    if tampered.strip() == text:
        return  # a flip that only changes surrounding whitespace is not a change of the list
    with pytest.raises(RevocationsError):
        parse_revocations(tampered, provider.trusted())


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(junk=st.text(max_size=2000))
def test_arbitrary_text_is_refused_with_a_license_error(signed: tuple[Provider, str], junk: str) -> None:
    provider, _ = signed
    with pytest.raises(LicenseError):
        parse_revocations(junk, provider.trusted())
