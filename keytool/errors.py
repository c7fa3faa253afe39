"""Refusals of the provider's key management (part of the one LicenseError tree).

The classes live in :mod:`verifier.errors`: a license server answers with them
when its keys are unusable, and a panel, which imports only ``verifier``,
rebuilds them from their codes. They are importable from here as well.
:class:`OutputRefusedError`, which only the command line meets, lives here.
"""

from __future__ import annotations

from verifier.errors import (
    KeyringError,
    KeyringMissingError,
    LicenseError,
    NoActiveKeyError,
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


class OutputRefusedError(LicenseError):
    """An output file (``--out``) would replace something it must not.

    Key material (private keys, the keyring, the activation-key secret) and
    the ledger are never overwritten, whatever the flags; any other existing
    file only when it is an earlier output of the same command, or with ``--force``.
    """

    code = "output-refused"
    default_message = "refusing to overwrite that file"
