"""Hypothesis: no single-character change to a token survives verification."""

from __future__ import annotations

import string
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support import FakeClock, Provider

from verifier import LicenseError, Verifier


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> tuple[Verifier, str]:
    provider = Provider(Path(tmp_path_factory.mktemp("keys")), FakeClock())
    return provider.verifier(), provider.token()


CHARS = st.characters(codec="utf-8") | st.sampled_from(string.ascii_letters + string.digits + "-_.=")


@settings(max_examples=400, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_any_single_character_change_is_rejected(setup: tuple[Verifier, str], data: st.DataObject) -> None:
    verifier, token = setup
    assert verifier.verify(token)
    position = data.draw(st.integers(0, len(token) - 1), label="position")
    replacement = data.draw(CHARS.filter(lambda c: c != token[position]), label="replacement")
    tampered = token[:position] + replacement + token[position + 1 :]
    with pytest.raises(LicenseError):
        verifier.verify(tampered)


@settings(max_examples=200, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(junk=st.text(max_size=2000) | st.binary(max_size=2000).map(lambda b: b.decode("latin-1")))
def test_arbitrary_text_is_rejected_with_a_license_error(setup: tuple[Verifier, str], junk: str) -> None:
    verifier, _ = setup
    with pytest.raises(LicenseError):
        verifier.verify(junk)


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4),
    max_leaves=12,
)
CLAIM_NAMES = st.sampled_from(["iss", "sub", "aud", "jti", "iat", "nbf", "exp", "fpr", "features", "limits", "ip"])
HEADER_NAMES = st.sampled_from(["alg", "typ", "kid", "crit", "jwk", "jku"])


@settings(max_examples=300, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    header=st.dictionaries(HEADER_NAMES | st.text(max_size=8), JSON, max_size=5),
    claims=st.dictionaries(CLAIM_NAMES | st.text(max_size=8), JSON, max_size=12),
)
def test_any_signed_header_and_claims_either_verify_or_raise_a_license_error(
    setup: tuple[Verifier, str], header: dict, claims: dict  # type: ignore[type-arg]
) -> None:
    verifier, _ = setup
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from support import forge

    token = forge(header, claims, Ed25519PrivateKey.generate())
    with pytest.raises(LicenseError):
        verifier.verify(token)
