"""The ledger: storage only, under one lock; this module is the door that picks a backend.

A ledger is named by a folder (TinyDB files, the zero-setup default,
:mod:`issuer.ledger.folder`) or by a ``postgresql://`` URL (one database shared
by any number of license-server nodes, :mod:`issuer.ledger.postgres`). The
backends are imported only when one is opened, so a folder ledger never loads
psycopg. Their shared vocabulary and interface are in :mod:`issuer.ledger.api`.

Example:
    >>> ledger = open_ledger("postgresql://licet@db.example/licet")  # doctest: +SKIP
    >>> ledger.location  # doctest: +SKIP
    'postgresql://licet@db.example:5432/licet'
"""

from __future__ import annotations

import datetime as _dt
import os

from issuer.ledger.api import DEFAULT_LEASE_DAYS, DEFAULT_SHARD_WIDTH, LedgerBackend, LedgerInfo

__all__ = [
    "DEFAULT_LEASE_DAYS",
    "DEFAULT_SHARD_WIDTH",
    "LedgerBackend",
    "LedgerInfo",
    "check_creatable",
    "create_ledger",
    "is_database_url",
    "open_ledger",
    "redact_url",
    "upgrade_schema",
]

_URL_SCHEMES = ("postgresql://", "postgres://")


def is_database_url(url_or_dir: str | os.PathLike[str]) -> bool:
    """Whether ``url_or_dir`` names a PostgreSQL ledger rather than a folder."""
    return isinstance(url_or_dir, str) and url_or_dir.startswith(_URL_SCHEMES)


def check_creatable(url_or_dir: str | os.PathLike[str]) -> None:
    """Refuse, before anything is written, a place :func:`create_ledger` would refuse.

    Raises:
        LedgerExistsError: a ledger (or, for a folder, other files) is there already.
        LedgerError: the database cannot be reached.
    """
    if is_database_url(url_or_dir):
        from issuer.ledger.postgres import PostgresLedger

        PostgresLedger.check_creatable(str(url_or_dir))
        return
    from issuer.ledger.folder import Ledger

    Ledger.check_creatable(url_or_dir)


def open_ledger(url_or_dir: str | os.PathLike[str], *, lock_timeout: float = 10.0) -> LedgerBackend:
    """Open the ledger at a folder or a ``postgresql://`` URL.

    Args:
        url_or_dir: the ledger folder, or the database URL.
        lock_timeout: seconds to wait for another process's lock before giving up.

    Raises:
        LedgerMissingError: no ledger there (``issuer init`` makes one).
        LedgerError: the ledger cannot be used (damaged, unreachable, another version).
        BadInputError: a malformed URL, or the ``postgres`` extra is not installed.
    """
    if is_database_url(url_or_dir):
        from issuer.ledger.postgres import PostgresLedger

        return PostgresLedger(str(url_or_dir), lock_timeout=lock_timeout)
    from issuer.ledger.folder import Ledger

    return Ledger(url_or_dir, lock_timeout=lock_timeout)


def create_ledger(
    url_or_dir: str | os.PathLike[str],
    *,
    provider: str,
    secret_check: str,
    now: _dt.datetime,
    created_at: _dt.datetime | None = None,
    shard_width: int | None = None,
    lease_days: int | None = None,
    accept_machine_id: bool = True,
) -> LedgerBackend:
    """Create a new, empty ledger at a folder or a ``postgresql://`` URL; never overwrites one.

    Args:
        url_or_dir: where the ledger goes.
        provider: the provider name tokens are issued under.
        secret_check: identifies the activation-key secret (which stays in the keys folder).
        now: the time of creation.
        created_at: the ledger's recorded creation time if not ``now`` (a copy keeps its source's).
        shard_width: a file ledger's shard layout (ignored by a database).
        lease_days: the provider's default lease (``None``: licet's default).
        accept_machine_id: the default for licenses that do not say.

    Raises:
        LedgerExistsError: a ledger (or, for a folder, other files) is there already.
        LedgerError: the database cannot be reached or refuses to create the schema.
    """
    when = created_at or now
    from issuer.ledger.folder import Ledger

    lease = DEFAULT_LEASE_DAYS if lease_days is None else lease_days
    if is_database_url(url_or_dir):
        from issuer.ledger.postgres import PostgresLedger

        return PostgresLedger.create(
            str(url_or_dir),
            provider=provider,
            secret_check=secret_check,
            now=when,
            lease_days=lease,
            accept_machine_id=accept_machine_id,
        )
    return Ledger.create(
        url_or_dir,
        provider=provider,
        secret_check=secret_check,
        now=when,
        shard_width=DEFAULT_SHARD_WIDTH if shard_width is None else shard_width,
        lease_days=lease,
        accept_machine_id=accept_machine_id,
    )


def upgrade_schema(url: str) -> tuple[int, int]:
    """Apply a PostgreSQL ledger's migrations up to this licet's schema (``issuer ledger upgrade``).

    Returns:
        The schema versions before and after.

    Raises:
        LedgerMissingError: no ledger there.
        LedgerVersionError: the ledger is newer than this licet.
        LedgerError: the database cannot be reached or refuses a change.
        BadInputError: the ``postgres`` extra is not installed.
    """
    from issuer.ledger.postgres import upgrade_schema as upgrade

    return upgrade(url)


def redact_url(url: str) -> str:
    """A PostgreSQL URL fit to print: user, host, port and database, never a password.

    Raises:
        BadInputError: not a PostgreSQL URL, or the ``postgres`` extra is not installed.
    """
    from issuer.ledger.postgres import redact_url as redact

    return redact(url)
