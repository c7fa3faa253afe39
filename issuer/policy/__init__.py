"""The rules: pure functions over records, no I/O.

:mod:`~issuer.policy.lifecycle` is the license state machine (activation
outcomes, leases, renewal, monthly regeneration); :mod:`~issuer.policy.terms`
what a license may say; :mod:`~issuer.policy.revocations` what a change adds
to the revocation list; :mod:`~issuer.policy.ratelimit` the rate-limit rules.
The state machine's and the terms' names are importable from here as well
(``from issuer import policy; policy.redeem(...)``).

Example:
    >>> import datetime as dt
    >>> add_months(dt.datetime(2027, 1, 31, tzinfo=dt.timezone.utc), 1).date()
    datetime.date(2027, 2, 28)
"""

from __future__ import annotations

from issuer.policy.lifecycle import (
    EDITABLE,
    NO_LEASE_LIFETIME,
    Lease,
    add_months,
    amend,
    audited_fields,
    check_usable,
    current_key,
    effective_lease_days,
    lease_for,
    next_regeneration,
    recorded,
    redeem,
    regenerate,
    regeneration_allowed_from,
    renew,
    revoke,
)
from issuer.policy.terms import MAX_LEASE_DAYS, check_lease_days, check_product

__all__ = [
    "EDITABLE",
    "MAX_LEASE_DAYS",
    "NO_LEASE_LIFETIME",
    "Lease",
    "add_months",
    "amend",
    "audited_fields",
    "check_lease_days",
    "check_product",
    "check_usable",
    "current_key",
    "effective_lease_days",
    "lease_for",
    "next_regeneration",
    "regeneration_allowed_from",
    "recorded",
    "redeem",
    "regenerate",
    "renew",
    "revoke",
]
