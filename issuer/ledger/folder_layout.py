"""Where a ledger folder keeps what: its files, their shards and pages, and ``ledger.json``.

One concern: the names and places of a folder ledger's files (see
:mod:`issuer.ledger.folder` for what each holds and why) and the identity
file that records its layout. Every module of the folder backend places its
files through these names, so the layout is written down once; this module
opens no ledger and takes no lock.

Example:
    >>> shard("LIC-7K3QM9XW2D", 3)  # doctest: +SKIP
    '4f1'
    >>> page_name(300)
    '000001'
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import hashlib
import json
from pathlib import Path
from typing import Any

from issuer.errors import (
    LedgerCorruptError,
    LedgerExistsError,
    LedgerMissingError,
    LedgerWriteError,
)
from issuer.ledger.api import DEFAULT_LEASE_DAYS, DEFAULT_SHARD_WIDTH, FORMAT, LedgerInfo
from issuer.ledger.shards import read_json
from verifier.fileio import create_exclusive, os_error_words, private_dir

__all__ = [
    "ACCOUNTS",
    "ALL",
    "ATTEMPTS",
    "EVENTS",
    "HEAD",
    "INDEX",
    "IPS",
    "KEYS",
    "KINDS",
    "LICENSES",
    "LOCK_FILE",
    "META_FILE",
    "PAGE",
    "POS",
    "PRODUCTS",
    "REVOCATIONS",
    "REVOCATIONS_SHARD",
    "SERIAL_SHARD",
    "SHARD_WIDTHS",
    "VERSION",
    "check_creatable",
    "create_files",
    "key_shard",
    "page_name",
    "read_info",
    "shard",
]

VERSION = 1
META_FILE = "ledger.json"
LOCK_FILE = "ledger.lock"
LICENSES, KEYS, IPS, ATTEMPTS = "licenses", "keys", "ips", "attempts"
PRODUCTS, ALL = "products", "all"  # the products index is one small file
REVOCATIONS, REVOCATIONS_SHARD, SERIAL_SHARD = "revocations", "list", "serial"
INDEX, EVENTS, ACCOUNTS = "index", "events", "accounts"
KINDS = (LICENSES, KEYS, IPS, ATTEMPTS, REVOCATIONS, INDEX, EVENTS, ACCOUNTS)
HEAD = "head"  # index/head.json: {"licenses": count, "events": count}
PAGE = 256  # summaries or events per page file
POS = "index_pos"  # a license document's place in the index (not part of the record)
SHARD_WIDTHS = range(1, 5)


def shard(value: str, width: int) -> str:
    """The shard a value (license id, IP, bucket) is kept in: ``width`` hex digits of its hash."""
    return hashlib.sha256(value.encode()).hexdigest()[:width]


def key_shard(key_hash: str, width: int) -> str:
    """The shard of a key hash: its own first digits (it is a SHA-256 already)."""
    return key_hash[:width]


def page_name(position: int) -> str:
    """The page file of an index or audit-log position (:data:`PAGE` entries per page)."""
    return f"{position // PAGE:06d}"


def check_creatable(root: Path) -> None:
    """Refuse, before anything is written, a folder that holds a ledger or other files.

    Raises:
        LedgerExistsError: ``root`` already holds a ledger or other files.
    """
    if (root / META_FILE).exists():
        raise LedgerExistsError(
            f"a ledger exists in {root.resolve()} already; it is never overwritten"
        )
    if root.exists() and any(p.name != LOCK_FILE for p in root.iterdir()):
        raise LedgerExistsError(f"{root.resolve()} is not empty; give a new folder for the ledger")


def create_files(root: Path, meta: dict[str, Any]) -> None:
    """Make the ledger's (private) folders and write ``ledger.json`` last, exclusively.

    Raises:
        LedgerExistsError: another process wrote a ``ledger.json`` there meanwhile.
        LedgerWriteError: the folder cannot be written (what was made is removed).
    """
    made: list[Path] = []
    try:
        private_dir(root)  # an existing empty folder others could write to is made private
        for kind in KINDS:
            (root / kind).mkdir(mode=0o700)
            made.append(root / kind)
    except OSError as err:
        _remove(made)  # empty, and in the way of a retry
        raise LedgerWriteError(
            f"cannot create the ledger in {root}: {os_error_words(err, writing=True)}"
        ) from err
    try:
        create_exclusive(root / META_FILE, json.dumps(meta, indent=2).encode())
    except FileExistsError:
        raise LedgerExistsError(f"a ledger exists in {root} already") from None
    except OSError as err:
        _remove(made)
        raise LedgerWriteError(
            f"cannot create the ledger in {root}: {os_error_words(err, writing=True)}"
        ) from err


def read_info(folder: Path) -> LedgerInfo:
    """The ledger's identity and layout as ``ledger.json`` records them.

    Raises:
        LedgerMissingError: no ledger in ``folder``.
        LedgerCorruptError: ``ledger.json`` is damaged or not a licet ledger.
    """
    meta = read_json(folder / META_FILE, "file")
    if meta is None:
        raise LedgerMissingError(
            f"no ledger in {folder.resolve()} — point --ledger (or LICET_LEDGER) at the "
            "provider's ledger; 'issuer init' there would start a second, empty one"
        )
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise LedgerCorruptError(f"{folder / META_FILE} is not a licet ledger")
    if meta.get("version") != VERSION:
        raise LedgerCorruptError(f"ledger version {meta.get('version')!r} is not supported")
    # Ledgers made before the layout was recorded all have the default width.
    width = meta.get("shard_width", DEFAULT_SHARD_WIDTH)
    if type(width) is not int or width not in SHARD_WIDTHS:
        raise LedgerCorruptError(
            f"{folder / META_FILE} records an unknown shard layout ({width!r})"
        )
    try:
        return LedgerInfo(
            provider=str(meta["provider"]),
            created_at=_dt.datetime.fromisoformat(str(meta["created_at"])),
            secret_check=str(meta["secret_check"]),
            shard_width=width,
            lease_days=_lease_days(meta.get("lease_days", DEFAULT_LEASE_DAYS)),
            accept_machine_id=_flag(meta.get("accept_machine_id", True)),
        )
    except (KeyError, ValueError) as err:
        raise LedgerCorruptError(f"{folder / META_FILE} is damaged ({err})") from err


def _remove(folders: list[Path]) -> None:
    for folder in folders:
        with contextlib.suppress(OSError):
            folder.rmdir()


def _lease_days(value: object) -> int:
    if type(value) is not int or value < 0:
        raise ValueError("lease_days must be a whole number ≥ 0")
    return value


def _flag(value: Any) -> bool:
    if type(value) is not bool:
        raise ValueError("accept_machine_id must be true or false")
    return value
