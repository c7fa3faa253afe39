"""Refusals of the provider's key management (part of the one LicenseError tree).

The classes live in :mod:`verifier.errors`: a license server answers with them
when its keys are unusable, and a panel, which imports only ``verifier``,
rebuilds them from their codes. They are importable from here as well.
"""

from __future__ import annotations

from verifier.errors import KeyringError, NoActiveKeyError, PassphraseError, PrivateKeyError

__all__ = ["KeyringError", "NoActiveKeyError", "PassphraseError", "PrivateKeyError"]
