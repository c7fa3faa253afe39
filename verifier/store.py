"""Where a panel keeps its activation token, its revocation list and its clock mark.

The store's path holds the token alone — on one line: a token pasted into the
file from a mail (folded, ``> `` quoted) reads back whole, and :meth:`TokenStore.save`
writes it unfolded. Beside it, ``<path>.revocations``
holds the latest revocation list applied, ``<path>.clock`` the clock mark
(the latest time this server has counted to, with the boot it was counted in;
see :mod:`verifier.clock_mark`) and ``<path>.refusal`` the license server's
refusal to renew the token, if any.

Example:
    >>> store = TokenStore("/var/lib/mypanel/license.token")  # doctest: +SKIP
    >>> store.save(token); store.load() == token  # doctest: +SKIP
    True
"""

from __future__ import annotations

import os
from pathlib import Path

from verifier.clock_mark import ClockMark
from verifier.encoding import unfold
from verifier.errors import TokenStoreError
from verifier.fileio import atomic_write, os_error_words, read_regular

__all__ = ["TokenStore", "default_store_path"]

_MAX_STORED = 64 * 1024
_MAX_REVOCATIONS = 4 * 1024 * 1024
_MAX_MARK = 256
_MAX_REFUSAL = 8 * 1024


def default_store_path(product: str) -> Path:
    """The CLI's default store: ``licet-<product>.token`` in the current folder."""
    return Path(f"licet-{product}.token")


class TokenStore:
    """A token kept in one file, replaced atomically, mode 0600, with its companions beside it.

    Args:
        path: the token file.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.revocations_path = self.path.with_name(self.path.name + ".revocations")
        self.mark_path = self.path.with_name(self.path.name + ".clock")
        self.refusal_path = self.path.with_name(self.path.name + ".refusal")

    def load(self) -> str | None:
        """Return the stored token, or ``None`` when there is none.

        An oversized file is returned cut short: the verifier's size limit
        then reports it as invalid instead of this reading it whole.

        Raises:
            TokenStoreError: the file exists but cannot be read, or is not a
                regular file (a FIFO there is refused, never waited on).
        """
        text = _read_text(self.path, _MAX_STORED)
        return None if text is None else unfold(text) or None

    def load_revocations(self) -> str | None:
        """Return the stored revocation list, or ``None``.

        Raises:
            TokenStoreError: the file exists but cannot be read.
        """
        return _read_text(self.revocations_path, _MAX_REVOCATIONS)

    def revocations_stamp(self) -> int | None:
        """When the revocation list file last changed (nanoseconds), or ``None`` if absent."""
        return _stamp(self.revocations_path)

    def save_revocations(self, text: str) -> None:
        """Keep a revocation list (the verifier checked it first).

        Raises:
            TokenStoreError: the folder is missing or not writable.
        """
        _write_text(self.revocations_path, text, "revocation list")

    def load_refusal(self) -> str | None:
        """Return the stored record of a refused renewal, or ``None``.

        Raises:
            TokenStoreError: the file exists but cannot be read.
        """
        return _read_text(self.refusal_path, _MAX_REFUSAL)

    def refusal_stamp(self) -> int | None:
        """When the refusal record last changed (nanoseconds), or ``None`` if absent."""
        return _stamp(self.refusal_path)

    def save_refusal(self, text: str) -> None:
        """Keep the record of a refused renewal beside the token.

        Raises:
            TokenStoreError: the folder is missing or not writable.
        """
        _write_text(self.refusal_path, text, "renewal refusal")

    def load_mark(self) -> ClockMark | None:
        """Return the clock mark, or ``None`` if none was saved.

        A damaged mark file counts as none (never an error): the verifier
        rewrites it at its next check.

        Raises:
            TokenStoreError: the file exists but cannot be read.
        """
        return ClockMark.parse(_read_text(self.mark_path, _MAX_MARK))

    def save_mark(self, mark: ClockMark) -> None:
        """Record the clock mark.

        Raises:
            TokenStoreError: the folder is missing or not writable.
        """
        _write_text(self.mark_path, mark.to_text(), "clock mark")

    def save(self, token: str) -> None:
        """Store ``token``, replacing any previous one atomically.

        Raises:
            TokenStoreError: the folder is missing, not writable, read-only or
                full; the message names the store's file, and the previous
                token stays in place.
        """
        _write_text(self.path, unfold(token), "activation token")

    def delete(self) -> None:
        """Forget the stored token (no error if there is none)."""
        try:
            self.path.unlink()
        except FileNotFoundError:
            return
        except OSError as err:
            raise TokenStoreError(f"cannot remove {self.path}: {os_error_words(err)}") from err


def _stamp(path: Path) -> int | None:
    try:
        return path.stat().st_mtime_ns
    except OSError:
        return None


def _read_text(path: Path, limit: int) -> str | None:
    try:
        data = read_regular(path, limit)
    except OSError as err:
        raise TokenStoreError(f"cannot read {path}: {os_error_words(err)}") from err
    if data is None:
        return None
    text = data.decode("utf-8", errors="replace").strip()
    return text or None


def _write_text(path: Path, text: str, what: str) -> None:
    try:
        atomic_write(path, text.strip().encode("ascii", errors="strict") + b"\n")
    except UnicodeEncodeError as err:
        raise TokenStoreError(f"{what} must be ASCII text") from err
    except OSError as err:
        raise TokenStoreError(
            f"cannot write {path}: {os_error_words(err, writing=True)}; "
            f"the stored {what} is unchanged"
        ) from err
