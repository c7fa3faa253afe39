"""The Issuer façade; the activation outcomes are numbered as in :mod:`issuer.policy`."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from pgsupport import LedgerSite
from support import PRODUCT, FakeClock, request_for, server_fp

from issuer import Issuer, LedgerExistsError
from keytool import PrivateKeyError
from verifier import (
    AlreadyActivatedError,
    BadInputError,
    InvalidActivationKeyError,
    LicenseExpiredError,
    LicenseNotFoundError,
    LicenseRevokedError,
    ProductMismatchError,
    TrustedKeys,
    Verifier,
)


def verify_on(iss: Issuer, token: str, server: str, clock: FakeClock):  # type: ignore[no-untyped-def]
    from keytool import Keyring

    trusted = Keyring(iss.keys).trusted_keys()
    return Verifier(PRODUCT, trusted, clock=clock, issuer=iss.provider, server_fingerprint=server_fp(server)).verify(token)


def test_create_shows_a_key_that_activates(iss: Issuer, clock: FakeClock) -> None:
    created = iss.create_license(PRODUCT, days=30, features=["dns", "mail"], limits={"domains": 5}, customer="Bob")
    assert created.state == "issued"
    result = iss.redeem(request_for(created.activation_key, "alpha"), method="air-gapped")
    assert result.new
    lic = verify_on(iss, result.token, "alpha", clock)
    assert lic.license_id == created.license_id
    assert lic.has("dns") and lic.limits["domains"] == 5
    assert lic.expires_at == clock.now.replace(microsecond=0) + dt.timedelta(days=30)
    shown = iss.show(created.license_id)
    assert shown.state == "activated"
    assert shown.record.activation is not None and shown.record.activation.hostname == "alpha"
    assert [e.action for e in shown.record.history] == ["created", "activated"]


def test_outcome_1_unknown_key(iss: Issuer) -> None:
    from verifier.activation_key import key_from_bytes

    iss.create_license(PRODUCT)
    with pytest.raises(InvalidActivationKeyError):
        iss.redeem(request_for(key_from_bytes(bytes(15)), "alpha"), method="air-gapped")


def test_outcome_2_revoked_expired_wrong_product(iss: Issuer, clock: FakeClock) -> None:
    revoked = iss.create_license(PRODUCT)
    iss.revoke(revoked.license_id)
    with pytest.raises(LicenseRevokedError, match="revoked"):
        iss.redeem(request_for(revoked.activation_key, "alpha"), method="air-gapped")
    expiring = iss.create_license(PRODUCT, days=1)
    other = iss.create_license("otherpanel", new_product=True)
    clock.advance(days=2)
    with pytest.raises(LicenseExpiredError, match="expired on"):
        iss.redeem(request_for(expiring.activation_key, "alpha"), method="air-gapped")
    assert iss.show(expiring.license_id).state == "expired"
    with pytest.raises(ProductMismatchError, match="otherpanel"):
        iss.redeem(request_for(other.activation_key, "alpha"), method="air-gapped")


def test_outcome_4_same_server_gets_the_same_activation(iss: Issuer, clock: FakeClock) -> None:
    key = iss.create_license(PRODUCT).activation_key
    first = iss.redeem(request_for(key, "alpha"), method="air-gapped")
    clock.advance(days=10)
    again = iss.redeem(request_for(key, "alpha"), method="air-gapped")
    assert not again.new
    assert again.activation_id == first.activation_id
    assert verify_on(iss, again.token, "alpha", clock).activation_id == first.activation_id


def test_outcome_4_holds_after_a_nic_change(iss: Issuer) -> None:
    from verifier.fingerprint import fingerprint_from_sources
    from verifier.request import ActivationRequest

    key = iss.create_license(PRODUCT).activation_key
    base = request_for(key, "alpha")
    first = iss.redeem(base, method="air-gapped")
    new_nic = fingerprint_from_sources(PRODUCT, "machine-alpha", "uuid-alpha", ["52:54:00:ff:ff:ff"])
    moved = ActivationRequest(PRODUCT, base.activation_key, new_nic, "alpha", "n", base.created_at)
    assert iss.redeem(moved, method="air-gapped").activation_id == first.activation_id


def test_outcome_5_other_server_is_refused_and_nothing_changes(iss: Issuer, site: LedgerSite) -> None:
    key = iss.create_license(PRODUCT).activation_key
    iss.redeem(request_for(key, "alpha"), method="air-gapped")
    before = site.snapshot()
    with pytest.raises(AlreadyActivatedError, match="ask your provider to regenerate"):
        iss.redeem(request_for(key, "beta"), method="air-gapped")
    assert site.snapshot() == before


def test_regeneration_kills_the_old_key_and_frees_the_license(iss: Issuer, clock: FakeClock) -> None:
    created = iss.create_license(PRODUCT)
    old_key = created.activation_key
    first = iss.redeem(request_for(old_key, "alpha"), method="air-gapped")
    regenerated = iss.regenerate(created.license_id)
    assert regenerated.activation_key != old_key
    assert regenerated.state == "issued"
    assert [a.activation_id for a in regenerated.record.past_activations] == [first.activation_id]
    with pytest.raises(InvalidActivationKeyError):
        iss.redeem(request_for(old_key, "alpha"), method="air-gapped")
    second = iss.redeem(request_for(regenerated.activation_key, "beta"), method="air-gapped")
    assert second.activation_id != first.activation_id
    assert verify_on(iss, second.token, "beta", clock).license_id == created.license_id


def test_show_is_stable_and_keys_are_never_stored(iss: Issuer, site: LedgerSite) -> None:
    created = iss.create_license(PRODUCT)
    assert iss.show(created.license_id).activation_key == created.activation_key
    raw = site.raw()
    assert created.license_id.encode() in raw  # the snapshot does hold the ledger
    assert created.activation_key.encode() not in raw
    assert created.activation_key.replace("-", "").encode() not in raw


def test_token_lifetime_is_the_lease(tmp_path: Path, clock: FakeClock, site: LedgerSite) -> None:
    from support import make_issuer

    iss = make_issuer(tmp_path, clock, ledger=site.url, lease_days=7)
    key = iss.create_license(PRODUCT).activation_key  # no expiry
    token = iss.redeem(request_for(key, "alpha"), method="air-gapped").token
    lic = verify_on(iss, token, "alpha", clock)
    start = clock.now.replace(microsecond=0)
    assert lic.expires_at == start + dt.timedelta(days=7)
    assert lic.renew_at == lic.expires_at - dt.timedelta(days=7) / 3
    assert lic.license_expires_at is None


@pytest.mark.parametrize(
    "kwargs",
    [
        {"product": "bad product"},
        {"product": ""},
        {"product": PRODUCT, "ip": "300.1.1.1"},
        {"product": PRODUCT, "days": 0},
        {"product": PRODUCT, "days": 10, "expires": dt.date(2030, 1, 1)},
        {"product": PRODUCT, "expires": dt.date(2020, 1, 1)},
        {"product": PRODUCT, "features": ["has space"]},
        {"product": PRODUCT, "limits": {"domains": -1}},
    ],
)
def test_bad_license_arguments_are_refused(iss: Issuer, site: LedgerSite, kwargs: dict) -> None:  # type: ignore[type-arg]
    before = site.snapshot()
    with pytest.raises(BadInputError):
        iss.create_license(**kwargs)
    assert site.snapshot() == before


def test_expires_means_through_that_day(iss: Issuer) -> None:
    view = iss.create_license(PRODUCT, expires=dt.date(2027, 3, 31))
    assert view.record.expires_at == dt.datetime(2027, 4, 1, tzinfo=dt.UTC)


def test_ip_is_normalized(iss: Issuer) -> None:
    assert iss.create_license(PRODUCT, ip="2001:DB8:0:0::1").record.ip == "2001:db8::1"


def test_unknown_license(iss: Issuer) -> None:
    with pytest.raises(LicenseNotFoundError):
        iss.show("LIC-NOPE")
    with pytest.raises(LicenseNotFoundError):
        iss.regenerate("LIC-NOPE")


def test_init_never_overwrites(iss: Issuer, tmp_path: Path, clock: FakeClock, site: LedgerSite) -> None:
    iss.create_license(PRODUCT)
    before = site.snapshot()
    with pytest.raises(LedgerExistsError):
        Issuer.init(site.url, tmp_path / "keys", name="again", clock=clock)
    assert site.snapshot() == before


def test_secret_of_another_ledger_is_refused(tmp_path: Path, clock: FakeClock) -> None:
    from support import make_issuer

    make_issuer(tmp_path / "a", clock)
    make_issuer(tmp_path / "b", clock)
    with pytest.raises(PrivateKeyError, match="does not belong"):
        Issuer(tmp_path / "a" / "ledger", tmp_path / "b" / "keys")


def test_list_returns_every_license(iss: Issuer) -> None:
    ids = {iss.create_license(PRODUCT).license_id for _ in range(5)}
    assert {v.license_id for v in iss.licenses()} == ids


def test_files_are_private(iss: Issuer, tmp_path: Path) -> None:
    import stat

    iss.create_license(PRODUCT)
    for path in tmp_path.rglob("*"):
        mode = stat.S_IMODE(path.stat().st_mode)
        assert mode & 0o077 == 0, f"{path} is {oct(mode)}"
    assert stat.S_IMODE((tmp_path / "keys" / "activation-keys.secret").stat().st_mode) == 0o600
    _ = TrustedKeys


def test_readable_activation_key_secret_is_refused(iss: Issuer, tmp_path: Path, site: LedgerSite) -> None:
    import os

    os.chmod(tmp_path / "keys" / "activation-keys.secret", 0o644)
    with pytest.raises(PrivateKeyError, match="chmod 600"):
        Issuer(site.url, tmp_path / "keys")
    (tmp_path / "keys" / "activation-keys.secret").unlink()
    missing = str((tmp_path / "keys" / "activation-keys.secret").resolve())
    with pytest.raises(PrivateKeyError, match="is missing — point --keys") as refused:
        Issuer(site.url, tmp_path / "keys")
    assert missing in str(refused.value) and "issuer init" not in str(refused.value)


def test_product_typos_are_caught_against_the_products_the_ledger_knows(iss: Issuer, site: LedgerSite) -> None:
    from issuer import UnknownProductError

    first = iss.create_license(PRODUCT)  # a ledger's first product needs no flag
    before = site.snapshot()
    with pytest.raises(UnknownProductError, match=r"'ISPmanager' differs only in case from 'ispmanager'"):
        iss.create_license("ISPmanager")
    with pytest.raises(UnknownProductError, match="only in case"):
        iss.create_license("ISPMANAGER", new_product=True)  # a case twin is never a new product
    with pytest.raises(UnknownProductError, match=r"did you mean 'ispmanager'\?.*a new product \(new_product\)$"):
        iss.create_license("ispmanagr")
    with pytest.raises(UnknownProductError, match=r"'dnsmanager' is new to this ledger \(it has ispmanager\)"):
        iss.create_license("dnsmanager")
    assert site.snapshot() == before  # a refusal writes nothing

    other = iss.create_license("dnsmanager", new_product=True)
    assert iss.create_license("dnsmanager").record.product == other.record.product == "dnsmanager"
    assert iss.ledger.products() == {PRODUCT, "dnsmanager"}
    iss.revoke(first.license_id)
    assert PRODUCT in iss.ledger.products()  # a revoked license still names its product


def test_a_ledger_without_the_products_index_derives_it_from_its_licenses(
    iss: Issuer, tmp_path: Path, site: LedgerSite
) -> None:
    import shutil

    from issuer import UnknownProductError

    if site.kind == "postgres":
        pytest.skip("a PostgreSQL ledger gains the index in its schema upgrade (test_ledger_contract.py)")
    iss.create_license(PRODUCT)
    iss.create_license("dnsmanager", new_product=True)
    shutil.rmtree(tmp_path / "ledger" / "products")  # as a ledger made before the index existed
    assert iss.ledger.products() == {PRODUCT, "dnsmanager"}
    with pytest.raises(UnknownProductError, match="only in case"):
        iss.create_license("DNSmanager")
    iss.create_license("mailmanager", new_product=True)
    assert (tmp_path / "ledger" / "products" / "all.json").exists()
    assert iss.ledger.products() == {PRODUCT, "dnsmanager", "mailmanager"}


def test_rate_limited_clients_are_listed_with_their_release_time_and_cleared(
    iss: Issuer, clock: FakeClock, site: LedgerSite
) -> None:
    from issuer import IssuerConfig, RateLimit
    from verifier.activation_key import key_from_bytes

    strict = Issuer(site.url, iss.keys, clock=clock, config=IssuerConfig(rate_limit=RateLimit(limit=2)))
    wrong = request_for(key_from_bytes(b"\x09" * 15), "alpha")
    for client, minutes in (("2001:db8::7", 0), ("2001:db8::8", 5), ("198.51.100.4", 6)):
        clock.advance(minutes=minutes)
        with pytest.raises(InvalidActivationKeyError):
            strict.redeem(wrong, method="online", client=client)
    first = clock.now - dt.timedelta(minutes=11)
    listed = strict.rate_limited()
    assert [(r.bucket, r.failures) for r in listed] == [("2001:db8::/64", 2), ("198.51.100.4", 1)]
    # Two failures in the /64: free once the older one leaves the 15-minute window.
    assert listed[0].blocked_until == first.replace(microsecond=0) + dt.timedelta(minutes=15)
    assert listed[1].blocked_until is None

    assert strict.clear_rate_limit("2001:db8::1234") == ["2001:db8::/64"]  # any address of the network
    assert [r.bucket for r in strict.rate_limited()] == ["198.51.100.4"]
    with pytest.raises(BadInputError):
        strict.clear_rate_limit("not-an-ip")
    assert strict.clear_rate_limit() == ["198.51.100.4"]
    assert strict.rate_limited() == []
