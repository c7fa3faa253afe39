"""Refusals of the provider's key management (part of the one LicenseError tree).

The classes live in :mod:`verifier.errors`: a license server answers with them
when its keys are unusable, and a panel, which imports only ``verifier``,
rebuilds each from its code as the same class. They are importable from here,
their familiar home, as well.
"""

from __future__ import annotations

from verifier.errors import (
    KeyringError,
    KeyringMissingError,
    NoActiveKeyError,
    OutputRefusedError,
    PassphraseError,
    PrivateKeyError,
)

__all__ = [
    "KeyringError",
    "KeyringMissingError",
    "NoActiveKeyError",
    "OutputRefusedError",
    "PassphraseError",
    "PrivateKeyError",
]
