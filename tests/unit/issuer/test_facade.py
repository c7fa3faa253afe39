"""The Issuer façade: one ledger, keys and revocation-list cache, whoever acts through it."""

from __future__ import annotations

from typing import Any

from support import PRODUCT, FakeClock


def test_an_issuer_for_another_actor_shares_the_ledger_and_the_signed_list(iss: Any, clock: FakeClock) -> None:
    first = iss.create_license(PRODUCT)
    iss.revoke(first.license_id)
    signed = iss.signed_revocations()
    alice = iss.with_actor("console:alice")
    assert alice.ledger is iss.ledger and alice.accounts is iss.accounts
    assert alice.signed_revocations() is signed  # answered from the one cache, not signed again
    assert alice.acting_as("console:bob").signed_revocations() is signed


def test_an_issuer_for_another_actor_records_its_own_name_and_leaves_the_first_alone(iss: Any) -> None:
    created = iss.create_license(PRODUCT)
    alice = iss.with_actor("console:alice")
    alice.update_license(created.license_id, customer="Acme")
    assert iss.actor == "library" and alice.actor == "console:alice"
    assert iss.show(created.license_id).record.history[-1].actor == "console:alice"
    assert alice.licensing.actor == alice.activations.actor == "console:alice"
    assert iss.licensing.actor == "library"


def test_an_issuer_without_keys_never_gains_them_back(iss: Any) -> None:
    created = iss.create_license(PRODUCT)
    reader = iss.with_actor("api:reports", keys=False)
    assert reader.show(created.license_id).activation_key is None
    assert reader.with_actor("api:again").show(created.license_id).activation_key is None
    assert iss.show(created.license_id).activation_key == created.activation_key
