"""A PostgreSQL ledger's revocation list: ``licet.revocations`` and the serial in ``licet.meta``.

One concern: keeping the list's entries and its serial as it is told, in
the caller's transaction. Every change of the list updates the one meta
row, whose row lock orders list changes across nodes, so serials never
repeat. What a change adds to the list and when an entry may go are decided
above the ledger (:mod:`issuer.policy.revocations`).

Example:
    >>> with db.transaction() as conn:  # doctest: +SKIP
    ...     serial, entries = listed(conn, db.location)
"""

from __future__ import annotations

import datetime as _dt
from typing import Any

import psycopg

from issuer.errors import LedgerCorruptError, LedgerExistsError
from issuer.records import RevocationEntry

__all__ = ["listed", "restore", "revoke", "serial"]


def listed(conn: psycopg.Connection[Any], location: str) -> tuple[int, list[RevocationEntry]]:
    """The list's serial and its entries (expired ones included), oldest first.

    Raises:
        LedgerCorruptError: the database holds no ledger.
    """
    serial_row = conn.execute("SELECT revocation_serial FROM licet.meta").fetchone()
    rows = conn.execute(
        "SELECT kind, ident, until FROM licet.revocations ORDER BY position"
    ).fetchall()
    if serial_row is None:
        raise LedgerCorruptError(f"{location} does not hold a licet ledger")
    return int(serial_row[0]), [_entry(row) for row in rows]


def serial(conn: psycopg.Connection[Any], location: str) -> int:
    """The list's serial: one small query, which no writer's lock delays.

    Raises:
        LedgerCorruptError: the database holds no ledger.
    """
    row = conn.execute("SELECT revocation_serial FROM licet.meta").fetchone()
    if row is None:
        raise LedgerCorruptError(f"{location} does not hold a licet ledger")
    return int(row[0])


def restore(conn: psycopg.Connection[Any], serial: int, entries: list[RevocationEntry]) -> None:
    """Give a new, empty ledger a copied list (serial and entries).

    Raises:
        LedgerExistsError: the ledger has a revocation list already.
    """
    row = conn.execute(
        "SELECT revocation_serial, EXISTS (SELECT 1 FROM licet.revocations)"
        " FROM licet.meta FOR UPDATE"
    ).fetchone()
    if row is None or row[0] != 0 or row[1]:
        raise LedgerExistsError("the ledger has a revocation list already")
    conn.execute("UPDATE licet.meta SET revocation_serial = %s", (serial,))
    _insert_entries(conn, entries)


def revoke(
    conn: psycopg.Connection[Any], entries: list[RevocationEntry], now: _dt.datetime
) -> None:
    """Move the revocation list to its next serial, add ``entries``, drop harmless ones."""
    # The meta row's lock orders every list change across nodes: serials never repeat.
    conn.execute("UPDATE licet.meta SET revocation_serial = revocation_serial + 1")
    conn.execute("DELETE FROM licet.revocations WHERE until <= %s", (now,))
    _insert_entries(conn, entries)


def _entry(row: Any) -> RevocationEntry:
    return RevocationEntry.from_doc(
        {"kind": row[0], "id": row[1], "until": row[2].astimezone(_dt.UTC).isoformat()}
    )


def _insert_entries(conn: psycopg.Connection[Any], entries: list[RevocationEntry]) -> None:
    if entries:
        with conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO licet.revocations (kind, ident, until) VALUES (%s, %s, %s)",
                [(e.kind, e.ident, e.until) for e in entries],
            )
