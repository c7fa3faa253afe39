"""licet's provider side: licenses, activation keys, the ledger, token issuing.

Example:
    >>> from issuer import Issuer
    >>> iss = Issuer(ledger="ledger", keys="keys")  # doctest: +SKIP
    >>> created = iss.create_license(product="ispmanager", days=365)  # doctest: +SKIP
    >>> token = iss.activate(request_code_text)  # doctest: +SKIP
"""

from __future__ import annotations

from issuer.config import IssuerConfig
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
from issuer.facade import Issuer
from issuer.ledger import LedgerBackend, open_ledger
from issuer.ledger.copy import copy_ledger
from issuer.licensing.activations import Activated
from issuer.licensing.licenses import LicenseSummaryView, LicenseView, Page
from issuer.policy.ratelimit import RateLimit
from issuer.records import Activation, Event, LicenseRecord, LicenseStatus

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
