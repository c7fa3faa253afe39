"""Typed values that keep their wire form: KEEP, LicenseStatus, a rebuilt error's code."""

from __future__ import annotations

import enum
import json
from pathlib import Path

from support import PRODUCT, FakeClock, make_issuer

from issuer.licensing.licenses import KEEP, Keep
from issuer.records import LicenseStatus
from verifier import errors


def test_keep_is_an_enum_member_and_leaves_every_field_as_it_is(tmp_path: Path) -> None:
    assert isinstance(KEEP, Keep) and isinstance(KEEP, enum.Enum)
    iss = make_issuer(tmp_path, FakeClock())
    created = iss.licensing.create(PRODUCT, customer="Acme", ip="203.0.113.7", days=30, lease_days=7)
    kept = iss.licensing.update(created.license_id, customer=KEEP, ip=KEEP, expires=KEEP, lease_days=KEEP)
    assert kept.record == created.record  # nothing changed, no event either
    cleared = iss.licensing.update(created.license_id, customer=None, lease_days=None)
    assert (cleared.record.customer, cleared.record.lease_days) == (None, None)
    assert cleared.record.ip == "203.0.113.7"


def test_license_status_members_are_the_strings_records_and_documents_carry(tmp_path: Path) -> None:
    assert issubclass(LicenseStatus, enum.StrEnum)
    assert [s.value for s in LicenseStatus] == ["issued", "activated", "revoked", "expired"]
    assert LicenseStatus.STORED == ("issued", "activated", "revoked")
    iss = make_issuer(tmp_path, FakeClock())
    view = iss.licensing.create(PRODUCT)
    document = json.loads(json.dumps(view.to_dict()))
    assert document["status"] == "issued" and type(document["status"]) is str
    assert f"{LicenseStatus.REVOKED}" == str(LicenseStatus.REVOKED) == "revoked"


def test_an_unknown_or_malformed_code_comes_back_as_a_plain_error_carrying_that_code() -> None:
    unknown = errors.error_for_code("from-the-future", "something new")
    assert type(unknown) is errors.LicenseError and unknown.code == "from-the-future"
    # RegenerationTooSoonError needs its date: without one it falls back the same way.
    malformed = errors.error_for_code("regeneration-too-soon", "wait", {"allowed_from": "not a date"})
    assert type(malformed) is errors.LicenseError and malformed.code == "regeneration-too-soon"
    assert errors.LicenseError.code == "license-error"  # the instance's code, not the class's
