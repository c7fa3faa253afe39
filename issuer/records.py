"""What the ledger records: licenses, their activations, and their history.

Records are frozen values. They turn into JSON documents for the ledger and
back; a document of the wrong shape is reported as ledger damage, never
half-read.
"""

from __future__ import annotations

import datetime as _dt
import enum
import secrets
from dataclasses import dataclass, field
from typing import Any

from issuer.errors import LedgerCorruptError
from verifier.claims import IDENTITY_HARDWARE, IDENTITY_KINDS
from verifier.clock import format_utc
from verifier.errors import BadInputError
from verifier.fingerprint import Fingerprint, parse_fingerprint

_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def random_id(prefix: str, chars: int) -> str:
    """A new random id: ``prefix`` then ``chars`` Crockford base-32 characters (``LIC-``...).

    Five random bits per character from one read of the system's CSPRNG
    (``secrets.choice`` per character reads it once per character).
    """
    bits = secrets.randbits(5 * chars)
    return prefix + "".join(_CROCKFORD[(bits >> (5 * i)) & 31] for i in range(chars))


__all__ = [
    "Account",
    "Activation",
    "Event",
    "LicenseQuery",
    "LicenseRecord",
    "LicenseStatus",
    "LicenseSummary",
    "LoggedEvent",
    "RevocationEntry",
    "Session",
    "random_id",
]


#: One field's change in an audit event: ``{"before": old, "after": new}`` (JSON values).
Changes = dict[str, dict[str, Any]]


class LicenseStatus(enum.StrEnum):
    """Stored states; ``expired`` is derived from the expiry date when shown.

    Members are strings (``LicenseStatus.ISSUED == "issued"``): records and
    documents carry the same text as before.
    """

    ISSUED = "issued"
    ACTIVATED = "activated"
    REVOKED = "revoked"
    EXPIRED = "expired"
    #: The states a record may be stored in (``expired`` is only ever shown).
    STORED = enum.nonmember((ISSUED, ACTIVATED, REVOKED))


@dataclass(frozen=True)
class Event:
    """One line of a license's audit history: when, what, who, details.

    Attributes:
        at: when.
        action: ``created``, ``activated``, ``regenerated``, ``revoked``, ``updated``, ...
        actor: who: ``cli:<os user>``, ``console:<user>``, ``api:<token>``, ``panel:<method>``.
        detail: one line for people.
        changes: the fields that changed, each ``{"before": ..., "after": ...}``.
    """

    at: _dt.datetime
    action: str
    actor: str
    detail: str
    changes: Changes = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """The public JSON form (``license history --json``, answers): times to the second."""
        return {**self.to_doc(), "at": format_utc(self.at)}

    def to_doc(self) -> dict[str, Any]:
        """The JSON document."""
        return {
            "at": self.at.isoformat(),
            "action": self.action,
            "actor": self.actor,
            "detail": self.detail,
            "changes": self.changes,
        }

    @classmethod
    def from_doc(cls, doc: Any) -> Event:
        """Parse a history entry (entries written before changes were recorded have none)."""
        return cls(
            at=_time(doc["at"]),
            action=_str(doc["action"]),
            actor=_str(doc["actor"]),
            detail=_str(doc["detail"]),
            changes={_str(k): _dict(v) for k, v in _dict(doc.get("changes", {})).items()},
        )


@dataclass(frozen=True)
class LoggedEvent:
    """An event in the ledger's one audit log, in the order changes happened.

    Attributes:
        cursor: its position in the log (1, 2, 3, ...); the feed resumes after it.
        event: what happened.
        license_id: the license it changed, or ``None`` (accounts and tokens).
    """

    cursor: int
    event: Event
    license_id: str | None

    def to_dict(self) -> dict[str, Any]:
        """The audit feed's JSON form."""
        return {
            "cursor": str(self.cursor),
            "time": format_utc(self.event.at),
            "actor": self.event.actor,
            "action": self.event.action,
            "license_id": self.license_id,
            "changes": self.event.changes,
        }


@dataclass(frozen=True)
class Activation:
    """A license bound to one server.

    Attributes:
        activation_id: the token's ``jti``; stays the same when that server re-activates.
        fingerprint: the server's fingerprint at activation (what tokens are bound to).
        hostname: what the server called itself (display only).
        method: ``air-gapped``, ``online`` or ``automatic``.
        activated_at: when.
        superseded_at: when a regeneration freed the license from this server.
        lease_until: when the latest token issued for it expires (``None``: no token recorded).
        renewed_at: the latest renewal (or re-activation), if any.
        identity: what the fingerprint was taken from (``hardware`` or ``machine-id``).
    """

    activation_id: str
    fingerprint: Fingerprint
    hostname: str
    method: str
    activated_at: _dt.datetime
    superseded_at: _dt.datetime | None = None
    lease_until: _dt.datetime | None = None
    renewed_at: _dt.datetime | None = None
    identity: str = IDENTITY_HARDWARE

    def to_doc(self) -> dict[str, Any]:
        """The JSON document."""
        return {
            "activation_id": self.activation_id,
            "fingerprint": list(self.fingerprint),
            "hostname": self.hostname,
            "method": self.method,
            "activated_at": self.activated_at.isoformat(),
            "superseded_at": _iso(self.superseded_at),
            "lease_until": _iso(self.lease_until),
            "renewed_at": _iso(self.renewed_at),
            "identity": self.identity,
        }

    @classmethod
    def from_doc(cls, doc: Any) -> Activation:
        """Parse an activation document."""
        return cls(
            activation_id=_str(doc["activation_id"]),
            fingerprint=parse_fingerprint(doc["fingerprint"]),
            hostname=_str(doc["hostname"]),
            method=_str(doc["method"]),
            activated_at=_time(doc["activated_at"]),
            superseded_at=_optional_time(doc.get("superseded_at")),
            lease_until=_optional_time(doc.get("lease_until")),
            renewed_at=_optional_time(doc.get("renewed_at")),
            identity=_identity(doc.get("identity", IDENTITY_HARDWARE)),
        )


@dataclass(frozen=True)
class LicenseRecord:
    """A license as the ledger holds it. The activation key itself is never stored.

    Attributes:
        license_id: the id.
        product: the product it licenses.
        customer: free text for the provider.
        ip: assigned public IP (for automatic activation), or ``None``.
        created_at: when it was created.
        expires_at: end of the license, or ``None`` for no end.
        features: enabled features.
        limits: numeric limits.
        generation: activation-key generation (1 for the key issued with the license).
        key_hash: SHA-256 of the current key, for look-ups; the key is not recoverable from it.
        status: ``issued``, ``activated`` or ``revoked``.
        activation: the current activation, if any.
        past_activations: activations superseded by regenerations.
        regenerated_at: the last regeneration, or ``None``.
        revoked_at: when it was revoked.
        history: the audit trail.
        lease_days: the license's own lease length in days (0: no lease), or
            ``None`` for the provider's default.
        accept_machine_id: whether activations with a custom machine id are
            accepted (``None``: the ledger's default).
    """

    license_id: str
    product: str
    customer: str | None
    ip: str | None
    created_at: _dt.datetime
    expires_at: _dt.datetime | None
    features: tuple[str, ...]
    limits: dict[str, int]
    generation: int
    key_hash: str
    status: str
    activation: Activation | None = None
    past_activations: tuple[Activation, ...] = ()
    regenerated_at: _dt.datetime | None = None
    revoked_at: _dt.datetime | None = None
    history: tuple[Event, ...] = ()
    lease_days: int | None = None
    accept_machine_id: bool | None = None

    def activations(self) -> tuple[Activation, ...]:
        """Every activation the license ever had, the current one last."""
        current = () if self.activation is None else (self.activation,)
        return (*self.past_activations, *current)

    def state(self, now: _dt.datetime) -> str:
        """The status shown to people: ``expired`` once the expiry date has passed."""
        return _shown_state(self.status, self.expires_at, now)

    def to_doc(self) -> dict[str, Any]:
        """The JSON document."""
        return {
            "license_id": self.license_id,
            "product": self.product,
            "customer": self.customer,
            "ip": self.ip,
            "created_at": self.created_at.isoformat(),
            "expires_at": _iso(self.expires_at),
            "features": list(self.features),
            "limits": dict(self.limits),
            "generation": self.generation,
            "key_hash": self.key_hash,
            "status": self.status,
            "activation": None if self.activation is None else self.activation.to_doc(),
            "past_activations": [a.to_doc() for a in self.past_activations],
            "regenerated_at": _iso(self.regenerated_at),
            "revoked_at": _iso(self.revoked_at),
            "history": [e.to_doc() for e in self.history],
            "lease_days": self.lease_days,
            "accept_machine_id": self.accept_machine_id,
        }

    @classmethod
    def from_doc(cls, doc: Any) -> LicenseRecord:
        """Parse a license document.

        Raises:
            LedgerCorruptError: anything missing or of the wrong type.
        """
        try:
            record = cls(
                license_id=_str(doc["license_id"]),
                product=_str(doc["product"]),
                customer=_optional_str(doc["customer"]),
                ip=_optional_str(doc["ip"]),
                created_at=_time(doc["created_at"]),
                expires_at=_optional_time(doc["expires_at"]),
                features=tuple(_str(f) for f in _list(doc["features"])),
                limits={_str(k): _int(v) for k, v in _dict(doc["limits"]).items()},
                generation=_int(doc["generation"]),
                key_hash=_str(doc["key_hash"]),
                status=_str(doc["status"]),
                activation=None
                if doc["activation"] is None
                else Activation.from_doc(doc["activation"]),
                past_activations=tuple(
                    Activation.from_doc(a) for a in _list(doc["past_activations"])
                ),
                regenerated_at=_optional_time(doc["regenerated_at"]),
                revoked_at=_optional_time(doc["revoked_at"]),
                history=tuple(Event.from_doc(e) for e in _list(doc["history"])),
                lease_days=None if doc.get("lease_days") is None else _int(doc["lease_days"]),
                accept_machine_id=_optional_bool(doc.get("accept_machine_id")),
            )
        except (KeyError, TypeError, ValueError, BadInputError) as err:
            raise LedgerCorruptError(
                f"ledger is damaged: a license record is malformed ({err})"
            ) from err
        if record.status not in LicenseStatus.STORED or record.generation < 1:
            raise LedgerCorruptError(
                f"ledger is damaged: license {record.license_id} has an invalid state"
            )
        return record


@dataclass(frozen=True)
class RevocationEntry:
    """One entry of the revocation list: a revoked license or a superseded activation.

    Attributes:
        kind: ``license`` or ``activation``.
        ident: the license id or activation id.
        until: when every token it could affect has expired; after that it is dropped.
    """

    kind: str
    ident: str
    until: _dt.datetime

    LICENSE = "license"
    ACTIVATION = "activation"

    def to_doc(self) -> dict[str, Any]:
        """The JSON document."""
        return {"kind": self.kind, "id": self.ident, "until": self.until.isoformat()}

    @classmethod
    def from_doc(cls, doc: Any) -> RevocationEntry:
        """Parse an entry.

        Raises:
            LedgerCorruptError: anything missing or of the wrong type.
        """
        try:
            entry = cls(kind=_str(doc["kind"]), ident=_str(doc["id"]), until=_time(doc["until"]))
        except (KeyError, TypeError, ValueError) as err:
            raise LedgerCorruptError(
                f"ledger is damaged: a revocation entry is malformed ({err})"
            ) from err
        if entry.kind not in (cls.LICENSE, cls.ACTIVATION):
            raise LedgerCorruptError("ledger is damaged: a revocation entry has an unknown kind")
        return entry


def _shown_state(status: str, expires_at: _dt.datetime | None, now: _dt.datetime) -> str:
    """The status shown to people: a license past its expiry is ``expired``, unless revoked."""
    if status != LicenseStatus.REVOKED and expires_at is not None and now >= expires_at:
        return LicenseStatus.EXPIRED
    return status


def _iso(moment: _dt.datetime | None) -> str | None:
    return None if moment is None else moment.isoformat()


def _str(value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError(f"expected text, got {type(value).__name__}")
    return value


def _optional_str(value: Any) -> str | None:
    return None if value is None else _str(value)


def _int(value: Any) -> int:
    if type(value) is not int:
        raise TypeError(f"expected an integer, got {type(value).__name__}")
    return value


def _optional_bool(value: Any) -> bool | None:
    if value is not None and type(value) is not bool:
        raise TypeError(f"expected true, false or null, got {type(value).__name__}")
    return value


def _identity(value: Any) -> str:
    if value not in IDENTITY_KINDS:
        raise ValueError(f"unknown identity kind {value!r}")
    return _str(value)


def _list(value: Any) -> list[Any]:
    if not isinstance(value, list):
        raise TypeError(f"expected a list, got {type(value).__name__}")
    return value


def _dict(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise TypeError(f"expected an object, got {type(value).__name__}")
    return value


def _time(value: Any) -> _dt.datetime:
    moment = _dt.datetime.fromisoformat(_str(value))
    if moment.tzinfo is None:
        raise ValueError("naive timestamp")
    return moment


def _optional_time(value: Any) -> _dt.datetime | None:
    return None if value is None else _time(value)


@dataclass(frozen=True)
class LicenseSummary:
    """What the license list shows and searches: one small entry per license.

    The ledger keeps these in creation order beside the licenses, so a list
    page reads a page of summaries, never every license.
    """

    license_id: str
    product: str
    customer: str | None
    ip: str | None
    status: str
    created_at: _dt.datetime
    expires_at: _dt.datetime | None
    generation: int
    hostname: str | None
    activation_id: str | None = None  # of the current activation

    @classmethod
    def of(cls, record: LicenseRecord) -> LicenseSummary:
        """The summary of a license."""
        return cls(
            license_id=record.license_id,
            product=record.product,
            customer=record.customer,
            ip=record.ip,
            status=record.status,
            created_at=record.created_at,
            expires_at=record.expires_at,
            generation=record.generation,
            hostname=None if record.activation is None else record.activation.hostname,
            activation_id=None if record.activation is None else record.activation.activation_id,
        )

    def state(self, now: _dt.datetime) -> str:
        """The status shown to people: ``expired`` once the expiry has passed."""
        return _shown_state(self.status, self.expires_at, now)

    def to_doc(self) -> dict[str, Any]:
        """The JSON document."""
        return {
            "license_id": self.license_id,
            "product": self.product,
            "customer": self.customer,
            "ip": self.ip,
            "status": self.status,
            "created_at": self.created_at.isoformat(),
            "expires_at": _iso(self.expires_at),
            "generation": self.generation,
            "hostname": self.hostname,
            "activation_id": self.activation_id,
        }

    @classmethod
    def from_doc(cls, doc: Any) -> LicenseSummary:
        """Parse a summary document.

        Raises:
            LedgerCorruptError: anything missing or of the wrong type.
        """
        try:
            return cls(
                license_id=_str(doc["license_id"]),
                product=_str(doc["product"]),
                customer=_optional_str(doc["customer"]),
                ip=_optional_str(doc["ip"]),
                status=_str(doc["status"]),
                created_at=_time(doc["created_at"]),
                expires_at=_optional_time(doc["expires_at"]),
                generation=_int(doc["generation"]),
                hostname=_optional_str(doc["hostname"]),
                # entries written before activation ids were listed have none
                activation_id=_optional_str(doc.get("activation_id")),
            )
        except (KeyError, TypeError, ValueError) as err:
            raise LedgerCorruptError(
                f"ledger is damaged: a license index entry is malformed ({err})"
            ) from err


@dataclass(frozen=True)
class LicenseQuery:
    """Which licenses a list shows: every condition given must hold.

    The query says what to keep and decides nothing: what a typed search
    means (a whole id, an address, an activation key) is decided above the
    ledger, which only filters by what it is told.

    Attributes:
        product: exactly this product.
        status: this shown status (``expired`` is derived from the expiry date).
        license_id: exactly this license.
        ip: exactly this assigned IP address.
        text: found in the id, the customer, the IP, the activated hostname or
            the activation id, ignoring case (``str.lower``: the same rule
            whether a page is parsed or its bytes are pre-checked).
        now: the time ``expired`` is judged at.
    """

    now: _dt.datetime
    product: str | None = None
    status: str | None = None
    text: str | None = None
    license_id: str | None = None
    ip: str | None = None

    @property
    def needle(self) -> str | None:
        """The text every matching summary contains, ignoring case (``None``: no such text)."""
        return self.license_id or self.ip or self.text

    def matches(self, summary: LicenseSummary) -> bool:
        """Whether ``summary`` is one of the licenses asked for."""
        if self.product is not None and summary.product != self.product:
            return False
        if self.status is not None and summary.state(self.now) != self.status:
            return False
        if self.license_id is not None and summary.license_id != self.license_id:
            return False
        if self.ip is not None and summary.ip != self.ip:
            return False
        if self.text:
            needle = self.text.lower()
            return any(
                needle in (value or "").lower()
                for value in (
                    summary.license_id,
                    summary.customer,
                    summary.ip,
                    summary.hostname,
                    summary.activation_id,
                )
            )
        return True


@dataclass(frozen=True)
class Account:
    """A console user or an admin API token; only a hash of its secret is stored.

    Attributes:
        kind: ``user`` (password, hashed with Argon2id) or ``token`` (SHA-256 of
            a 256-bit random token).
        name: the user name or the token's name.
        secret_hash: the hash.
        scope: ``read``, ``keys`` or ``write`` (users always ``write``).
        created_at: when.
    """

    kind: str
    name: str
    secret_hash: str
    scope: str
    created_at: _dt.datetime

    def to_doc(self) -> dict[str, Any]:
        """The JSON document."""
        return {
            "kind": self.kind,
            "name": self.name,
            "secret_hash": self.secret_hash,
            "scope": self.scope,
            "created_at": self.created_at.isoformat(),
        }

    @classmethod
    def from_doc(cls, doc: Any) -> Account:
        """Parse an account document."""
        try:
            return cls(
                kind=_str(doc["kind"]),
                name=_str(doc["name"]),
                secret_hash=_str(doc["secret_hash"]),
                scope=_str(doc["scope"]),
                created_at=_time(doc["created_at"]),
            )
        except (KeyError, TypeError, ValueError) as err:
            raise LedgerCorruptError(f"ledger is damaged: an account is malformed ({err})") from err


@dataclass(frozen=True)
class Session:
    """A console session, stored under the SHA-256 of its cookie value.

    Attributes:
        key_hash: SHA-256 of the session cookie (the cookie itself is not stored).
        user: who logged in.
        created_at: login time (for the absolute expiry).
        last_seen: last request (for the idle expiry).
    """

    key_hash: str
    user: str
    created_at: _dt.datetime
    last_seen: _dt.datetime

    def to_doc(self) -> dict[str, Any]:
        """The JSON document."""
        return {
            "key_hash": self.key_hash,
            "user": self.user,
            "created_at": self.created_at.isoformat(),
            "last_seen": self.last_seen.isoformat(),
        }

    @classmethod
    def from_doc(cls, doc: Any) -> Session:
        """Parse a session document."""
        try:
            return cls(
                key_hash=_str(doc["key_hash"]),
                user=_str(doc["user"]),
                created_at=_time(doc["created_at"]),
                last_seen=_time(doc["last_seen"]),
            )
        except (KeyError, TypeError, ValueError) as err:
            raise LedgerCorruptError(f"ledger is damaged: a session is malformed ({err})") from err
