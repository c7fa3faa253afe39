"""licet's provider side: licenses, activation keys, the ledger, token issuing.

Example:
    >>> from issuer import Issuer
    >>> iss = Issuer(ledger="ledger", keys="keys")  # doctest: +SKIP
    >>> created = iss.create_license(product="ispmanager", days=365)  # doctest: +SKIP
    >>> token = iss.activate(request_code_text)  # doctest: +SKIP
"""

from __future__ import annotations

from issuer.errors import (
    LedgerBusyError,
    LedgerCorruptError,
    LedgerError,
    LedgerExistsError,
    LedgerMissingError,
    LedgerUnavailableError,
    LedgerVersionError,
    LedgerWriteError,
    ListenError,
    UnknownProductError,
)
from issuer.ledger import LedgerBackend, open_ledger
from issuer.ledger.copy import copy_ledger
from issuer.policy.ratelimit import RateLimit
from issuer.records import Activation, Event, LicenseRecord, LicenseStatus
from issuer.service import Activated, Issuer, IssuerConfig, LicenseSummaryView, LicenseView, Page

__all__ = [
    "Activated",
    "Activation",
    "Event",
    "Issuer",
    "IssuerConfig",
    "LedgerBusyError",
    "LedgerCorruptError",
    "LedgerError",
    "LedgerExistsError",
    "LedgerBackend",
    "LedgerMissingError",
    "LedgerUnavailableError",
    "LedgerVersionError",
    "LedgerWriteError",
    "LicenseRecord",
    "LicenseStatus",
    "LicenseSummaryView",
    "LicenseView",
    "Page",
    "ListenError",
    "RateLimit",
    "UnknownProductError",
    "copy_ledger",
    "open_ledger",
]
