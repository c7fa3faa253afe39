"""What a license looks like to its readers: the full view, the list row, the form defaults, a page.

Views carry the current activation key unless the reader may not see keys
(a read-scope API token); times are written by :func:`verifier.clock.format_utc`.
"""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from issuer.records import Activation, LicenseRecord, LicenseSummary
from verifier.clock import format_utc, last_day

__all__ = ["LicenseDefaults", "LicenseSummaryView", "LicenseView", "Page"]

T = TypeVar("T")


@dataclass(frozen=True)
class LicenseView:
    """A license as the provider sees it, with its current key and derived dates.

    ``activation_key`` is ``None`` for a reader that may not see keys (a
    read-scope API token); the answer then leaves the member out.

    ``next_regeneration`` is a fixed instant, not "now": when regeneration is
    allowed it is the instant it became allowed (the license's creation when
    it was never regenerated), and it does not move with the clock.
    ``lease_days_effective`` is how long a token issued now lasts under the
    lease: fewer days than ``lease_days`` when the regeneration cap ends it
    first (see :func:`issuer.policy.lease_for`).
    """

    record: LicenseRecord
    activation_key: str | None
    state: str
    next_regeneration: _dt.datetime
    lease_days: int
    #: whether a regeneration would be accepted now (not revoked, a month since the last)
    regeneration_allowed: bool = False
    accepts_machine_id: bool = True
    #: days a token issued now lasts (the lease, or fewer under the regeneration cap)
    lease_days_effective: int | None = None
    #: the calendar months between regenerations (what caps the lease)
    regeneration_months: int = 1
    #: the provider's default lease, which ``lease_days`` is when the license sets none
    provider_lease_days: int = 30

    @property
    def license_id(self) -> str:
        """The license id."""
        return self.record.license_id

    @property
    def last_day(self) -> str | None:
        """The license's last valid day (``YYYY-MM-DD``, UTC), ``None`` when it never expires."""
        return last_day(self.record.expires_at)

    @property
    def lease_days_reason(self) -> str | None:
        """Why tokens last fewer days than the lease says, or ``None`` when they do not."""
        effective = (
            self.lease_days if self.lease_days_effective is None else self.lease_days_effective
        )
        if effective >= self.lease_days:
            return None
        months = (
            "a month" if self.regeneration_months == 1 else f"{self.regeneration_months} months"
        )
        return (
            f"a token never outlives the next possible key regeneration ({months} after it is "
            "issued)"
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready view (``issuer license show --json``); times in ISO 8601 UTC to the second."""
        r = self.record
        activation = r.activation
        return {
            "license_id": r.license_id,
            "product": r.product,
            "customer": r.customer,
            "ip": r.ip,
            "status": self.state,
            **_key_member(self.activation_key),
            "key_generation": r.generation,
            "created_at": format_utc(r.created_at),
            "expires_at": format_utc(r.expires_at),
            "last_day": self.last_day,
            "features": list(r.features),
            "limits": dict(r.limits),
            "lease_days": self.lease_days,
            "lease_days_default": r.lease_days is None,
            "lease_days_effective": self.lease_days
            if self.lease_days_effective is None
            else self.lease_days_effective,
            "lease_days_reason": self.lease_days_reason,
            "activation": None if activation is None else _activation_view(activation),
            "activated_fingerprint": None if activation is None else list(activation.fingerprint),
            "activated_hostname": None if activation is None else activation.hostname,
            "past_activations": [_activation_view(a) for a in r.past_activations],
            "next_regeneration": format_utc(self.next_regeneration),
            "regeneration_allowed": self.regeneration_allowed,
            "accept_machine_id": self.accepts_machine_id,
            "history": [e.to_dict() for e in r.history],
        }


def _key_member(key: str | None) -> dict[str, str]:
    return {} if key is None else {"activation_key": key}


def _activation_view(activation: Activation) -> dict[str, Any]:
    return {
        **activation.to_doc(),
        "activated_at": format_utc(activation.activated_at),
        "superseded_at": format_utc(activation.superseded_at),
        "lease_until": format_utc(activation.lease_until),
        "renewed_at": format_utc(activation.renewed_at),
    }


@dataclass(frozen=True)
class LicenseSummaryView:
    """A row of the license list: the summary with its current key and shown status."""

    summary: LicenseSummary
    activation_key: str | None  # None: the reader may not see keys (the member is left out)
    state: str

    @property
    def license_id(self) -> str:
        """The license id."""
        return self.summary.license_id

    @property
    def last_day(self) -> str | None:
        """The license's last valid day (``YYYY-MM-DD``, UTC), ``None`` when it never expires."""
        return last_day(self.summary.expires_at)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready, with the field names of :meth:`LicenseView.to_dict`."""
        s = self.summary
        return {
            "license_id": s.license_id,
            "product": s.product,
            "customer": s.customer,
            "ip": s.ip,
            "status": self.state,
            **_key_member(self.activation_key),
            "key_generation": s.generation,
            "created_at": format_utc(s.created_at),
            "expires_at": format_utc(s.expires_at),
            "last_day": self.last_day,
            "activated_hostname": s.hostname,
        }


@dataclass(frozen=True)
class LicenseDefaults:
    """What a new license gets when it does not say, and the products the ledger knows.

    Attributes:
        lease_days: the provider's default lease in days (0: no lease).
        accept_machine_id: whether activations with a custom machine id are accepted.
        products: every product the ledger has licensed, sorted.
    """

    lease_days: int
    accept_machine_id: bool
    products: tuple[str, ...]


@dataclass(frozen=True)
class Page(Generic[T]):
    """One page of a list; ``next_cursor`` asks for the next (``None``: this is the last)."""

    items: list[T]
    next_cursor: str | None
