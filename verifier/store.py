"""Where a panel keeps its activation token.

Example:
    >>> store = TokenStore("/var/lib/mypanel/license.token")  # doctest: +SKIP
    >>> store.save(token); store.load() == token  # doctest: +SKIP
    True
"""

from __future__ import annotations

import os
from pathlib import Path

from verifier.errors import TokenStoreError
from verifier.fileio import atomic_write, os_error_words, read_regular

__all__ = ["TokenStore", "default_store_path"]

_MAX_STORED = 64 * 1024


def default_store_path(product: str) -> Path:
    """The CLI's default store: ``licet-<product>.token`` in the current folder."""
    return Path(f"licet-{product}.token")


class TokenStore:
    """A token kept in one file, replaced atomically, mode 0600."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)

    def load(self) -> str | None:
        """Return the stored token, or ``None`` when there is none.

        An oversized file is returned cut short: the verifier's size limit
        then reports it as invalid instead of this reading it whole.

        Raises:
            TokenStoreError: the file exists but cannot be read, or is not a
                regular file (a FIFO there is refused, never waited on).
        """
        try:
            data = read_regular(self.path, _MAX_STORED)
        except OSError as err:
            raise TokenStoreError(f"cannot read {self.path}: {os_error_words(err)}") from err
        if data is None:
            return None
        text = data.decode("utf-8", errors="replace").strip()
        return text or None

    def save(self, token: str) -> None:
        """Store ``token``, replacing any previous one atomically.

        Raises:
            TokenStoreError: the folder is missing, not writable, read-only or
                full; the message names the store's file, and the previous
                token stays in place.
        """
        try:
            atomic_write(self.path, token.strip().encode("ascii", errors="strict") + b"\n")
        except UnicodeEncodeError as err:
            raise TokenStoreError("an activation token is ASCII text") from err
        except OSError as err:
            raise TokenStoreError(
                f"cannot write {self.path}: {os_error_words(err, writing=True)}; "
                "the stored token is unchanged"
            ) from err

    def delete(self) -> None:
        """Forget the stored token (no error if there is none)."""
        try:
            self.path.unlink()
        except FileNotFoundError:
            return
        except OSError as err:
            raise TokenStoreError(f"cannot remove {self.path}: {os_error_words(err)}") from err
