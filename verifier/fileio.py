"""Durable file writes and locks, shared by all three packages (public for that reason).

The token store, the keyring, the activation-key secret and the ledger use
these; keytool and issuer import them from here rather than copying them.

``atomic_write`` writes a temporary file in the same folder, fsyncs it,
renames it over the target and fsyncs the folder: after a crash the target
holds either the old bytes or the new ones, never a mix.

An ``OSError`` from these functions may carry the temporary file's name;
callers say what failed with :func:`os_error_words` and the name of the
user's own file or folder instead.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import stat
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

PRIVATE_MODE = 0o600

_WORDS = {
    errno.ENOSPC: "the disk is full",
    errno.EDQUOT: "the disk quota is used up",
    errno.EACCES: "permission denied",
    errno.EPERM: "permission denied",
    errno.EROFS: "the file system is read-only",
    errno.ENOENT: "no such file",
    errno.ENOTDIR: "a part of its path is not a folder",
    errno.EIO: "input/output error (is the disk failing?)",
    errno.EFBIG: "the file would be larger than this system allows",
}


def os_error_words(err: OSError, *, writing: bool = False) -> str:
    """What went wrong, in words, without the file name the error carries.

    The name is left out because it is often a temporary file's; the caller
    names the user's file or folder.

    Args:
        err: the error.
        writing: whether a file was being written or created, where a missing
            file means its folder has vanished.
    """
    if writing and err.errno == errno.ENOENT:
        return "its folder does not exist (moved or removed?)"
    words = _WORDS.get(err.errno or 0)
    if words is not None:
        return words
    text = err.strerror or str(err) or type(err).__name__
    return text[:1].lower() + text[1:]


def fsync_dir(folder: Path) -> None:
    """Make a rename or a new file in ``folder`` durable."""
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write(
    path: Path, data: bytes, mode: int = PRIVATE_MODE, *, sync_dir: bool = True
) -> None:
    """Replace ``path`` with ``data`` atomically and durably; the file gets ``mode``.

    ``sync_dir=False`` leaves the folder's fsync (which makes the rename
    durable) to a caller that writes several files into one folder.

    The temporary file is created by :func:`tempfile.mkstemp` in the target's
    folder: an unpredictable name opened with ``O_CREAT | O_EXCL`` (and
    ``O_NOFOLLOW``), so a file or symlink planted in the folder is never
    written through, and concurrent writers (threads or processes) each
    write their own temporary file — the target ends up holding exactly one
    writer's whole content.

    Raises:
        OSError: the write failed; ``path`` still holds its previous content.
    """
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        try:
            os.fchmod(fd, mode)  # mkstemp creates 0600; the target may want another mode
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    if sync_dir:
        fsync_dir(path.parent)


def create_exclusive(
    path: Path, data: bytes, mode: int = PRIVATE_MODE, *, sync_dir: bool = True
) -> None:
    """Create ``path`` with ``data``; never overwrite an existing file.

    ``sync_dir=False``: as for :func:`atomic_write`.

    Raises:
        FileExistsError: ``path`` exists.
        OSError: any other failure (a partial file is removed).
    """
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        os.fchmod(fd, mode)
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    except BaseException:
        os.close(fd)
        with contextlib.suppress(OSError):
            os.unlink(path)
        raise
    os.close(fd)
    if sync_dir:
        fsync_dir(path.parent)


class LockTimeout(Exception):
    """Private: the lock stayed taken for the whole timeout."""


_THREAD_LOCKS: dict[str, threading.Lock] = {}
_THREAD_LOCKS_GUARD = threading.Lock()


def _thread_lock(path: Path) -> threading.Lock:
    key = os.path.abspath(path)
    with _THREAD_LOCKS_GUARD:
        return _THREAD_LOCKS.setdefault(key, threading.Lock())


@contextlib.contextmanager
def file_lock(path: Path, timeout: float) -> Iterator[None]:
    """Hold an exclusive inter-process lock on ``path`` (created if absent).

    ``flock`` locks belong to the open file, so the kernel releases them when
    a holder dies — a SIGKILLed process never leaves a stale lock behind.
    Threads of one process first queue on a mutex, which hands over at once,
    so only one of them at a time polls the ``flock`` (a server's thread pool
    would otherwise sleep through moments when the lock is free).

    Raises:
        LockTimeout: not acquired within ``timeout`` seconds.
    """
    deadline = time.monotonic() + timeout
    local = _thread_lock(path)
    if not local.acquire(timeout=max(timeout, 0.001)):
        raise LockTimeout(str(path))
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, PRIVATE_MODE)
        try:
            delay = 0.0002
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() >= deadline:
                        raise LockTimeout(str(path)) from None
                    time.sleep(delay)
                    delay = min(delay * 2, 0.002)
            yield
        finally:
            os.close(fd)  # closing the descriptor releases the flock
    finally:
        local.release()


def read_regular(path: Path, limit: int) -> bytes | None:
    """Read at most ``limit + 1`` bytes of a regular file; ``None`` if it does not exist.

    The file is opened non-blocking and checked before any read, so a FIFO,
    a device or a folder planted at ``path`` is refused at once instead of
    hanging the reader.

    Raises:
        OSError: unreadable, or not a regular file (``strerror`` says which).
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    with os.fdopen(fd, "rb") as handle:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(errno.EINVAL, "not a regular file", str(path))
        return handle.read(limit + 1)


def private_dir(folder: Path) -> None:
    """Make sure ``folder`` exists with mode 0700, whether it was just made or already there.

    An existing folder keeps no group or world access: keys and the ledger
    must not live where others can add, replace or list files.

    Raises:
        OSError: it cannot be created, is not a folder, or belongs to another user.
    """
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        info = os.fstat(fd)
        if info.st_uid != os.geteuid():
            raise PermissionError(errno.EPERM, "folder belongs to another user", str(folder))
        if stat.S_IMODE(info.st_mode) != 0o700:
            os.fchmod(fd, 0o700)
    finally:
        os.close(fd)
