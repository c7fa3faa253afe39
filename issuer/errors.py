"""Refusals of the provider's ledger (part of the one LicenseError tree).

The classes live in :mod:`verifier.errors`: a license server answers with them
(``ledger-busy`` when another process holds the lock, for instance), and a
panel, which imports only ``verifier``, rebuilds them from their codes. They
are importable from here as well.
"""

from __future__ import annotations

from verifier.errors import (
    LedgerBusyError,
    LedgerCorruptError,
    LedgerError,
    LedgerExistsError,
    LedgerMissingError,
    LedgerWriteError,
)

__all__ = [
    "LedgerBusyError",
    "LedgerCorruptError",
    "LedgerError",
    "LedgerExistsError",
    "LedgerMissingError",
    "LedgerWriteError",
]
