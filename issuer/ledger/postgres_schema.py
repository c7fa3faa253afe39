"""A PostgreSQL ledger's schema: its versions, the migrations between them, and its removal.

One concern: the SQL files in ``issuer/ledger/schema/`` (one per schema
version, applied in order), the version this licet needs, and the explicit
``issuer ledger upgrade`` that moves an older ledger to it in one
transaction. A ledger of another version is refused with the command that
fixes it; nothing here reads or writes licenses.

Example:
    >>> upgrade_schema("postgresql://licet@db.example/licet")  # doctest: +SKIP
    (3, 4)
"""

from __future__ import annotations

import importlib.resources
from typing import Any

import psycopg

from issuer.errors import LedgerCorruptError, LedgerMissingError, LedgerVersionError
from issuer.ledger.connections import Database

__all__ = [
    "LEASES_VERSION",
    "SCHEMA_VERSION",
    "check_version",
    "drop_schema",
    "migrate",
    "upgrade_schema",
]

_MIGRATIONS = tuple(
    sorted(
        (int(entry.name.split("_", 1)[0]), entry.read_text(encoding="utf-8"))
        for entry in importlib.resources.files("issuer.ledger").joinpath("schema").iterdir()
        if entry.name.endswith(".sql")
    )
)
SCHEMA_VERSION = _MIGRATIONS[-1][0]
LEASES_VERSION = 3  # the schema version that added leases and the revocation list
_LOCK_TIMEOUT = 10.0  # seconds to wait for a lock while the schema changes


def upgrade_schema(url: str) -> tuple[int, int]:
    """Apply the migrations from the ledger's schema version to this licet's, in one transaction.

    Returns:
        The versions before and after.

    Raises:
        LedgerMissingError: no ledger there.
        LedgerVersionError: the ledger is newer than this licet.
        LedgerError: the database cannot be reached or refuses a change.
    """
    db = Database(url, lock_timeout=_LOCK_TIMEOUT)
    with db.direct() as conn:
        exists = conn.execute("SELECT to_regclass('licet.meta') IS NOT NULL").fetchone()
        if exists is None or not exists[0]:
            raise LedgerMissingError(f"no ledger in {db.location} — run 'issuer init' first")
        with conn.transaction():
            row = conn.execute("SELECT schema_version FROM licet.meta FOR UPDATE").fetchone()
            if row is None:
                raise LedgerCorruptError(f"{db.location} does not hold a licet ledger")
            before = int(row[0])
            if before > SCHEMA_VERSION:
                check_version(before, db.location)
            migrate(conn, before, SCHEMA_VERSION)
            conn.execute("UPDATE licet.meta SET schema_version = %s", (SCHEMA_VERSION,))
    return before, SCHEMA_VERSION


def migrate(conn: psycopg.Connection[Any], after: int, upto: int) -> None:
    """Run the migrations after schema version ``after`` up to ``upto``, in order."""
    for version, sql in _MIGRATIONS:
        if after < version <= upto:
            conn.execute(sql.encode())


def check_version(version: Any, location: str) -> None:
    """Refuse a ledger whose schema is not this licet's, saying how to fix it.

    Raises:
        LedgerVersionError: an older schema (upgrade it) or a newer one (upgrade licet).
    """
    if version == SCHEMA_VERSION:
        return
    if isinstance(version, int) and version < SCHEMA_VERSION:
        raise LedgerVersionError(
            f"the ledger in {location} has schema version {version}, this issuer needs "
            f"{SCHEMA_VERSION} — run 'issuer ledger upgrade --ledger URL'"
        )
    raise LedgerVersionError(
        f"the ledger in {location} has schema version {version!r}, newer than this issuer's "
        f"{SCHEMA_VERSION} — upgrade licet"
    )


def drop_schema(url: str) -> None:
    """Remove the ledger's schema: only for a copy that failed into a schema it created."""
    db = Database(url, lock_timeout=_LOCK_TIMEOUT)
    with db.direct() as conn, conn.transaction():
        conn.execute("DROP SCHEMA IF EXISTS licet CASCADE")
