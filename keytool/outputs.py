"""Writing a command's output file without ever destroying key material (shared with issuer).

``keytool export --out`` and ``issuer activate --out`` write public output
(a trust set, a token). A slip of the path must not replace a private key,
the keyring, the activation-key secret or a ledger file — after which the
provider could sign nothing or every key would read as damaged. So:

* key material and files inside protected folders are never overwritten,
  whatever the flags (recognised by place *and* by content, so a backup copy
  elsewhere is safe too);
* any other existing file is replaced only when it is an earlier output of
  the same command (re-exporting the trust set after a rotation is the
  normal workflow), or when the caller passes ``force``.

Example:
    >>> write_output(Path("trusted_keys.json"), body, mode=0o644,
    ...              earlier_output=looks_like_jwks, protected=[Path("keys")])  # doctest: +SKIP
"""

from __future__ import annotations

import base64
import binascii
import os
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from keytool.errors import OutputRefusedError
from verifier.encoding import EncodingError, json_loads_strict
from verifier.fileio import atomic_write, read_regular

__all__ = ["is_key_material", "write_output"]

_SNIFF_BYTES = 1 << 20


def _json(data: bytes) -> Any:
    try:
        return json_loads_strict(data)
    except EncodingError:
        return None


def is_key_material(data: bytes) -> bool:
    """Whether ``data`` looks like a private key, a keyring, the key secret or a ledger file."""
    if b"PRIVATE KEY" in data:
        return True
    text = data.strip()
    if len(text) == 44:  # the activation-key secret: base64 of 32 bytes
        try:
            if len(base64.b64decode(text, validate=True)) == 32:
                return True
        except (binascii.Error, ValueError):
            pass
    doc = _json(data)
    if not isinstance(doc, dict):
        return False
    if doc.get("format") == "licet-ledger" or "files" in doc:  # ledger metadata or journal
        return True
    if any(name in doc for name in ("licenses", "keys", "ips", "attempts", "_default")):
        tables = [v for v in doc.values() if isinstance(v, dict)]
        if tables and len(tables) == len(doc):  # a TinyDB shard: every member a table
            return True
    entries = doc.get("keys")
    return isinstance(entries, list) and any(
        isinstance(e, dict) and "public" in e and "status" in e for e in entries
    )


def _inside(target: Path, place: Path) -> bool:
    place = place.resolve()
    return target == place or place in target.parents


def write_output(
    path: Path,
    data: bytes,
    *,
    mode: int,
    earlier_output: Callable[[bytes], bool],
    protected: Iterable[Path] = (),
    force: bool = False,
) -> None:
    """Write ``data`` to ``path`` (atomically), refusing to replace what must survive.

    Args:
        path: the output file.
        data: its new content.
        mode: its file mode.
        earlier_output: says whether existing content is an earlier output of
            the same command (then it may be replaced).
        protected: files and folders never written into (keys, the ledger).
        force: replace an existing file that is not an earlier output
            (never key material or a protected place).

    Raises:
        OutputRefusedError: the file must not be replaced.
        OSError: the write failed.
    """
    target = Path(os.path.abspath(path)).resolve()
    for place in protected:
        if _inside(target, place):
            raise OutputRefusedError(
                f"refusing to write {path}: it is inside {place}, which holds keys or the ledger"
            )
    try:
        existing = read_regular(target, _SNIFF_BYTES)
    except OSError as err:
        raise OutputRefusedError(f"refusing to write {path}: {err.strerror}") from None
    if existing is not None:
        if is_key_material(existing):
            raise OutputRefusedError(
                f"refusing to overwrite {path}: it holds key material or ledger data"
            )
        if not earlier_output(existing) and not force:
            raise OutputRefusedError(
                f"refusing to overwrite {path}: it exists and is not an earlier output "
                "of this command (give --force to replace it)"
            )
    atomic_write(path, data, mode=mode)
