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

import datetime as _dt
import os
import re
import secrets
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import Any

from issuer import policy
from issuer.addresses import canonical_ip, in_bucket
from issuer.ledger import DEFAULT_LEASE_DAYS, DEFAULT_SHARD_WIDTH
from issuer.ledger_api import check_creatable, create_ledger, open_ledger
from issuer.ratelimit import RateLimit
from issuer.records import Activation, Event, LicenseRecord, LicenseStatus, RevocationEntry
from issuer.secret import SECRET_FILE, KeySecret, key_hash
from keytool.errors import PrivateKeyError
from keytool.keyring import ActiveSigner, Keyring
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
from verifier.revocations import REVOCATIONS_TYPE, build_revocation_claims

__all__ = ["Activated", "Issuer", "IssuerConfig", "LicenseView", "RateLimited"]

_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
#: Products, features and limit names: 1-64 letters, digits, '.', '_' or '-',
#: starting with a letter or digit.
NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"
_NAME = re.compile(NAME_PATTERN)
_MAX_DAYS = 36500


@dataclass(frozen=True)
class IssuerConfig:
    """Provider policy, with defaults.

    How long a token lives is not configured here: it is the license's lease
    (the provider's default is kept in the ledger, ``issuer init --lease-days``).

    Attributes:
        regeneration_months: calendar months between key regenerations (default 1).
        lock_timeout: seconds to wait for the ledger lock (default 10).
        revocation_list_days: how long a revocation list stays fresh (default 30; 1 to 365).
        rate_limit: failed attempts allowed per client (see :class:`RateLimit`).
    """

    regeneration_months: int = 1
    lock_timeout: float = 10.0
    revocation_list_days: int = 30
    rate_limit: RateLimit = field(default_factory=RateLimit)

    def __post_init__(self) -> None:
        if not 1 <= self.revocation_list_days <= 365:
            raise BadInputError("revocation_list_days must be between 1 and 365")
        if not 1 <= self.regeneration_months <= 12:
            raise BadInputError("regeneration_months must be between 1 and 12")
        if not 0.01 <= self.lock_timeout <= 300:
            raise BadInputError("lock_timeout must be between 0.01 and 300 seconds")


@dataclass(frozen=True)
class LicenseView:
    """A license as the provider sees it, with its current key and derived dates."""

    record: LicenseRecord
    activation_key: str
    state: str
    next_regeneration: _dt.datetime
    lease_days: int
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
            "activation_key": self.activation_key,
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


def _random_id(prefix: str, chars: int) -> str:
    return prefix + "".join(secrets.choice(_CROCKFORD) for _ in range(chars))


def _name(kind: str, value: str) -> str:
    if not isinstance(value, str) or _NAME.fullmatch(value) is None:
        raise BadInputError(
            f"{kind} {value!r} must be 1-64 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit"
        )
    return value


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
        self._clock = clock
        self._passphrase = passphrase
        self._secret = KeySecret.load(self.keys)
        if self._secret.check() != self.ledger.info.secret_check:
            raise PrivateKeyError(
                f"the activation-key secret in {self.keys} does not belong to this ledger"
            )
        self._signer = ActiveSigner(Keyring(self.keys, clock=clock), passphrase)
        self._revocation_list: tuple[tuple[object, ...], str] | None = None

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
        policy.check_lease_days(lease_days)
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
            record = replace(record, lease_days=policy.check_lease_days(lease_days))
        if accept_machine_id is not None:
            if type(accept_machine_id) is not bool:
                raise BadInputError("accept_machine_id must be true, false or None")
            record = replace(record, accept_machine_id=accept_machine_id)
        product = record.product
        self.ledger.add(
            record,
            check_product=lambda known: policy.check_product(
                product, known, new_product=new_product
            ),
        )
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
        if days is not None and expires is not None:
            raise BadInputError("give --days or --expires, not both")
        expires_at = None
        if days is not None:
            if type(days) is not int or not 1 <= days <= _MAX_DAYS:
                raise BadInputError(f"days must be a whole number from 1 to {_MAX_DAYS}")
            expires_at = now + _dt.timedelta(days=days)
        elif expires is not None:
            # "Expires 2027-01-31" means usable through that day.
            start = _dt.datetime.combine(expires, _dt.time(), _dt.UTC)
            if start - now >= _dt.timedelta(days=_MAX_DAYS):
                raise BadInputError(
                    f"expiry date {expires.isoformat()} is more than {_MAX_DAYS} days away"
                )
            expires_at = start + _dt.timedelta(days=1)
            if expires_at <= now:
                raise BadInputError(f"expiry date {expires.isoformat()} is in the past")
        limit_items = dict(limits or {})
        for name, value in limit_items.items():
            _name("limit", name)
            if type(value) is not int or value < 0:
                raise BadInputError(f"limit {name} must be a whole number ≥ 0")
        if customer is not None and len(customer) > 256:
            raise BadInputError("customer must be at most 256 characters")
        license_id = _random_id("LIC-", 10)
        key = self._secret.key_for(license_id, 1)
        return LicenseRecord(
            license_id=license_id,
            product=_name("product", product),
            customer=customer,
            ip=None if ip is None else canonical_ip(ip),
            created_at=now,
            expires_at=expires_at,
            features=tuple(sorted({_name("feature", f) for f in features})),
            limits=limit_items,
            generation=1,
            key_hash=key_hash(key),
            status=LicenseStatus.ISSUED,
            history=(
                Event(
                    at=now, action="created", actor=self.actor, detail="activation key generation 1"
                ),
            ),
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

        def decide(record: LicenseRecord) -> tuple[LicenseRecord, LicenseRecord]:
            new_key = self._secret.key_for(record.license_id, record.generation + 1)
            updated = policy.regenerate(
                record,
                new_key_hash=key_hash(new_key),
                actor=self.actor,
                now=now,
                months=self.config.regeneration_months,
            )
            return updated, updated

        return self._view(self.ledger.update(decide, license_id=license_id), now)

    def revoke(self, license_id: str) -> LicenseView:
        """Revoke a license (tokens already issued stay valid offline until they expire).

        Raises:
            LicenseNotFoundError: no such license.
        """
        now = now_from(self._clock)

        def decide(record: LicenseRecord) -> tuple[LicenseRecord, LicenseRecord]:
            updated = policy.revoke(record, actor=self.actor, now=now)
            return updated, updated

        return self._view(self.ledger.update(decide, license_id=license_id), now)

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
        decide = partial(
            self._decide_redemption,
            product=product,
            fingerprint=fingerprint,
            hostname=hostname[:253],
            method=method,
            identity=identity,
            now=now,
        )
        attempt = None if client is None else self.config.rate_limit.attempt(client, now=now)
        record, activation, lease, new = self.ledger.update(
            decide, key_hash=key_hash, license_id=license_id, attempt=attempt
        )
        return self._issue(signer, record, activation, lease, now, new)

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

    def _decide_redemption(
        self,
        record: LicenseRecord,
        *,
        product: str,
        fingerprint: Fingerprint,
        hostname: str,
        method: str,
        identity: str,
        now: _dt.datetime,
    ) -> tuple[LicenseRecord, tuple[LicenseRecord, Activation, policy.Lease, bool]]:
        is_new = record.activation is None
        updated, activation, lease = policy.redeem(
            record,
            product=product,
            fingerprint=fingerprint,
            hostname=hostname,
            method=method,
            activation_id=_random_id("ACT-", 12),
            actor=self.actor,
            now=now,
            months=self.config.regeneration_months,
            lease_days=self.ledger.info.lease_days,
            identity=identity,
            accept_machine_id=self._accepts_machine_id(record),
        )
        return updated, (updated, activation, lease, is_new)

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

        def decide(
            record: LicenseRecord,
        ) -> tuple[LicenseRecord, tuple[LicenseRecord, Activation, policy.Lease]]:
            updated, activation, lease = policy.renew(
                record,
                product=request.product,
                activation_id=request.activation_id,
                fingerprint=request.fingerprint,
                method=method,
                actor=self.actor,
                now=now,
                lease_days=self.ledger.info.lease_days,
                months=self.config.regeneration_months,
            )
            return updated, (updated, activation, lease)

        attempt = None
        if client is not None:
            attempt = self.config.rate_limit.attempt(client, now=now, counted=_RENEWAL_PROBES)
        record, activation, lease = self.ledger.update(
            decide, license_id=request.license_id, attempt=attempt
        )
        return self._issue(signer, record, activation, lease, now, new=False)

    def revocation_list(self, days: int | None = None) -> str:
        """The signed revocation list: revoked licenses and superseded activations still live.

        Entries whose every token has expired are left out. One list is signed
        per serial and UTC day and then reused, so repeated calls return the
        same text (HTTP caches and ETags stay useful).

        Args:
            days: how long the list stays fresh (default from the config, 30).

        Raises:
            BadInputError: ``days`` out of 1..365.
        """
        fresh = self.config.revocation_list_days if days is None else days
        if type(fresh) is not int or not 1 <= fresh <= 365:
            raise BadInputError("revocation list days must be a whole number from 1 to 365")
        signer = self._signing()
        now = now_from(self._clock)
        day = now.replace(hour=0, minute=0, second=0, microsecond=0)
        serial, entries = self.ledger.revocations()
        cache_key = (serial, day, fresh, signer.kid)
        cached = self._revocation_list
        if cached is not None and cached[0] == cache_key:
            return cached[1]
        live = [e for e in entries if e.until > day]
        claims = build_revocation_claims(
            issuer=self.provider,
            serial=serial,
            issued_at=now,
            expires_at=now + _dt.timedelta(days=fresh),
            licenses=[e.ident for e in live if e.kind == RevocationEntry.LICENSE],
            activations=[e.ident for e in live if e.kind == RevocationEntry.ACTIVATION],
        )
        text = signer.sign(claims, typ=REVOCATIONS_TYPE)
        self._revocation_list = (cache_key, text)
        return text

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
        return LicenseView(
            record=record,
            activation_key=self._secret.key_for(record.license_id, record.generation),
            state=record.state(now),
            next_regeneration=policy.next_regeneration(
                record, self.config.regeneration_months, now
            ),
            lease_days=self.ledger.info.lease_days
            if record.lease_days is None
            else record.lease_days,
            accepts_machine_id=self._accepts_machine_id(record),
        )
