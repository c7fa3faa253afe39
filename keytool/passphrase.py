"""Where a private key's passphrase comes from: a file or the environment, never argv.

Shared by the keytool and issuer command lines. A passphrase on the command
line would show up in ``ps`` and shell history, so there is no option for it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from keytool.errors import PassphraseError
from verifier.fileio import os_error_words

__all__ = ["PASSPHRASE_ENV", "PASSPHRASE_FILE_ENV", "read_passphrase"]

PASSPHRASE_ENV = "LICET_KEY_PASSPHRASE"  # noqa: S105 - a variable name, not a secret
PASSPHRASE_FILE_ENV = "LICET_KEY_PASSPHRASE_FILE"  # noqa: S105 - a variable name
_MAX_PASSPHRASE_FILE = 4096


def read_passphrase(file: Path | None, environ: Mapping[str, str] = os.environ) -> bytes | None:
    """Return the passphrase from ``file``, else from the environment.

    Order: ``file``, ``$LICET_KEY_PASSPHRASE_FILE``, ``$LICET_KEY_PASSPHRASE``.

    One trailing newline is dropped from a file. ``None`` means no passphrase.

    Raises:
        PassphraseError: the file cannot be read or is empty.
    """
    path = file or (
        Path(environ[PASSPHRASE_FILE_ENV]) if environ.get(PASSPHRASE_FILE_ENV) else None
    )
    if path is not None:
        try:
            data = path.read_bytes()[:_MAX_PASSPHRASE_FILE]
        except OSError as err:
            raise PassphraseError(
                f"cannot read passphrase file {path}: {os_error_words(err)}"
            ) from err
        data = data.removesuffix(b"\n").removesuffix(b"\r")
        if not data:
            raise PassphraseError(f"passphrase file {path} is empty")
        return data
    value = environ.get(PASSPHRASE_ENV)
    return value.encode() if value else None
