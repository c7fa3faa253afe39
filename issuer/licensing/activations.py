"""Activation and renewal: the one redemption function, and a fresh lease for the same activation.

Every activation path — air-gapped, online manual and automatic — ends in
:meth:`Activations.redeem` (or :meth:`Activations.redeem_for_license`):
inside one ledger transaction the client's rate limit is judged
(:func:`issuer.policy.ratelimit.counting`), the key's license found
(:func:`issuer.policy.lifecycle.current_key`), the policy decides, and the
ledger keeps the result; then the token is signed. Renewals extend the lease
of the license's current activation only.

Example:
    >>> iss.activations.redeem(request, method="online", client="203.0.113.7")  # doctest: +SKIP
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Callable
from dataclasses import dataclass

from issuer import policy
from issuer.addresses import canonical_ip
from issuer.ledger.api import LedgerBackend
from issuer.licensing.licenses import accepts_machine_id, existing, random_id, store
from issuer.licensing.minting import Minter, key_hash
from issuer.policy import ratelimit
from issuer.policy.ratelimit import RateLimit
from issuer.records import Activation, LicenseRecord
from keytool.signing import TokenSigner
from verifier.activation_key import normalize_key
from verifier.claims import IDENTITY_HARDWARE, build_claims
from verifier.clock import Clock, now_from
from verifier.errors import (
    ActivationNotFoundError,
    LicenseError,
    LicenseNotFoundError,
    NoLicenseForAddressError,
    WrongServerError,
)
from verifier.fingerprint import Fingerprint
from verifier.renewal import RenewalRequest
from verifier.request import ActivationRequest

__all__ = ["Activated", "Activations"]


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


class Activations:
    """Redemptions and renewals over one ledger, by one actor.

    Args:
        ledger: the ledger.
        minter: the activation-key secret and the signing key.
        clock: time source.
        actor: who acts (an air-gapped code is redeemed by whoever runs the command).
        limits: failed attempts allowed per anonymous client.
        regeneration_months: calendar months between key regenerations.
    """

    def __init__(
        self,
        ledger: LedgerBackend,
        minter: Minter,
        *,
        clock: Clock,
        actor: str,
        limits: RateLimit,
        regeneration_months: int,
    ) -> None:
        self.ledger = ledger
        self.actor = actor
        self._minter = minter
        self._clock = clock
        self._limits = limits
        self._months = regeneration_months

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
        signer = (
            self._minter.signer()
        )  # before the ledger: a missing key must not burn an activation
        now = now_from(self._clock)
        attempt = None if client is None else self._limits.attempt(client, now=now)
        with self.ledger.transaction() as tx:
            with ratelimit.counting(tx, attempt):
                if key_hash is not None:
                    found = tx.license(key_hash=key_hash)
                    # The provider's own door (no anonymous client) hears which
                    # regeneration replaced an old key; a panel on the network does not.
                    generation = None if client is not None else self._generation(found, key_hash)
                    record = policy.current_key(found, key_hash, key_generation=generation)
                else:
                    record = existing(tx, license_id)
                updated, activation, lease = policy.redeem(
                    record,
                    product=product,
                    fingerprint=fingerprint,
                    hostname=hostname[:253],
                    method=method,
                    activation_id=random_id("ACT-", 12),
                    # A panel asking over the network is the actor; an air-gapped code is
                    # redeemed by whoever runs the command.
                    actor=self.actor if method == "air-gapped" else f"panel:{method}",
                    now=now,
                    months=self._months,
                    lease_days=self.ledger.info.lease_days,
                    identity=identity,
                    accept_machine_id=accepts_machine_id(record, self.ledger.info),
                )
            store(tx, record, updated, info=self.ledger.info, months=self._months)
        return self._issue(signer, updated, activation, lease, now, record.activation is None)

    def _generation(self, record: LicenseRecord | None, presented: str) -> int | None:
        """The generation of the key whose hash is ``presented``, if it is one of ``record``'s."""
        if record is None or record.key_hash == presented:
            return None
        for generation in range(1, record.generation):
            key = self._minter.key_for(record.license_id, generation)
            if key_hash(normalize_key(key)) == presented:
                return generation
        return None

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
            issuer=self.ledger.info.provider,
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

    def renew(
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
        signer = self._minter.signer()
        now = now_from(self._clock)
        attempt = None
        if client is not None:
            attempt = self._limits.attempt(client, now=now, counted=_RENEWAL_PROBES)
        with self.ledger.transaction() as tx:
            with ratelimit.counting(tx, attempt):
                record = existing(tx, request.license_id)
                updated, activation, lease = policy.renew(
                    record,
                    product=request.product,
                    activation_id=request.activation_id,
                    fingerprint=request.fingerprint,
                    method=method,
                    actor=self.actor if method == "air-gapped" else f"panel:{method}",
                    now=now,
                    lease_days=self.ledger.info.lease_days,
                    months=self._months,
                )
            store(tx, record, updated, info=self.ledger.info, months=self._months)
        return self._issue(signer, updated, activation, lease, now, new=False)

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
