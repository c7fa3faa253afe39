"""The activation token's header and claims, defined once for minting and checking.

The issuer builds claims with :func:`build_claims` and the verifier checks
them with :func:`license_from_claims`; nothing else in licet spells a claim
name.

Example:
    >>> import datetime as dt
    >>> t = dt.datetime(2027, 1, 1, tzinfo=dt.timezone.utc)
    >>> c = build_claims(issuer="acme", license_id="L1", product="panel", activation_id="A1",
    ...                  issued_at=t, expires_at=t + dt.timedelta(days=30),
    ...                  renew_at=t + dt.timedelta(days=20), license_expires_at=None,
    ...                  fingerprint=("mid:" + "0" * 32,), features=["dns"], limits={},
    ...                  identity=IDENTITY_HARDWARE)
    >>> sorted(c) == sorted(REQUIRED_CLAIMS)
    True
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from verifier.errors import BadInputError, InvalidTokenError
from verifier.fingerprint import Fingerprint, parse_fingerprint
from verifier.timefmt import format_utc, is_epoch, last_day

__all__ = [
    "ALGORITHM",
    "CLAIM_FEATURES",
    "CLAIM_FINGERPRINT",
    "CLAIM_IDENTITY",
    "CLAIM_IP",
    "CLAIM_LICENSE_EXP",
    "CLAIM_LIMITS",
    "CLAIM_RENEW_AT",
    "IDENTITY_HARDWARE",
    "IDENTITY_KINDS",
    "IDENTITY_MACHINE_ID",
    "License",
    "REQUIRED_CLAIMS",
    "TOKEN_TYPE",
    "build_claims",
    "license_from_claims",
]

ALGORITHM = "EdDSA"
TOKEN_TYPE = "licet+jwt"  # noqa: S105 - the JOSE typ, not a secret

CLAIM_FINGERPRINT = "fpr"
CLAIM_FEATURES = "features"
CLAIM_LIMITS = "limits"
CLAIM_IP = "ip"
# The lease: ``exp`` ends the current lease; from ``renew_at`` on the panel is in its
# grace window and renews; ``license_exp`` is the license's own end (null: none).
CLAIM_RENEW_AT = "renew_at"
CLAIM_LICENSE_EXP = "license_exp"
#: Which kind of identity the fingerprint was taken from: the server's own
#: hardware identifiers, or a custom machine id the server declared
#: (``--machine-id``: containers, cloned VMs). A provider may refuse the latter.
CLAIM_IDENTITY = "idk"
IDENTITY_HARDWARE = "hardware"
IDENTITY_MACHINE_ID = "machine-id"
IDENTITY_KINDS = (IDENTITY_HARDWARE, IDENTITY_MACHINE_ID)
REQUIRED_CLAIMS = (
    "iss",
    "sub",
    "aud",
    "jti",
    "iat",
    "nbf",
    "exp",
    CLAIM_FINGERPRINT,
    CLAIM_FEATURES,
    CLAIM_LIMITS,
    CLAIM_RENEW_AT,
    CLAIM_LICENSE_EXP,
    CLAIM_IDENTITY,
)
_MAX_TEXT = 256
_MAX_ITEMS = 64


@dataclass(frozen=True, slots=True)
class License:
    """A verified license, as the panel sees it.

    Attributes:
        license_id: the provider's license id (``sub``).
        product: the product it licenses (``aud``).
        issuer: the provider (``iss``).
        activation_id: this activation (``jti``); stays the same when a server re-activates.
        features: enabled features.
        limits: numeric limits (e.g. ``{"domains": 100}``).
        iat: the ``iat`` claim: when the token was signed (epoch seconds);
            :attr:`issued_at` as a datetime.
        nbf: the ``nbf`` claim: start of validity (epoch seconds);
            :attr:`not_before` as a datetime.
        exp: the ``exp`` claim: end of validity — the end of the lease or the
            license's expiry, whichever is first (epoch seconds, also
            :attr:`expires_at_epoch`); :attr:`expires_at` as a datetime.
        renew_at_epoch: start of the grace window, when the panel should renew
            (epoch seconds); :attr:`renew_at` as a datetime.
        license_exp: the ``license_exp`` claim: the license's own expiry (epoch
            seconds, also :attr:`license_expires_at_epoch`), or ``None`` for
            none; :attr:`license_expires_at` as a datetime.

    Every time is an aware UTC datetime under its plain name (``issued_at``,
    ``not_before``, ``expires_at``, ``renew_at``, ``license_expires_at``), so
    they compare with each other and with the clock; the signed epoch seconds
    stay reachable under the claim names and under names ending in ``_epoch``.
        fingerprint: the server fingerprint the token is bound to.
        ip: the IP address of an IP-bound license, else ``None``.
        identity: what the fingerprint was taken from: ``hardware`` or
            ``machine-id`` (a custom id the server declared).
    """

    license_id: str
    product: str
    issuer: str
    activation_id: str
    features: frozenset[str]
    limits: Mapping[str, int]
    iat: int
    nbf: int
    exp: int
    renew_at_epoch: int
    license_exp: int | None
    fingerprint: Fingerprint = field(repr=False)
    ip: str | None = None
    identity: str = IDENTITY_HARDWARE

    @property
    def issued_at(self) -> _dt.datetime:
        """When the token was signed (aware UTC)."""
        return _dt.datetime.fromtimestamp(self.iat, _dt.UTC)

    @property
    def not_before(self) -> _dt.datetime:
        """Start of validity (aware UTC)."""
        return _dt.datetime.fromtimestamp(self.nbf, _dt.UTC)

    @property
    def expires_at(self) -> _dt.datetime:
        """End of validity (aware UTC)."""
        return _dt.datetime.fromtimestamp(self.exp, _dt.UTC)

    @property
    def expires_at_epoch(self) -> int:
        """End of validity (epoch seconds: the ``exp`` claim)."""
        return self.exp

    @property
    def renew_at(self) -> _dt.datetime:
        """Start of the grace window (aware UTC)."""
        return _dt.datetime.fromtimestamp(self.renew_at_epoch, _dt.UTC)

    @property
    def license_expires_at(self) -> _dt.datetime | None:
        """The license's own expiry (aware UTC), or ``None``."""
        if self.license_exp is None:
            return None
        return _dt.datetime.fromtimestamp(self.license_exp, _dt.UTC)

    @property
    def license_expires_at_epoch(self) -> int | None:
        """The license's own expiry (epoch seconds: the ``license_exp`` claim), or ``None``."""
        return self.license_exp

    @property
    def lease_limited(self) -> bool:
        """Whether the token ends with its lease (renewable), not with the license."""
        return self.license_exp is None or self.exp < self.license_exp

    def has(self, feature: str) -> bool:
        """Return whether ``feature`` is enabled."""
        return feature in self.features

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready view (used by ``verifier status --json``)."""
        return {
            "license_id": self.license_id,
            "product": self.product,
            "issuer": self.issuer,
            "activation_id": self.activation_id,
            "features": sorted(self.features),
            "limits": dict(self.limits),
            "issued_at": format_utc(self.issued_at),
            "expires_at": format_utc(self.expires_at),
            "renew_at": format_utc(self.renew_at),
            "license_expires_at": format_utc(self.license_expires_at),
            "license_last_day": last_day(self.license_expires_at),
            "lease_limited": self.lease_limited,
            "ip": self.ip,
            "identity": self.identity,
        }


def _epoch(moment: _dt.datetime) -> int:
    if moment.tzinfo is None:
        raise BadInputError("datetimes must be timezone-aware")
    return int(moment.timestamp())


def build_claims(
    *,
    issuer: str,
    license_id: str,
    product: str,
    activation_id: str,
    issued_at: _dt.datetime,
    expires_at: _dt.datetime,
    renew_at: _dt.datetime,
    license_expires_at: _dt.datetime | None,
    fingerprint: Sequence[str],
    features: Sequence[str],
    limits: Mapping[str, int],
    identity: str,
    ip: str | None = None,
) -> dict[str, Any]:
    """Return the claims of an activation token (the issuer signs these).

    Args:
        issuer: the provider (``iss``).
        license_id: the license (``sub``).
        product: the product (``aud``).
        activation_id: the activation (``jti``).
        issued_at: signing time (``iat`` and ``nbf``).
        expires_at: end of the lease (``exp``).
        renew_at: start of the grace window.
        license_expires_at: the license's own expiry, or ``None``.
        fingerprint: the server the token is bound to.
        features: enabled features.
        limits: numeric limits.
        ip: the address of an IP-bound license.
        identity: what the fingerprint was taken from (one of :data:`IDENTITY_KINDS`).

    Raises:
        BadInputError: ``identity`` is not one of :data:`IDENTITY_KINDS`.
    """
    if identity not in IDENTITY_KINDS:
        raise BadInputError(f"identity kind must be one of {', '.join(IDENTITY_KINDS)}")
    claims: dict[str, Any] = {
        "iss": issuer,
        "sub": license_id,
        "aud": product,
        "jti": activation_id,
        "iat": _epoch(issued_at),
        "nbf": _epoch(issued_at),
        "exp": _epoch(expires_at),
        CLAIM_RENEW_AT: _epoch(renew_at),
        CLAIM_LICENSE_EXP: None if license_expires_at is None else _epoch(license_expires_at),
        CLAIM_FINGERPRINT: list(parse_fingerprint(list(fingerprint))),
        CLAIM_FEATURES: sorted(set(features)),
        CLAIM_LIMITS: dict(limits),
        CLAIM_IDENTITY: identity,
    }
    if ip is not None:
        claims[CLAIM_IP] = ip
    return claims


def _bad(name: str) -> InvalidTokenError:
    return InvalidTokenError(f"activation token claim '{name}' is missing or malformed")


def _text(claims: Mapping[str, Any], name: str) -> str:
    value = claims.get(name)
    if type(value) is not str or not value or len(value) > _MAX_TEXT:
        raise _bad(name)
    return value


def _time(claims: Mapping[str, Any], name: str) -> int:
    value = claims.get(name)
    if not is_epoch(value):
        raise InvalidTokenError(f"activation token claim '{name}' is missing or not a timestamp")
    return value


def _names(value: object, name: str) -> frozenset[str]:
    if type(value) is not list or len(value) > _MAX_ITEMS:
        raise _bad(name)
    for item in value:
        if type(item) is not str or not 0 < len(item) <= _MAX_TEXT:
            raise _bad(name)
    return frozenset(value)


def _limits(value: object, name: str) -> Mapping[str, int]:
    if type(value) is not dict or len(value) > _MAX_ITEMS:
        raise _bad(name)
    for key, number in value.items():
        if type(number) is not int or not 0 < len(key) <= _MAX_TEXT:
            raise _bad(name)
    return MappingProxyType(dict(value))


_FINGERPRINTS: dict[tuple[object, ...], Fingerprint] = {}


def _fingerprint(value: object) -> Fingerprint:
    # Every token of one server carries the same fingerprint: remember a few
    # validated ones (validation is a pure function of the components).
    key: tuple[object, ...] | None = None
    if isinstance(value, list) and all(type(part) is str for part in value):
        key = tuple(value)  # only lists of strings are remembered: they are hashable (and valid)
    known = _FINGERPRINTS.get(key) if key is not None else None
    if known is not None:
        return known
    try:
        bound = parse_fingerprint(value)
    except BadInputError as err:
        raise _bad(CLAIM_FINGERPRINT) from err
    if key is not None and len(_FINGERPRINTS) < 64:
        _FINGERPRINTS[key] = bound
    return bound


def license_from_claims(claims: Mapping[str, Any]) -> License:
    """Check the shape of every required claim and build a :class:`License`.

    Time, audience and fingerprint *policy* is the verifier's; this only
    refuses claims of the wrong type or shape.

    Raises:
        InvalidTokenError: a claim is missing or malformed.
    """
    for name in REQUIRED_CLAIMS:
        if name not in claims:
            raise InvalidTokenError(f"activation token lacks required claim '{name}'")
    bound = _fingerprint(claims[CLAIM_FINGERPRINT])
    ip = claims.get(CLAIM_IP)
    if ip is not None and (type(ip) is not str or len(ip) > _MAX_TEXT):
        raise _bad(CLAIM_IP)
    license_exp = claims[CLAIM_LICENSE_EXP]
    if license_exp is not None and not is_epoch(license_exp):
        raise _bad(CLAIM_LICENSE_EXP)
    identity = claims[CLAIM_IDENTITY]
    if type(identity) is not str or identity not in IDENTITY_KINDS:
        raise _bad(CLAIM_IDENTITY)
    return License(
        license_id=_text(claims, "sub"),
        product=_text(claims, "aud"),
        issuer=_text(claims, "iss"),
        activation_id=_text(claims, "jti"),
        features=_names(claims[CLAIM_FEATURES], CLAIM_FEATURES),
        limits=_limits(claims[CLAIM_LIMITS], CLAIM_LIMITS),
        iat=_time(claims, "iat"),
        nbf=_time(claims, "nbf"),
        exp=_time(claims, "exp"),
        renew_at_epoch=_time(claims, CLAIM_RENEW_AT),
        license_exp=license_exp,
        fingerprint=bound,
        ip=ip,
        identity=identity,
    )
