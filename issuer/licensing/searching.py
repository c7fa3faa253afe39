"""What a support desk's search text names: a license id, an IP address, a current key, or text.

One rule for every door (console, admin API, ``issuer license list --search``);
the ledger only finds what this asks it for.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import replace

from issuer.ledger.api import LedgerBackend
from issuer.licensing.minting import key_hash
from issuer.records import LicenseQuery, LicenseRecord, LicenseSummary
from verifier.activation_key import normalize_key
from verifier.errors import ActivationKeyFormatError, LicenseNotFoundError

__all__ = ["WHOLE_ID", "by_current_key", "meaning"]

#: A whole license id, as people type it (any case).
WHOLE_ID = re.compile(r"LIC-[0-9A-Z]{10}", re.IGNORECASE)


def meaning(
    ledger: LedgerBackend, query: LicenseQuery
) -> tuple[LicenseQuery, list[LicenseSummary] | None]:
    """What the search text names, and the licenses it names when they are found directly.

    A whole license id, an IP address or a current activation key names
    licenses the ledger finds by its indexes; the query then asks the
    ledger for exactly those. Any other text (an old key included: keys are
    never stored, so it matches nothing) is searched for as it is.
    """
    text = query.text
    if text is None:
        return query, None
    if WHOLE_ID.fullmatch(text):
        license_id = text.upper()
        try:
            found = [LicenseSummary.of(ledger.get(license_id))]
        except LicenseNotFoundError:
            found = []
        return replace(query, text=None, license_id=license_id), found
    ip = _address(text)
    if ip is not None:
        records = ledger.licenses_for_ip(ip)
        return replace(query, text=None, ip=ip), [LicenseSummary.of(r) for r in records]
    record = by_current_key(ledger, text)
    if record is not None:
        return replace(query, text=None, license_id=record.license_id), [LicenseSummary.of(record)]
    return query, None


def by_current_key(ledger: LedgerBackend, text: str) -> LicenseRecord | None:
    """The license whose current activation key ``text`` is, typed as keys are typed."""
    try:
        wanted = key_hash(normalize_key(text))
    except ActivationKeyFormatError:
        return None
    record = ledger.license_by_key(wanted)
    if record is None or record.key_hash != wanted:  # unknown, or replaced by a regeneration
        return None
    return record


def _address(text: str) -> str | None:
    """The canonical form of an IP address, or ``None`` when ``text`` is not one."""
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        return None
