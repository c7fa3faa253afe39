"""Leases and renewal on the issuer: a fresh lease for the same activation, and every refusal."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from pgsupport import LedgerSite
from support import PRODUCT, FakeClock, panel_verifier, renewal_for, request_for

from issuer import Issuer
from verifier import (
    ActivationNotFoundError,
    ActivationSupersededError,
    BadInputError,
    LicenseExpiredError,
    LicenseNotFoundError,
    LicenseRevokedError,
    RenewalCodeError,
    WrongServerError,
)
from verifier.renewal import RenewalRequest, parse_renewal_code


def activate(iss: Issuer, server: str = "alpha", **create: object) -> tuple[str, str]:
    created = iss.create_license(PRODUCT, **create)  # type: ignore[arg-type]
    token = iss.redeem(request_for(created.activation_key, server), method="air-gapped").token
    return created.license_id, token


def test_lease_is_the_provider_default_and_renewal_extends_it(iss: Issuer, clock: FakeClock) -> None:
    license_id, token = activate(iss, days=365)
    v = panel_verifier(iss, "alpha", clock)
    first = v.verify(token)
    start = clock.now.replace(microsecond=0)
    assert first.expires_at == start + dt.timedelta(days=30)
    assert first.renew_at == start + dt.timedelta(days=20)
    assert first.license_expires_at == start + dt.timedelta(days=365)
    clock.advance(days=25)
    assert v.status(token).state == "grace"
    renewed_token = iss.renew(renewal_for(token, "alpha", clock=clock))
    renewed = v.verify(renewed_token)
    assert renewed.activation_id == first.activation_id
    # Renewed on Feb 9: 30 days would reach Mar 11, but a lease ends by the start of the
    # day a second regeneration could follow one made now (Mar 9), February being short.
    assert clock.now.date() == dt.date(2026, 2, 9)
    cap = dt.datetime(2026, 3, 9, tzinfo=dt.UTC)
    assert renewed.expires_at == cap
    record = iss.show(license_id).record
    assert record.history[-1].action == "renewed" and "air-gapped" in record.history[-1].detail
    assert record.activation is not None and record.activation.renewed_at == clock.now
    assert record.activation.lease_until == cap
    clock.advance(days=40)  # Mar 21: a 30-day month ahead, the full lease again
    again = v.verify(iss.renew(renewal_for(renewed_token, "alpha", clock=clock)))
    assert again.expires_at == clock.now.replace(microsecond=0) + dt.timedelta(days=30)


def test_an_expired_token_whose_activation_is_current_still_renews(iss: Issuer, clock: FakeClock) -> None:
    _, token = activate(iss)
    clock.advance(days=90)
    v = panel_verifier(iss, "alpha", clock)
    assert v.status(token).state == "expired"
    assert "lease" in (v.status(token).error.message)  # type: ignore[union-attr]
    assert v.status(iss.renew(renewal_for(token, "alpha", clock=clock))).state == "valid"


def test_lease_is_capped_by_the_license_expiry(iss: Issuer, clock: FakeClock) -> None:
    _, token = activate(iss, days=10)
    lic = panel_verifier(iss, "alpha", clock).verify(token)
    assert lic.exp == lic.license_exp
    clock.advance(days=11)
    status = panel_verifier(iss, "alpha", clock).status(token)
    assert status.state == "expired" and "license expired" in status.error.message  # type: ignore[union-attr]
    with pytest.raises(LicenseExpiredError):
        iss.renew(renewal_for(token, "alpha", clock=clock))


def test_per_license_lease_and_no_lease(iss: Issuer, clock: FakeClock) -> None:
    _, short = activate(iss, "s1", lease_days=7)
    assert panel_verifier(iss, "s1", clock).verify(short).expires_at == clock.now.replace(microsecond=0) + dt.timedelta(days=7)
    _, forever = activate(iss, "s2", days=400, lease_days=0)
    lic = panel_verifier(iss, "s2", clock).verify(forever)
    assert lic.exp == lic.license_exp and not lic.lease_limited
    with pytest.raises(BadInputError):
        iss.create_license(PRODUCT, lease_days=-1)
    with pytest.raises(BadInputError):
        iss.create_license(PRODUCT, lease_days=True)  # type: ignore[arg-type]


def test_reactivation_on_the_same_server_gives_a_fresh_lease(iss: Issuer, clock: FakeClock) -> None:
    created = iss.create_license(PRODUCT)
    first = iss.redeem(request_for(created.activation_key, "alpha"), method="air-gapped")
    clock.advance(days=10)
    again = iss.redeem(request_for(created.activation_key, "alpha"), method="air-gapped")
    assert again.activation_id == first.activation_id and not again.new
    v = panel_verifier(iss, "alpha", clock)
    assert v.verify(again.token).exp - v.verify(first.token).exp == 10 * 86400


def test_superseded_activation_cannot_renew(iss: Issuer, clock: FakeClock, site: LedgerSite) -> None:
    license_id, token = activate(iss)
    iss.regenerate(license_id)
    before = site.snapshot()
    with pytest.raises(ActivationSupersededError) as err:
        iss.renew(renewal_for(token, "alpha", clock=clock))
    assert err.value.http_status == 409 and err.value.code == "activation-superseded"
    assert site.snapshot() == before


def test_revoked_license_cannot_renew(iss: Issuer, clock: FakeClock) -> None:
    license_id, token = activate(iss)
    iss.revoke(license_id)
    with pytest.raises(LicenseRevokedError):
        iss.renew(renewal_for(token, "alpha", clock=clock))


def test_renewal_from_another_server_is_refused(iss: Issuer, clock: FakeClock, site: LedgerSite) -> None:
    _, token = activate(iss)
    before = site.snapshot()
    with pytest.raises(WrongServerError):
        iss.renew(renewal_for(token, "mallory", clock=clock))
    assert site.snapshot() == before


def test_unknown_activation_and_license_are_refused(iss: Issuer, clock: FakeClock) -> None:
    _, token = activate(iss)
    request = parse_renewal_code(renewal_for(token, "alpha", clock=clock))
    forged = RenewalRequest(**{**request.__dict__, "activation_id": "ACT-NOPE"})
    with pytest.raises(ActivationNotFoundError):
        iss.renew(forged.encode())
    elsewhere = RenewalRequest(**{**request.__dict__, "license_id": "LIC-NOPE"})
    with pytest.raises(LicenseNotFoundError):
        iss.renew(elsewhere.encode())


@pytest.mark.parametrize("mangle", [
    lambda c: c[:-6],  # truncated
    lambda c: c[:20] + ("A" if c[20] != "A" else "B") + c[21:],  # one character changed
    lambda c: "LICET1." + c[len("LICET1R."):],  # an activation request prefix
    lambda c: "LICET7R." + c[len("LICET1R."):],  # another version
    lambda c: "",
    lambda c: "garbage",
])
def test_damaged_renewal_codes_are_refused_with_one_line(iss: Issuer, clock: FakeClock, site: LedgerSite, mangle) -> None:  # type: ignore[no-untyped-def]
    _, token = activate(iss)
    before = site.snapshot()
    with pytest.raises(RenewalCodeError) as err:
        iss.renew(mangle(renewal_for(token, "alpha", clock=clock)))
    assert "\n" not in err.value.message
    assert site.snapshot() == before


def test_revocation_serial_grows_with_each_regeneration_and_revocation(iss: Issuer, clock: FakeClock) -> None:
    assert iss.ledger.revocations() == (0, [])
    license_id, _ = activate(iss)
    iss.regenerate(license_id)
    serial, entries = iss.ledger.revocations()
    assert serial == 1 and [e.kind for e in entries] == ["activation"]
    other, _ = activate(iss, "beta")
    iss.revoke(other)
    serial, entries = iss.ledger.revocations()
    assert serial == 2 and sorted(e.kind for e in entries) == ["activation", "license"]


def test_entries_are_pruned_once_every_token_they_affect_has_expired(iss: Issuer, clock: FakeClock, tmp_path: Path) -> None:
    license_id, _ = activate(iss)
    iss.regenerate(license_id)
    _, entries = iss.ledger.revocations()
    assert entries[0].until == clock.now + dt.timedelta(days=30)
    text = iss.revocation_list()
    assert iss.revocation_list() == text  # one list per serial and day
    clock.advance(days=32)
    v = panel_verifier(iss, "alpha", clock)
    assert len(v.apply_revocations(iss.revocation_list())) == 0
    # The next change drops it from the ledger as well.
    clock.advance(days=1)
    iss.regenerate(license_id)
    serial, entries = iss.ledger.revocations()
    assert serial == 2 and entries == []


def test_the_ledger_tells_its_revocation_serial_without_reading_the_list(iss: Issuer) -> None:
    assert iss.ledger.revocation_serial() == 0
    license_id, _ = activate(iss)
    iss.regenerate(license_id)
    assert iss.ledger.revocation_serial() == iss.ledger.revocations()[0] == 1
    other, _ = activate(iss, "beta")
    iss.revoke(other)
    assert iss.ledger.revocation_serial() == iss.ledger.revocations()[0] == 2


def test_an_unchanged_list_is_answered_from_memory_by_every_copy_of_the_issuer(
    iss: Issuer, clock: FakeClock, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import jwt

    from keytool import Keyring

    license_id, _ = activate(iss)
    iss.regenerate(license_id)
    reads: list[int] = []
    backend = type(iss.ledger)
    read_entries = backend.revocations
    monkeypatch.setattr(backend, "revocations", lambda self: reads.append(1) or read_entries(self))
    first = iss.revocation_list()
    copies = [iss.acting_as(f"api:client-{n}") for n in range(3)]  # one per request, as the web layer makes
    assert [c.revocation_list() for c in copies] == [first] * 3
    assert len(reads) == 1  # the entries were read once, for the first answer
    # A change moves the serial: the next answer, from any copy, reads the entries again.
    other, _ = activate(iss, "beta")
    iss.revoke(other)
    changed = copies[0].revocation_list()
    assert len(reads) == 2 and changed != first
    assert other in panel_verifier(iss, "alpha", clock).apply_revocations(changed).licenses
    assert iss.revocation_list() == changed and len(reads) == 2
    # A rotated signing key re-signs the list at once; so does the next UTC day.
    Keyring(tmp_path / "keys", clock=clock).rotate()
    rotated = copies[1].revocation_list()
    assert jwt.get_unverified_header(rotated)["kid"] != jwt.get_unverified_header(changed)["kid"]
    assert len(reads) == 3
    clock.advance(days=1)
    assert iss.revocation_list() != rotated and len(reads) == 4
