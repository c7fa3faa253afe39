"""The provider's façade: licenses, activation keys, activation, renewal, revocation lists.

Every activation path — air-gapped (``issuer activate``), online manual and
automatic (``issuer serve``) — ends in :meth:`Issuer.redeem`, which asks the
ledger to apply the policy of :mod:`issuer.policy` under its lock and signs a
token for the resulting activation. Every token carries a lease; renewals
(:meth:`Issuer.renew`) extend it for the license's current activation only.

Example:
    >>> iss = Issuer(ledger="ledger", keys="keys")  # doctest: +SKIP
    >>> created = iss.create_license(product="ispmanager", days=365)  # doctest: +SKIP
    >>> token = iss.activate(request_code_text)  # doctest: +SKIP
    >>> iss.regenerate(created.license_id)  # doctest: +SKIP
"""

from __future__ import annotations

import copy
import datetime as _dt
import os
import secrets
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Generic, TypeVar

from issuer import policy
from issuer.addresses import canonical_ip, in_bucket
from issuer.ledger import (
    DEFAULT_LEASE_DAYS,
    DEFAULT_SHARD_WIDTH,
    check_creatable,
    create_ledger,
    open_ledger,
)
from issuer.ledger.api import LedgerTransaction
from issuer.licensing.accounts import Accounts, AccountsConfig, sees_keys
from issuer.licensing.minting import SECRET_FILE, KeySecret, key_hash
from issuer.licensing.revocation_list import (
    MAX_REVOCATIONS_BYTES,
    RevocationListCache,
    SignedRevocations,
    sign_revocations,
)
from issuer.policy import ratelimit, revocations, terms
from issuer.policy.ratelimit import RateLimit
from issuer.records import (
    Account,
    Activation,
    LicenseQuery,
    LicenseRecord,
    LicenseStatus,
    LicenseSummary,
    LoggedEvent,
    RevocationEntry,
)
from keytool.errors import PrivateKeyError
from keytool.keyring import ActiveSigner, KeyRecord, Keyring
from keytool.outputs import write_output
from keytool.signing import TokenSigner
from verifier.activation_key import normalize_key
from verifier.claims import IDENTITY_HARDWARE, TOKEN_TYPE, build_claims
from verifier.clock import Clock, format_utc, now_from, utc_now
from verifier.encoding import EncodingError, b64url_decode, json_loads_strict
from verifier.errors import (
    ActivationNotFoundError,
    BadInputError,
    LicenseError,
    LicenseNotFoundError,
    NoLicenseForAddressError,
    WrongServerError,
)
from verifier.fingerprint import Fingerprint
from verifier.renewal import RenewalRequest, parse_renewal_code
from verifier.request import ActivationRequest, parse_request_code
from verifier.revocations import REVOCATIONS_TYPE

__all__ = [
    "KEEP",
    "Activated",
    "Issuer",
    "IssuerConfig",
    "LicenseSummaryView",
    "LicenseView",
    "Page",
    "RateLimited",
]

T = TypeVar("T")

_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
PAGE_MAX = 200  # licenses or events in one page of a list
KEEP: Any = object()
"""Default of :meth:`Issuer.update_license` arguments: leave the field as it is."""


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


@dataclass(frozen=True)
class LicenseView:
    """A license as the provider sees it, with its current key and derived dates.

    ``activation_key`` is ``None`` for a reader that may not see keys (a
    read-scope API token); the answer then leaves the member out.
    """

    record: LicenseRecord
    activation_key: str | None
    state: str
    next_regeneration: _dt.datetime
    lease_days: int
    #: whether a regeneration would be accepted now (not revoked, a month since the last)
    regeneration_allowed: bool = False
    accepts_machine_id: bool = True

    @property
    def license_id(self) -> str:
        """The license id."""
        return self.record.license_id

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
            "features": list(r.features),
            "limits": dict(r.limits),
            "lease_days": self.lease_days,
            "lease_days_default": r.lease_days is None,
            "activation": None if activation is None else _activation_view(activation),
            "activated_fingerprint": None if activation is None else list(activation.fingerprint),
            "activated_hostname": None if activation is None else activation.hostname,
            "past_activations": [_activation_view(a) for a in r.past_activations],
            "next_regeneration": format_utc(self.next_regeneration),
            "accept_machine_id": self.accepts_machine_id,
            "history": [{**e.to_doc(), "at": format_utc(e.at)} for e in r.history],
        }


def _key_member(key: str | None) -> dict[str, str]:
    return {} if key is None else {"activation_key": key}


def _activation_view(activation: Activation) -> dict[str, Any]:
    return {
        **activation.to_doc(),
        "activated_at": format_utc(activation.activated_at),
        "superseded_at": format_utc(activation.superseded_at),
    }


@dataclass(frozen=True)
class RateLimited:
    """A client (an IPv4 address or an IPv6 network) with recent failed attempts.

    Attributes:
        bucket: who is counted.
        failures: failed attempts inside the window.
        last_failure: the latest of them.
        blocked_until: while at its limit, when it may try again; else ``None``.
    """

    bucket: str
    failures: int
    last_failure: _dt.datetime
    blocked_until: _dt.datetime | None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready view (``issuer ratelimit list --json``)."""
        return {
            "bucket": self.bucket,
            "failures": self.failures,
            "last_failure": format_utc(self.last_failure),
            "blocked_until": format_utc(self.blocked_until),
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
            "created_at": s.created_at.isoformat(),
            "expires_at": None if s.expires_at is None else s.expires_at.isoformat(),
            "activated_hostname": s.hostname,
        }


@dataclass(frozen=True)
class Page(Generic[T]):
    """One page of a list; ``next_cursor`` asks for the next (``None``: this is the last)."""

    items: list[T]
    next_cursor: str | None


@dataclass(frozen=True)
class Activated:
    """The result of a redemption.

    Attributes:
        token: the signed activation token for the server.
        license_id: the license.
        activation_id: the activation (the same again for the same server).
        new: whether this redemption created the activation.
    """

    token: str
    license_id: str
    activation_id: str
    new: bool


# Renewal refusals that probe for ids or for another server's activation count
# against an anonymous client like a wrong key; the others name a real license.
_RENEWAL_PROBES: tuple[type[LicenseError], ...] = (
    ActivationNotFoundError,
    LicenseNotFoundError,
    WrongServerError,
)


def _is_jws_of(typ: str) -> Callable[[bytes], bool]:
    """Whether a file holds a compact JWS of type ``typ``, as an earlier ``--out`` wrote it."""

    def check(data: bytes) -> bool:
        parts = data.strip().split(b".")
        if len(parts) != 3:
            return False
        try:
            header = json_loads_strict(b64url_decode(parts[0].decode("ascii")))
        except (EncodingError, UnicodeDecodeError):
            return False
        return isinstance(header, dict) and header.get("typ") == typ

    return check


_is_token = _is_jws_of(TOKEN_TYPE)
_is_revocation_list = _is_jws_of(REVOCATIONS_TYPE)


def _existing(tx: LedgerTransaction, license_id: str | None) -> LicenseRecord:
    """The license with this id, locked in ``tx``.

    Raises:
        LicenseNotFoundError: no such license.
    """
    record = None if license_id is None else tx.license(license_id=license_id)
    if record is None:
        raise LicenseNotFoundError(f"no license {license_id!r}" if license_id else None)
    return record


def _replace(tx: LedgerTransaction, before: LicenseRecord, after: LicenseRecord) -> None:
    """Have ``tx`` keep ``after``, with the revocation entries the policy says it adds."""
    tx.replace(before, after, revoked=revocations.revocation_changes(before, after))


def _random_id(prefix: str, chars: int) -> str:
    return prefix + "".join(secrets.choice(_CROCKFORD) for _ in range(chars))


def _cursor(value: str | None) -> int | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str) or not value.isdigit() or len(value) > 12:
        raise BadInputError("invalid cursor — use the next_cursor of a previous answer")
    return int(value)


class Issuer:
    """The provider's licensing operations over one ledger and one keys folder.

    Args:
        ledger: the ledger folder, or a ``postgresql://`` URL.
        keys: the keys folder (signing keys and the activation-key secret).
        clock: time source (aware UTC datetimes).
        passphrase: for an encrypted signing key.
        config: provider policy.
        actor: who is acting, recorded in the audit history.

    Raises:
        LedgerMissingError | LedgerCorruptError: no usable ledger.
        PrivateKeyError: the activation-key secret is missing or belongs to another ledger.
    """

    def __init__(
        self,
        ledger: str | os.PathLike[str],
        keys: str | os.PathLike[str],
        *,
        clock: Clock = utc_now,
        passphrase: bytes | None = None,
        config: IssuerConfig | None = None,
        actor: str = "library",
    ) -> None:
        self.config = config or IssuerConfig()
        self.ledger = open_ledger(ledger, lock_timeout=self.config.lock_timeout)
        self.keys = Path(keys)
        self.actor = actor
        #: Whether license views carry activation keys (not for read-scope API tokens).
        self.sees_keys = True
        self._clock = clock
        self._passphrase = passphrase
        self._secret = KeySecret.load(self.keys)
        if self._secret.check() != self.ledger.info.secret_check:
            raise PrivateKeyError(
                f"the activation-key secret in {self.keys} does not belong to this ledger"
            )
        self._signer = ActiveSigner(Keyring(self.keys, clock=clock), passphrase)
        self.accounts = Accounts(self.ledger, clock=clock, config=self.config.accounts)
        # One holder, shared by the copies acting_as makes: every request's copy
        # answers from the list the first one signed.
        self._revocation_list = RevocationListCache()

    @classmethod
    def init(
        cls,
        ledger: str | os.PathLike[str],
        keys: str | os.PathLike[str],
        *,
        name: str,
        clock: Clock = utc_now,
        lease_days: int = DEFAULT_LEASE_DAYS,
        shard_width: int = DEFAULT_SHARD_WIDTH,
        accept_machine_id: bool = True,
        **kwargs: Any,
    ) -> Issuer:
        """Create a new ledger (and the activation-key secret if the keys folder has none).

        A refusal writes nothing: the ledger folder and the signing key are
        checked before the secret is made.

        Args:
            ledger: the new ledger's folder, or a ``postgresql://`` URL.
            keys: the keys folder (the activation-key secret stays there, never in a database).
            name: the provider name tokens are issued under.
            clock: time source.
            lease_days: the provider's default lease (default 30; 0 means no lease).
            shard_width: the ledger's shard layout (hex digits per shard name,
                1-4; the default 3 suits up to millions of licenses).
            accept_machine_id: the default for licenses that do not say
                whether activations with a custom machine id
                (``--machine-id``) are accepted (default: accepted).
            **kwargs: passed on to :class:`Issuer`.

        Raises:
            LedgerExistsError: a ledger exists there already.
            KeyringMissingError | NoActiveKeyError: no active signing key in ``keys``
                (licenses nobody could redeem would follow).
            BadInputError: a bad name or lease.
        """
        if not isinstance(name, str) or not name.strip() or len(name) > 128:
            raise BadInputError("provider name must be 1-128 characters")
        terms.check_lease_days(lease_days)
        check_creatable(ledger)
        Keyring(keys).active()
        secret_path = Path(keys) / SECRET_FILE
        made_secret = not secret_path.exists()
        secret = KeySecret.create_or_load(Path(keys))
        try:
            create_ledger(
                ledger,
                provider=name.strip(),
                secret_check=secret.check(),
                now=now_from(clock),
                lease_days=lease_days,
                shard_width=shard_width,
                accept_machine_id=bool(accept_machine_id),
            )
        except LicenseError:
            if made_secret:  # lost a race for the folder, or a bad shard width: leave nothing
                secret_path.unlink(missing_ok=True)
            raise
        return cls(ledger, keys, clock=clock, **kwargs)

    @property
    def provider(self) -> str:
        """The provider name tokens are issued under (``iss``)."""
        return self.ledger.info.provider

    # -- rate limits --------------------------------------------------------------

    def rate_limited(self) -> list[RateLimited]:
        """Clients with failed attempts inside the window, blocked ones first."""
        now = now_from(self._clock)
        policy_ = self.config.rate_limit
        found = []
        for bucket, times in self.ledger.failed_attempts(since=now - policy_.window).items():
            blocked = None
            if len(times) >= policy_.limit:
                # Free again once enough failures have left the window to be under the limit.
                oldest_counting = times[len(times) - policy_.limit]
                blocked = _dt.datetime.fromtimestamp(oldest_counting, _dt.UTC) + policy_.window
            last = _dt.datetime.fromtimestamp(times[-1], _dt.UTC)
            found.append(RateLimited(bucket, len(times), last, blocked))
        return sorted(found, key=lambda r: (r.blocked_until is None, r.bucket))

    def clear_rate_limit(self, address: str | None = None) -> list[str]:
        """Forget the failed attempts of ``address`` (of every client when ``None``).

        A customer who mistyped the key too often can try again at once.

        Returns:
            The buckets forgotten.

        Raises:
            BadInputError: ``address`` is not an IP address.
        """
        if address is None:
            return self.ledger.forget_attempts(lambda bucket: True)
        canonical_ip(address)  # refuse a typo before touching anything
        return self.ledger.forget_attempts(lambda bucket: in_bucket(address, bucket))

    # -- licenses -----------------------------------------------------------------

    def create_license(
        self,
        product: str,
        *,
        ip: str | None = None,
        days: int | None = None,
        expires: _dt.date | None = None,
        features: Iterable[str] = (),
        limits: Mapping[str, int] | None = None,
        customer: str | None = None,
        lease_days: int | None = None,
        accept_machine_id: bool | None = None,
        new_product: bool = False,
    ) -> LicenseView:
        """Create a license and its first activation key.

        Args:
            product: the product it licenses.
            ip: the server's public IP, for automatic activation.
            days: valid for this many days from now; or
            expires: valid through this date (UTC); neither means no expiry.
            features: enabled features.
            limits: numeric limits.
            customer: free text.
            lease_days: this license's lease (0: no lease — tokens last until
                the license expires, for customers who can never renew);
                ``None`` for the provider's default.
            accept_machine_id: whether activations with a custom machine id
                are accepted; ``None`` follows the ledger's default.
            new_product: ``product`` is a product the ledger has no license for yet.

        Raises:
            BadInputError: a malformed argument.
            UnknownProductError: ``product`` is new without ``new_product``, or
                differs only in case from a known product.
            NoActiveKeyError | KeyringMissingError: nothing could sign its tokens
                (a license nobody can redeem is not sold).
        """
        Keyring(self.keys).active()
        now = now_from(self._clock)
        record = self._new_record(product, ip, days, expires, features, limits, customer, now)
        if lease_days is not None:
            record = replace(record, lease_days=terms.check_lease_days(lease_days))
        if accept_machine_id is not None:
            if type(accept_machine_id) is not bool:
                raise BadInputError("accept_machine_id must be true, false or None")
            record = replace(record, accept_machine_id=accept_machine_id)
        with self.ledger.transaction() as tx:
            terms.check_product(record.product, tx.products(), new_product=new_product)
            tx.add(record)
        return self._view(record, now)

    def create_licenses(
        self,
        count: int,
        product: str,
        *,
        days: int | None = None,
        features: Iterable[str] = (),
    ) -> list[str]:
        """Bulk-create ``count`` licenses (imports, benchmarks); returns their ids.

        Uses the ledger's bulk path: one lock, each file written once, not
        journaled as a whole — for filling a new ledger.
        """
        now = now_from(self._clock)
        wanted = list(features)
        records = [
            self._new_record(product, None, days, None, wanted, None, None, now)
            for _ in range(count)
        ]
        self.ledger.add_many(records)
        return [r.license_id for r in records]

    def _new_record(
        self,
        product: str,
        ip: str | None,
        days: int | None,
        expires: _dt.date | None,
        features: Iterable[str],
        limits: Mapping[str, int] | None,
        customer: str | None,
        now: _dt.datetime,
    ) -> LicenseRecord:
        expires_at = terms.expiry(days, expires, now)
        limit_items = terms.check_limits(limits)
        customer = terms.check_customer(customer)
        license_id = _random_id("LIC-", 10)
        key = self._secret.key_for(license_id, 1)
        record = LicenseRecord(
            license_id=license_id,
            product=terms.check_name("product", product),
            customer=customer,
            ip=None if ip is None else canonical_ip(ip),
            created_at=now,
            expires_at=expires_at,
            features=terms.check_features(features),
            limits=limit_items,
            generation=1,
            key_hash=key_hash(key),
            status=LicenseStatus.ISSUED,
        )
        return policy.recorded(
            None, record, "created", actor=self.actor, now=now, detail="activation key generation 1"
        )

    def show(self, license_id: str) -> LicenseView:
        """The license with its current key, activation and next regeneration date.

        Raises:
            LicenseNotFoundError: no such license.
        """
        return self._view(self.ledger.get(license_id), now_from(self._clock))

    def licenses(self) -> list[LicenseView]:
        """Every license, oldest first."""
        now = now_from(self._clock)
        return [self._view(record, now) for record in self.ledger.licenses()]

    def regenerate(self, license_id: str) -> LicenseView:
        """Issue a new activation key, invalidate the old one, free the license.

        Raises:
            RegenerationTooSoonError: less than a calendar month since the last regeneration.
            LicenseRevokedError: the license is revoked.
            LicenseNotFoundError: no such license.
        """
        now = now_from(self._clock)
        with self.ledger.transaction() as tx:
            record = _existing(tx, license_id)
            new_key = self._secret.key_for(record.license_id, record.generation + 1)
            updated = policy.regenerate(
                record,
                new_key_hash=key_hash(new_key),
                actor=self.actor,
                now=now,
                months=self.config.regeneration_months,
            )
            _replace(tx, record, updated)
        return self._view(updated, now)

    def revoke(self, license_id: str) -> LicenseView:
        """Revoke a license (tokens already issued stay valid offline until they expire).

        Raises:
            LicenseNotFoundError: no such license.
        """
        now = now_from(self._clock)
        with self.ledger.transaction() as tx:
            record = _existing(tx, license_id)
            updated = policy.revoke(record, actor=self.actor, now=now)
            _replace(tx, record, updated)
        return self._view(updated, now)

    # -- activation -------------------------------------------------------------------

    def activate(self, request_code: str, *, method: str = "air-gapped") -> str:
        """Redeem an air-gapped request code and return the signed token.

        Raises:
            RequestCodeError | ActivationKeyFormatError: the code is damaged.
            InvalidActivationKeyError, LicenseRevokedError, LicenseExpiredError,
            ProductMismatchError, AlreadyActivatedError, MachineIdRefusedError: the
                refusals of :meth:`redeem`.
        """
        return self.redeem(parse_request_code(request_code), method=method).token

    def redeem(
        self, request: ActivationRequest, *, method: str, client: str | None = None
    ) -> Activated:
        """The one activation function: key + product + fingerprint → token.

        Every activation path ends here. An unknown key is refused (and, for
        an anonymous ``client``, counted for rate limiting); a revoked,
        expired or other-product license is refused naming why; a first
        activation is recorded and signed; the same server activating again
        gets its same activation; a second server is refused with the date
        from which the key may be regenerated (the outcomes of
        :func:`issuer.policy.redeem`).

        Args:
            request: what the server sent (key, product, fingerprint, ...).
            method: how it came (``air-gapped``, ``online``), recorded.
            client: the address of an anonymous client (online doors): its
                failed attempts are rate limited (``IssuerConfig.rate_limit``).

        Raises:
            RateLimitedError: ``client`` is at its limit of failures; nothing is looked up.
            InvalidActivationKeyError: unknown key, or a key of an earlier generation.
            LicenseRevokedError | LicenseExpiredError | ProductMismatchError: unusable license.
            AlreadyActivatedError: activated on another server.
            MachineIdRefusedError: a custom machine id for a license that refuses them.
        """
        canonical = normalize_key(request.activation_key)
        return self._activate(
            key_hash=key_hash(canonical),
            product=request.product,
            fingerprint=request.fingerprint,
            hostname=request.hostname,
            method=method,
            identity=request.identity,
            client=client,
        )

    def redeem_for_license(
        self,
        license_id: str,
        *,
        product: str,
        fingerprint: Fingerprint,
        hostname: str,
        method: str,
        identity: str = IDENTITY_HARDWARE,
    ) -> Activated:
        """Activate a license found by other proof than its key (automatic activation by IP)."""
        return self._activate(
            license_id=license_id,
            product=product,
            fingerprint=fingerprint,
            hostname=hostname,
            method=method,
            identity=identity,
        )

    def _activate(
        self,
        *,
        product: str,
        fingerprint: Fingerprint,
        hostname: str,
        method: str,
        identity: str,
        key_hash: str | None = None,
        license_id: str | None = None,
        client: str | None = None,
    ) -> Activated:
        signer = self._signing()  # before the ledger: a missing key must not burn an activation
        now = now_from(self._clock)
        attempt = None if client is None else self.config.rate_limit.attempt(client, now=now)
        with self.ledger.transaction() as tx:
            with ratelimit.counting(tx, attempt):
                if key_hash is not None:
                    record = policy.current_key(tx.license(key_hash=key_hash), key_hash)
                else:
                    record = _existing(tx, license_id)
                updated, activation, lease = policy.redeem(
                    record,
                    product=product,
                    fingerprint=fingerprint,
                    hostname=hostname[:253],
                    method=method,
                    activation_id=_random_id("ACT-", 12),
                    # A panel asking over the network is the actor; an air-gapped code is
                    # redeemed by whoever runs the command.
                    actor=self.actor if method == "air-gapped" else f"panel:{method}",
                    now=now,
                    months=self.config.regeneration_months,
                    lease_days=self.ledger.info.lease_days,
                    identity=identity,
                    accept_machine_id=self._accepts_machine_id(record),
                )
            _replace(tx, record, updated)
        return self._issue(signer, updated, activation, lease, now, record.activation is None)

    def _issue(
        self,
        signer: TokenSigner,
        record: LicenseRecord,
        activation: Activation,
        lease: policy.Lease,
        now: _dt.datetime,
        new: bool,
    ) -> Activated:
        claims = build_claims(
            issuer=self.provider,
            license_id=record.license_id,
            product=record.product,
            activation_id=activation.activation_id,
            issued_at=now,
            expires_at=lease.expires_at,
            renew_at=lease.renew_at,
            license_expires_at=record.expires_at,
            fingerprint=activation.fingerprint,
            features=record.features,
            limits=record.limits,
            identity=activation.identity,  # what the activation was bound with
            ip=record.ip,
        )
        return Activated(
            token=signer.sign(claims),
            license_id=record.license_id,
            activation_id=activation.activation_id,
            new=new,
        )

    # -- renewal and revocation ------------------------------------------------------

    def renew(
        self, renewal_code: str, *, method: str = "air-gapped", client: str | None = None
    ) -> str:
        """Renew the lease of the activation a renewal code names; return the new token.

        Args:
            renewal_code: the code ``verifier renew --offline`` printed (or a panel sent).
            method: how it came (``air-gapped``, ``online``), for the history.
            client: the address of an anonymous online caller: refusals that
                probe for ids or servers count against it like wrong keys.

        Raises:
            RenewalCodeError: the code is damaged.
            ActivationSupersededError, LicenseRevokedError, LicenseExpiredError,
            WrongServerError, ActivationNotFoundError, LicenseNotFoundError,
            ProductMismatchError: the renewal is refused (nothing changes).
        """
        request = parse_renewal_code(renewal_code)
        return self.renew_request(request, method=method, client=client).token

    def renew_request(
        self, request: RenewalRequest, *, method: str, client: str | None = None
    ) -> Activated:
        """The one renewal function: a fresh lease for the same activation id.

        Only the license's current activation renews, and only from the server
        it is bound to; a token that has already expired renews too.

        Raises:
            ActivationSupersededError | ActivationNotFoundError | WrongServerError:
                not the current activation on its own server.
            LicenseRevokedError | LicenseExpiredError | ProductMismatchError: unusable license.
            LicenseNotFoundError: no such license.
        """
        signer = self._signing()
        now = now_from(self._clock)
        attempt = None
        if client is not None:
            attempt = self.config.rate_limit.attempt(client, now=now, counted=_RENEWAL_PROBES)
        with self.ledger.transaction() as tx:
            with ratelimit.counting(tx, attempt):
                record = _existing(tx, request.license_id)
                updated, activation, lease = policy.renew(
                    record,
                    product=request.product,
                    activation_id=request.activation_id,
                    fingerprint=request.fingerprint,
                    method=method,
                    actor=self.actor if method == "air-gapped" else f"panel:{method}",
                    now=now,
                    lease_days=self.ledger.info.lease_days,
                    months=self.config.regeneration_months,
                )
            _replace(tx, record, updated)
        return self._issue(signer, updated, activation, lease, now, new=False)

    def revocation_list(self, days: int | None = None) -> str:
        """The signed revocation list: revoked licenses and superseded activations still live.

        Entries whose every token has expired are left out. One list is signed
        per serial, UTC day and signing key and then reused, so repeated calls
        return the same text (HTTP caches and ETags stay useful).

        Args:
            days: how long the list stays fresh (default from the config, 30).

        Raises:
            BadInputError: ``days`` out of 1..365.
            RevocationListTooLargeError: the list is larger than panels accept.
        """
        return self.signed_revocations(days).text

    def signed_revocations(self, days: int | None = None) -> SignedRevocations:
        """The signed revocation list with its size against the panels' limit (and a warning).

        While the ledger's revocation serial (read without its lock), the UTC
        day and the signing key stay the same, the list signed before is
        returned without reading the ledger's entries.

        Raises:
            BadInputError: ``days`` out of 1..365.
        """
        fresh = self.config.revocation_list_days if days is None else days
        if type(fresh) is not int or not 1 <= fresh <= 365:
            raise BadInputError("revocation list days must be a whole number from 1 to 365")
        signer = self._signing()  # the active key now: a rotation re-signs the list
        now = now_from(self._clock)
        key = (now.date(), fresh, signer.kid, self.config.revocation_list_max_bytes)

        def sign() -> SignedRevocations:
            serial, entries = self.ledger.revocations()
            return sign_revocations(
                signer,
                issuer=self.provider,
                serial=serial,
                entries=entries,
                now=now,
                fresh=_dt.timedelta(days=fresh),
                limit=self.config.revocation_list_max_bytes,
            )

        return self._revocation_list.get(key, self.ledger.revocation_serial(), sign)

    def _accepts_machine_id(self, record: LicenseRecord) -> bool:
        if record.accept_machine_id is not None:
            return record.accept_machine_id
        return self.ledger.info.accept_machine_id

    def signing_key_id(self) -> str:
        """Load the signing key now (checking file mode and passphrase) and return its kid."""
        return self._signing().kid

    def _signing(self) -> TokenSigner:
        # The keyring's active key as it is now: a rotation or revocation made by
        # another process while this one runs takes effect at the next signature.
        return self._signer.get()

    def save_token(self, path: str | os.PathLike[str], token: str, *, force: bool = False) -> None:
        """Write a token to ``path`` (``--out``) without ever replacing key material.

        An earlier token file is replaced; any other existing file only with
        ``force``; nothing inside the keys or ledger folder, and no key
        material anywhere, is ever overwritten.

        Raises:
            OutputRefusedError: ``path`` must not be replaced.
        """
        write_output(
            Path(path),
            token.strip().encode() + b"\n",
            mode=0o644,
            earlier_output=_is_token,
            protected=[self.keys, *self.ledger.protected_paths()],
            force=force,
        )

    def save_revocation_list(
        self, path: str | os.PathLike[str], text: str, *, force: bool = False
    ) -> None:
        """Write a revocation list to ``path`` (``--out``), with the same care as a token.

        Raises:
            OutputRefusedError: ``path`` must not be replaced.
        """
        write_output(
            Path(path),
            text.strip().encode() + b"\n",
            mode=0o644,
            earlier_output=_is_revocation_list,
            protected=[self.keys, *self.ledger.protected_paths()],
            force=force,
        )

    # -- online doors ---------------------------------------------------------------

    def activate_by_address(
        self,
        address: str,
        *,
        product: str,
        fingerprint: Fingerprint,
        hostname: str,
        confirm: Callable[[], None],
        method: str = "automatic",
        identity: str = IDENTITY_HARDWARE,
    ) -> Activated:
        """Automatic activation: the license assigned to ``address`` for ``product``.

        Args:
            address: the caller's address as the transport proved it (never from a body).
            product: the product.
            fingerprint: the caller's server fingerprint.
            hostname: shown to the provider.
            confirm: called once a license is found and before anything is
                recorded; raises (e.g. ``CallbackError``) when the caller cannot
                prove it answers at ``address``.
            method: recorded in the activation.
            identity: what the fingerprint was taken from (``hardware`` or ``machine-id``).

        Raises:
            NoLicenseForAddressError: no license of ``product`` is assigned to ``address``.
            LicenseError: ``confirm``'s refusal, or the last license's refusal.
        """
        ip = canonical_ip(address) if address else ""
        candidates = [
            r.license_id
            for r in (self.ledger.licenses_for_ip(ip) if ip else [])
            if r.product == product
        ]
        if not candidates:
            raise NoLicenseForAddressError(
                f"no {product} license is assigned to {address} — activate manually with a key"
            )
        confirm()
        last_error: LicenseError = NoLicenseForAddressError()
        for license_id in candidates:
            try:
                return self.redeem_for_license(
                    license_id,
                    product=product,
                    fingerprint=fingerprint,
                    hostname=hostname,
                    method=method,
                    identity=identity,
                )
            except LicenseError as err:  # try the next license on this address
                last_error = err
        raise last_error

    def _view(self, record: LicenseRecord, now: _dt.datetime) -> LicenseView:
        allowed = policy.next_regeneration(record, self.config.regeneration_months, now)
        return LicenseView(
            record=record,
            activation_key=self._key(record.license_id, record.generation),
            state=record.state(now),
            next_regeneration=allowed,
            regeneration_allowed=allowed <= now and record.status != LicenseStatus.REVOKED,
            lease_days=self.ledger.info.lease_days
            if record.lease_days is None
            else record.lease_days,
            accepts_machine_id=self._accepts_machine_id(record),
        )

    # -- the console and the admin API -------------------------------------------------

    def _key(self, license_id: str, generation: int) -> str | None:
        return self._secret.key_for(license_id, generation) if self.sees_keys else None

    def acting_as(self, actor: str, *, keys: bool = True) -> Issuer:
        """The same issuer recording its changes under another actor (one per request).

        Args:
            actor: who acts, for the audit history.
            keys: whether its license views carry activation keys.
        """
        other = copy.copy(self)
        other.actor = actor
        other.sees_keys = self.sees_keys and keys
        return other

    def search(
        self,
        *,
        text: str | None = None,
        product: str | None = None,
        status: str | None = None,
        cursor: str | None = None,
        limit: int = 50,
    ) -> Page[LicenseSummaryView]:
        """Licenses, newest first, a page at a time, optionally searched and filtered.

        Args:
            text: found in the license id, customer or IP (case-insensitive); a
                whole license id or IP address is looked up directly.
            product: only this product.
            status: only this status (``issued``, ``activated``, ``revoked``, ``expired``).
            cursor: the ``next_cursor`` of the previous page.
            limit: licenses per page (1 to 200).

        Raises:
            BadInputError: a malformed filter, cursor or limit.
        """
        if type(limit) is not int or not 1 <= limit <= PAGE_MAX:
            raise BadInputError(f"limit must be a whole number from 1 to {PAGE_MAX}")
        if status is not None and status not in (*LicenseStatus.STORED, LicenseStatus.EXPIRED):
            raise BadInputError("status must be one of issued, activated, revoked, expired")
        if product is not None:
            terms.check_name("product", product)
        if text is not None and (not isinstance(text, str) or len(text) > 256):
            raise BadInputError("search text must be at most 256 characters")
        text = (text or "").strip() or None
        now = now_from(self._clock)
        query = LicenseQuery(now=now, product=product, status=status, text=text)
        before = _cursor(cursor)
        direct = self._look_up(query.exact) if before is None else None
        if direct is not None and len(direct) <= limit:  # all of them, without the index
            items = sorted(
                (s for s in direct if query.matches(s)), key=lambda s: s.created_at, reverse=True
            )
        else:
            items, before = self.ledger.page(query, before=before, limit=limit)
        views = [
            LicenseSummaryView(
                summary=s,
                activation_key=self._key(s.license_id, s.generation),
                state=s.state(now),
            )
            for s in items
        ]
        return Page(views, None if before is None else str(before))

    def _look_up(self, exact: str | None) -> list[LicenseSummary] | None:
        """The licenses a whole license id or IP address names, read from their shards."""
        if exact is None:
            return None
        if exact.startswith("LIC-"):
            try:
                return [LicenseSummary.of(self.ledger.get(exact))]
            except LicenseNotFoundError:
                return []
        return [LicenseSummary.of(r) for r in self.ledger.licenses_for_ip(exact)]

    def update_license(
        self,
        license_id: str,
        *,
        customer: str | None = KEEP,
        ip: str | None = KEEP,
        expires: _dt.date | None = KEEP,
        days: int | None = None,
        features: Iterable[str] | None = None,
        limits: Mapping[str, int] | None = None,
        lease_days: int | None = KEEP,
    ) -> LicenseView:
        """Change a license's terms; arguments left out (``KEEP``) stay as they are.

        Args:
            license_id: the license.
            customer: new customer text (``None`` clears it).
            ip: new assigned IP (``None`` clears it).
            expires: new last day (``None``: no expiry); or
            days: valid for this many days from now.
            features: the new set of features.
            limits: the new limits.
            lease_days: this license's lease (0: no lease; ``None``: the provider's default).

        Raises:
            BadInputError: a malformed value.
            LicenseNotFoundError: no such license.
        """
        now = now_from(self._clock)
        edits: dict[str, Any] = {}
        if lease_days is not KEEP:
            edits["lease_days"] = None if lease_days is None else terms.check_lease_days(lease_days)
        if customer is not KEEP:
            edits["customer"] = terms.check_customer(customer)
        if ip is not KEEP:
            edits["ip"] = None if ip is None else canonical_ip(ip)
        if days is not None or expires is not KEEP:
            edits["expires_at"] = terms.expiry(days, None if expires is KEEP else expires, now)
        if features is not None:
            edits["features"] = terms.check_features(features)
        if limits is not None:
            edits["limits"] = terms.check_limits(limits)

        with self.ledger.transaction() as tx:
            record = _existing(tx, license_id)
            updated = policy.amend(record, edits, actor=self.actor, now=now)
            if updated is not None:
                _replace(tx, record, updated)
        return self._view(updated or record, now)

    def events(self, *, after: str | None = None, limit: int = 100) -> Page[LoggedEvent]:
        """The audit log of every change, in order, from the event after cursor ``after``.

        ``next_cursor`` is the cursor to ask after next time (the last event's,
        or ``after`` itself when nothing new happened).

        Raises:
            BadInputError: a malformed cursor or limit.
        """
        if type(limit) is not int or not 1 <= limit <= PAGE_MAX:
            raise BadInputError(f"limit must be a whole number from 1 to {PAGE_MAX}")
        start = _cursor(after) or 0
        items = self.ledger.events(after=start, limit=limit)
        next_cursor = str(items[-1].cursor) if items else (None if after is None else str(start))
        return Page(items, next_cursor)

    def revocations(self) -> tuple[int, list[RevocationEntry]]:
        """The revocation list's serial and its entries still in force, for display."""
        now = now_from(self._clock)
        serial, entries = self.ledger.revocations()
        return serial, [e for e in entries if e.until > now]

    def signing_keys(self) -> list[KeyRecord]:
        """The signing keys (public facts only), for display."""
        return Keyring(self.keys, clock=self._clock).records()

    def users(self) -> list[Account]:
        """The console users."""
        return self.ledger.accounts("user")

    def add_user(self, name: str, password: str) -> Account:
        """Add a console user (password hashed with Argon2id)."""
        return self.accounts.add_user(name, password, actor=self.actor)

    def remove_user(self, name: str) -> None:
        """Remove a console user and end their sessions."""
        self.accounts.remove_user(name, actor=self.actor)

    def tokens(self) -> list[Account]:
        """The admin API tokens (names and scopes; the tokens themselves are not stored)."""
        return self.ledger.accounts("token")

    def create_token(self, name: str, scope: str) -> tuple[Account, str]:
        """Create an admin API token; the returned text is shown once and never stored."""
        return self.accounts.create_token(name, scope, actor=self.actor)

    def revoke_token(self, name: str) -> None:
        """Revoke an admin API token."""
        self.accounts.revoke_token(name, actor=self.actor)

    def authenticate_token(self, token: str, *, write: bool) -> Issuer:
        """The issuer acting as the admin API token's owner (``api:<token name>``).

        A read-scope token's issuer leaves activation keys out of every
        license it shows (keys- and write-scope tokens see them).

        Raises:
            AuthenticationError: not a valid token.
            PermissionDeniedError: a read- or keys-scope token asking to write.
        """
        account = self.accounts.authenticate_token(token, write=write)
        return self.acting_as(f"api:{account.name}", keys=sees_keys(account))

    def login(self, user: str, password: str, *, address: str) -> str:
        """Check a console password and open a session; returns the session cookie value.

        Raises:
            RateLimitedError: too many failed logins of this name from this address, or
                from this address under any names; or the console is too busy to check.
            AuthenticationError: wrong user name or password.
        """
        return self.accounts.login(user, password, address=address)

    def session(self, key: str) -> Issuer:
        """The issuer acting as the logged-in console user (``console:<user>``).

        Raises:
            AuthenticationError: no such session, or it expired (it is then ended).
        """
        return self.acting_as(f"console:{self.accounts.session_user(key)}")

    def logout(self, key: str) -> None:
        """End a console session server-side."""
        self.accounts.logout(key)

    def csrf_token(self, key: str) -> str:
        """The anti-forgery token forms of this session (or login page) carry."""
        return self.accounts.csrf_token(key)

    def csrf_ok(self, key: str, token: object) -> bool:
        """Whether a submitted anti-forgery token is this session's (constant-time)."""
        return self.accounts.csrf_ok(key, token)
