"""The signed revocation list on the panel: applied offline, never rolled back, never forged."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from support import PRODUCT, FakeClock, Provider, forge, panel_verifier, request_for

from issuer import Issuer
from keytool import Keyring
from verifier import (
    ActivationSupersededError,
    LicenseRevokedError,
    RevocationsError,
    RevocationsRollbackError,
    TokenState,
    TokenStore,
    TrustedKeys,
    Verifier,
)
from verifier.revocations import REVOCATIONS_TYPE, build_revocation_claims, parse_revocations


def activate(iss: Issuer, server: str) -> tuple[str, str]:
    created = iss.create_license(PRODUCT)
    return created.license_id, iss.redeem(request_for(created.activation_key, server), method="air-gapped").token


def test_superseded_and_revoked_tokens_are_refused_offline(iss: Issuer, clock: FakeClock, tmp_path: Path) -> None:
    old_license, old_token = activate(iss, "alpha")
    gone_license, gone_token = activate(iss, "beta")
    iss.regenerate(old_license)
    iss.revoke(gone_license)
    alpha = panel_verifier(iss, "alpha", clock, TokenStore(tmp_path / "alpha.token"))
    beta = panel_verifier(iss, "beta", clock, TokenStore(tmp_path / "beta.token"))
    assert alpha.status(old_token).state == TokenState.VALID  # no list yet: runs to the end of its lease
    listing = iss.revocation_list()
    assert alpha.apply_revocations(listing).serial == 2
    beta.apply_revocations(listing)
    with pytest.raises(ActivationSupersededError):
        alpha.verify(old_token)
    with pytest.raises(LicenseRevokedError):
        beta.verify(gone_token)
    assert alpha.status(old_token).state == TokenState.SUPERSEDED
    assert beta.status(gone_token).state == TokenState.REVOKED
    # Kept beside the token: a restarted panel still refuses.
    again = panel_verifier(iss, "alpha", clock, TokenStore(tmp_path / "alpha.token"))
    assert again.revocations is not None and again.revocations.serial == 2
    assert again.status(old_token).state == TokenState.SUPERSEDED


def test_a_lower_serial_is_refused_and_changes_nothing(iss: Issuer, clock: FakeClock, tmp_path: Path) -> None:
    license_id, token = activate(iss, "alpha")
    older = iss.revocation_list()  # serial 0
    iss.regenerate(license_id)
    newer = iss.revocation_list()
    store = TokenStore(tmp_path / "alpha.token")
    v = panel_verifier(iss, "alpha", clock, store)
    v.apply_revocations(newer)
    with pytest.raises(RevocationsRollbackError) as err:
        v.apply_revocations(older)
    assert err.value.code == "revocations-rollback"
    assert store.load_revocations() == newer and v.revocations is not None and v.revocations.serial == 1
    assert v.status(token).state == TokenState.SUPERSEDED


def test_the_same_serial_signed_later_refreshes_a_stale_list(iss: Issuer, clock: FakeClock) -> None:
    first = iss.revocation_list(days=1)
    v = panel_verifier(iss, "alpha", clock)
    v.apply_revocations(first)
    clock.advance(days=2)
    assert v.revocations is not None and v.revocations.stale(clock.now.timestamp())
    assert any("stale" in note for note in v.notes)
    refreshed = iss.revocation_list(days=1)
    assert refreshed != first and v.apply_revocations(refreshed).iat > v.apply_revocations(first).iat - 1
    assert not any("stale" in note for note in v.notes)


def test_a_stale_list_still_applies(iss: Issuer, clock: FakeClock) -> None:
    license_id, token = activate(iss, "alpha")
    iss.regenerate(license_id)
    v = panel_verifier(iss, "alpha", clock)
    v.apply_revocations(iss.revocation_list(days=1))
    clock.advance(days=3)
    status = v.status(token)
    assert status.state == TokenState.SUPERSEDED
    assert status.to_dict()["revocations_stale"] is True


def test_tampered_list_is_refused(iss: Issuer, clock: FakeClock) -> None:
    text = iss.revocation_list()
    head, body, sig = text.split(".")
    flipped = body[:-2] + ("A" if body[-2] != "A" else "B") + body[-1]
    with pytest.raises(RevocationsError, match="signature"):
        panel_verifier(iss, "alpha", clock).apply_revocations(f"{head}.{flipped}.{sig}")


def test_list_signed_by_an_untrusted_key_is_refused(iss: Issuer, clock: FakeClock, tmp_path: Path) -> None:
    stranger = Provider(tmp_path / "stranger", clock)
    claims = build_revocation_claims(issuer=iss.provider, serial=99, issued_at=clock.now,
                                     expires_at=clock.now + dt.timedelta(days=30), licenses=[], activations=[])
    text = stranger.signer.sign(claims, typ=REVOCATIONS_TYPE)
    with pytest.raises(RevocationsError, match="unknown key"):
        panel_verifier(iss, "alpha", clock).apply_revocations(text)


def revoke_signing_key(iss: Issuer, clock: FakeClock) -> TrustedKeys:
    """Rotate and revoke the signing key; return a trust set that lists it as revoked."""
    ring = Keyring(iss.keys, clock=clock)
    old = ring.active().kid
    ring.rotate()
    ring.revoke(old)
    jwks = ring.trusted_keys().to_jwks()  # the current export leaves the revoked key out
    revoked = next(r for r in ring.records() if r.kid == old)
    jwks["keys"].append(revoked.trusted().to_jwk())
    return TrustedKeys.from_jwks(jwks)


def test_list_signed_by_a_revoked_key_is_refused(iss: Issuer, clock: FakeClock) -> None:
    text = iss.revocation_list()
    marked = revoke_signing_key(iss, clock)
    with pytest.raises(RevocationsError, match="unknown key"):
        panel_verifier(iss, "alpha", clock).apply_revocations(text)  # the current trust set
    with pytest.raises(RevocationsError, match="revoked key"):
        parse_revocations(text, marked)  # a trust set that still lists the key, as revoked


def test_a_token_signed_by_a_revoked_key_is_in_the_revoked_state(iss: Issuer, clock: FakeClock) -> None:
    _, token = activate(iss, "alpha")
    marked = revoke_signing_key(iss, clock)
    v = Verifier(PRODUCT, marked, clock=clock, machine_id="machine-alpha")
    assert v.status(token).state == TokenState.REVOKED
    assert panel_verifier(iss, "alpha", clock).status(token).state == TokenState.INVALID  # unknown key


def test_a_list_of_another_type_or_issuer_is_refused(iss: Issuer, clock: FakeClock) -> None:
    keys = Keyring(iss.keys).trusted_keys()
    signer = Keyring(iss.keys).signer()
    claims = build_revocation_claims(issuer="someone-else", serial=5, issued_at=clock.now,
                                     expires_at=clock.now + dt.timedelta(days=30), licenses=[], activations=[])
    with pytest.raises(RevocationsError, match="issued by 'someone-else'"):
        panel_verifier(iss, "alpha", clock).apply_revocations(signer.sign(claims, typ=REVOCATIONS_TYPE))
    with pytest.raises(RevocationsError, match="type"):
        parse_revocations(signer.sign(claims), keys)  # an activation token's typ
    _, token = activate(iss, "alpha")
    with pytest.raises(RevocationsError):
        panel_verifier(iss, "alpha", clock).apply_revocations(token)
    # A verifier without a configured issuer pins the issuer of the first list it applies.
    free = Verifier(PRODUCT, keys, clock=clock)
    free.apply_revocations(iss.revocation_list())
    with pytest.raises(RevocationsError, match="issued by"):
        free.apply_revocations(signer.sign(claims, typ=REVOCATIONS_TYPE))


@pytest.mark.parametrize("payload", [
    b"not json", b"[]", b'{"iss": "acme-hosting"}',
    b'{"iss": "acme-hosting", "serial": -1, "iat": 1, "exp": 2, "revoked": {"licenses": [], "activations": []}}',
    b'{"iss": "acme-hosting", "serial": 1, "iat": true, "exp": 2, "revoked": {"licenses": [], "activations": []}}',
    b'{"iss": "acme-hosting", "serial": 1, "iat": 1800000000, "exp": 1800000001, "revoked": {"licenses": [1], "activations": []}}',
    b'{"iss": "acme-hosting", "serial": 1, "iat": 1800000000, "exp": 1800000001, "revoked": []}',
])
def test_malformed_signed_lists_are_refused(provider: Provider, clock: FakeClock, payload: bytes) -> None:
    header = {"alg": "EdDSA", "typ": REVOCATIONS_TYPE, "kid": provider.record.kid}
    with pytest.raises(RevocationsError):
        parse_revocations(forge(header, payload, provider.private_key), provider.trusted())


@pytest.mark.parametrize("text", ["", "a.b", "a.b.c", "x" * 5_000_000, 42, None])
def test_garbage_lists_are_refused_with_one_line(provider: Provider, text: object) -> None:
    with pytest.raises(RevocationsError) as err:
        parse_revocations(text, provider.trusted())
    assert "\n" not in err.value.message and len(err.value.message) < 200


def test_ten_thousand_entries(provider: Provider, clock: FakeClock) -> None:
    claims = build_revocation_claims(issuer="acme-hosting", serial=3, issued_at=clock.now,
                                     expires_at=clock.now + dt.timedelta(days=30),
                                     licenses=[f"LIC-{i:06d}" for i in range(5000)],
                                     activations=[f"ACT-{i:06d}" for i in range(4999)] + ["ACT-TEST"])
    v = provider.verifier()
    assert len(v.apply_revocations(provider.signer.sign(claims, typ=REVOCATIONS_TYPE))) == 10_000
    with pytest.raises(ActivationSupersededError):
        v.verify(provider.token())


def test_a_running_panel_picks_up_a_list_installed_by_another_process(iss: Issuer, clock: FakeClock, tmp_path: Path) -> None:
    license_id, token = activate(iss, "alpha")
    store = TokenStore(tmp_path / "alpha.token")
    store.save(token)
    running = panel_verifier(iss, "alpha", clock, store)
    assert running.status(token).state == TokenState.VALID
    older = iss.revocation_list()
    iss.regenerate(license_id)
    # The admin's `verifier revocations install` is another verifier on the same store.
    panel_verifier(iss, "alpha", clock, TokenStore(store.path)).apply_revocations(iss.revocation_list())
    clock.advance(minutes=6)  # the running panel looks at the store when it saves its clock mark
    running.status(token)
    assert running.status(token).state == TokenState.SUPERSEDED
    # A file swapped back to an older list un-revokes nothing in the running panel.
    store.revocations_path.write_text(older)
    clock.advance(minutes=6)
    running.status(token)
    assert running.status(token).state == TokenState.SUPERSEDED
