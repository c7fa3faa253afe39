"""The provider's numbers: regeneration months, ledger lock wait, revocation lists, rate limits.

Example:
    >>> IssuerConfig(regeneration_months=2).regeneration_months
    2
"""

from __future__ import annotations

from dataclasses import dataclass, field

from issuer.licensing.accounts import AccountsConfig
from issuer.licensing.revocation_list import MAX_REVOCATIONS_BYTES
from issuer.policy.ratelimit import RateLimit
from verifier.errors import BadInputError

__all__ = ["IssuerConfig"]


@dataclass(frozen=True)
class IssuerConfig:
    """Provider policy, with defaults.

    How long a token lives is not configured here: it is the license's lease
    (the provider's default is kept in the ledger, ``issuer init --lease-days``).

    Attributes:
        regeneration_months: calendar months between key regenerations (default 1).
        lock_timeout: seconds to wait for the ledger lock (default 10).
        revocation_list_days: how long a revocation list stays fresh (default 30; 1 to 365).
        revocation_list_max_bytes: the largest revocation list given out (default and
            most: what every verifier accepts, :data:`MAX_REVOCATIONS_BYTES`); a
            list from three quarters of it on carries a warning.
        rate_limit: failed attempts allowed per client (see :class:`RateLimit`).
        accounts: console session and login rules.
    """

    regeneration_months: int = 1
    lock_timeout: float = 10.0
    revocation_list_days: int = 30
    revocation_list_max_bytes: int = MAX_REVOCATIONS_BYTES
    rate_limit: RateLimit = field(default_factory=RateLimit)
    accounts: AccountsConfig = field(default_factory=AccountsConfig)

    def __post_init__(self) -> None:
        if not 1 <= self.revocation_list_days <= 365:
            raise BadInputError("revocation_list_days must be between 1 and 365")
        if not 1024 <= self.revocation_list_max_bytes <= MAX_REVOCATIONS_BYTES:
            raise BadInputError(
                "revocation_list_max_bytes must be between 1024 and what verifiers accept "
                f"({MAX_REVOCATIONS_BYTES})"
            )
        if not 1 <= self.regeneration_months <= 12:
            raise BadInputError("regeneration_months must be between 1 and 12")
        if not 0.01 <= self.lock_timeout <= 300:
            raise BadInputError("lock_timeout must be between 0.01 and 300 seconds")
