"""The provider's façade: one ledger and one keys folder, and the capabilities over them.

:class:`Issuer` opens the ledger and the keys once and holds one object per
capability — :attr:`~Issuer.licensing` (licenses),
:attr:`~Issuer.activations` (activation and renewal),
:attr:`~Issuer.revocation_lists`, :attr:`~Issuer.rate_limits`,
:attr:`~Issuer.webhooks` (webhook endpoints) and :attr:`~Issuer.accounts` —
which share the ledger, the signing key and one revocation-list cache. Its
methods are the library's documented doors, each handing the call to the
capability that does it; :meth:`Issuer.with_actor` gives the same issuer
acting for someone else (one per request), rebuilding only the capabilities.

Example:
    >>> iss = Issuer(ledger="ledger", keys="keys")  # doctest: +SKIP
    >>> created = iss.create_license(product="ispmanager", days=365)  # doctest: +SKIP
    >>> token = iss.activate(request_code_text)  # doctest: +SKIP
    >>> iss.regenerate(created.license_id)  # doctest: +SKIP
"""

from __future__ import annotations

import datetime as _dt
import os
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from issuer import outputs
from issuer.config import IssuerConfig
from issuer.ledger import (
    DEFAULT_LEASE_DAYS,
    DEFAULT_SHARD_WIDTH,
    LedgerBackend,
    check_creatable,
    create_ledger,
    open_ledger,
)
from issuer.licensing.accounts import Accounts, sees_keys
from issuer.licensing.activations import Activated, Activations
from issuer.licensing.licenses import (
    KEEP,
    Keep,
    Licenses,
    LicenseSummaryView,
    LicenseView,
    Page,
)
from issuer.licensing.minting import SECRET_FILE, KeySecret, Minter
from issuer.licensing.ratelimits import RateLimited, RateLimits
from issuer.licensing.revocation_list import (
    RevocationListCache,
    RevocationLists,
    SignedRevocations,
)
from issuer.licensing.webhooks import Webhooks
from issuer.policy import terms
from issuer.records import Account, LoggedEvent, RevocationEntry
from keytool.errors import PrivateKeyError
from keytool.keyring import ActiveSigner, KeyRecord, Keyring
from verifier.claims import IDENTITY_HARDWARE
from verifier.clock import Clock, now_from, utc_now
from verifier.errors import BadInputError, LedgerError, LedgerUnavailableError, LicenseError
from verifier.fingerprint import Fingerprint
from verifier.renewal import RenewalRequest, parse_renewal_code
from verifier.request import ActivationRequest, parse_request_code

__all__ = ["Issuer"]

_HEALTH_RETRY = 2  # seconds a balancer is told to wait before it looks at the ledger again


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

    licensing: Licenses
    activations: Activations
    revocation_lists: RevocationLists
    rate_limits: RateLimits
    webhooks: Webhooks

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
        self.ledger: LedgerBackend = open_ledger(ledger, lock_timeout=self.config.lock_timeout)
        self.keys = Path(keys)
        self._clock = clock
        secret = KeySecret.load(self.keys)
        if secret.check() != self.ledger.info.secret_check:
            raise PrivateKeyError(
                f"the activation-key secret in {self.keys} does not belong to this ledger"
            )
        signer = ActiveSigner(Keyring(self.keys, clock=clock), passphrase)
        self._minter = Minter(self.keys, secret=secret, signer=signer, clock=clock)
        self.accounts = Accounts(
            self.ledger.account_store, clock=clock, config=self.config.accounts
        )
        # One cache for every actor of this issuer: each request's issuer answers
        # from the list the first one signed.
        self._lists = RevocationListCache()
        self._act(actor, sees_keys=True)

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
        _create(
            ledger, Path(keys), name, now_from(clock), lease_days, shard_width, accept_machine_id
        )
        return cls(ledger, keys, clock=clock, **kwargs)

    def _act(self, actor: str, *, sees_keys: bool) -> None:
        """(Re)build the capabilities for ``actor`` over the shared ledger, keys and cache."""
        self.actor = actor
        #: Whether license views carry activation keys (not for read-scope API tokens).
        self.sees_keys = sees_keys
        months = self.config.regeneration_months
        self.licensing = Licenses(
            self.ledger,
            self._minter,
            clock=self._clock,
            actor=actor,
            sees_keys=sees_keys,
            regeneration_months=months,
        )
        self.activations = Activations(
            self.ledger,
            self._minter,
            clock=self._clock,
            actor=actor,
            limits=self.config.rate_limit,
            regeneration_months=months,
        )
        self.revocation_lists = RevocationLists(
            self.ledger,
            self._minter,
            clock=self._clock,
            cache=self._lists,
            days=self.config.revocation_list_days,
            max_bytes=self.config.revocation_list_max_bytes,
        )
        self.rate_limits = RateLimits(self.ledger, clock=self._clock, limit=self.config.rate_limit)
        self.webhooks = Webhooks(self.ledger, clock=self._clock, actor=actor)

    def with_actor(self, actor: str, *, keys: bool = True) -> Issuer:
        """The same issuer recording its changes under another actor (one per request).

        The ledger, the keys and the revocation-list cache are shared; only the
        capabilities are made anew.

        Args:
            actor: who acts, for the audit history.
            keys: whether its license views carry activation keys.
        """
        other = object.__new__(Issuer)
        other.config, other.ledger, other.keys = self.config, self.ledger, self.keys
        other._clock, other._minter, other._lists = self._clock, self._minter, self._lists
        other.accounts = self.accounts
        other._act(actor, sees_keys=self.sees_keys and keys)
        return other

    def acting_as(self, actor: str, *, keys: bool = True) -> Issuer:
        """The same issuer acting for ``actor`` (see :meth:`with_actor`)."""
        return self.with_actor(actor, keys=keys)

    @property
    def provider(self) -> str:
        """The provider name tokens are issued under (``iss``)."""
        return self.ledger.info.provider

    def check_ledger(self) -> None:
        """Whether this process can write its ledger now (a balancer's health check).

        Raises:
            LedgerUnavailableError: it cannot — the database is away, read-only
                or gives no connection, the folder is not writable or its lock
                stays taken; ``retry_after`` says when to look again.
        """
        try:
            self.ledger.check_writable()
        except LedgerUnavailableError:
            raise
        except LedgerError as err:  # busy, missing, refused: all "do not send requests here"
            raise LedgerUnavailableError(str(err), retry_after=_HEALTH_RETRY) from err

    # -- licenses (Licenses) -------------------------------------------------------

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
        """Create a license and its first activation key (see :meth:`Licenses.create`)."""
        return self.licensing.create(
            product, ip=ip, days=days, expires=expires, features=features, limits=limits,
            customer=customer, lease_days=lease_days, accept_machine_id=accept_machine_id,
            new_product=new_product,
        )  # fmt: skip

    def create_licenses(
        self, count: int, product: str, *, days: int | None = None, features: Iterable[str] = ()
    ) -> list[str]:
        """Bulk-create ``count`` licenses; returns their ids (see :meth:`Licenses.create_many`)."""
        return self.licensing.create_many(count, product, days=days, features=features)

    def show(self, license_id: str) -> LicenseView:
        """The license with its current key (see :meth:`Licenses.show`)."""
        return self.licensing.show(license_id)

    def licenses(self) -> list[LicenseView]:
        """Every license, oldest first."""
        return self.licensing.all()

    def regenerate(self, license_id: str) -> LicenseView:
        """Issue a new activation key, freeing the license (see :meth:`Licenses.regenerate`)."""
        return self.licensing.regenerate(license_id)

    def revoke(self, license_id: str) -> LicenseView:
        """Revoke a license (see :meth:`Licenses.revoke`)."""
        return self.licensing.revoke(license_id)

    def search(
        self,
        *,
        text: str | None = None,
        product: str | None = None,
        status: str | None = None,
        cursor: str | None = None,
        limit: int = 50,
    ) -> Page[LicenseSummaryView]:
        """Licenses, newest first, a page at a time (see :meth:`Licenses.search`)."""
        return self.licensing.search(
            text=text, product=product, status=status, cursor=cursor, limit=limit
        )

    def update_license(
        self,
        license_id: str,
        *,
        customer: str | Keep | None = KEEP,
        ip: str | Keep | None = KEEP,
        expires: _dt.date | Keep | None = KEEP,
        days: int | None = None,
        features: Iterable[str] | None = None,
        limits: Mapping[str, int] | None = None,
        lease_days: int | Keep | None = KEEP,
    ) -> LicenseView:
        """Change a license's terms; ``KEEP`` leaves one as it is (see :meth:`Licenses.update`)."""
        return self.licensing.update(
            license_id, customer=customer, ip=ip, expires=expires, days=days,
            features=features, limits=limits, lease_days=lease_days,
        )  # fmt: skip

    def events(self, *, after: str | None = None, limit: int = 100) -> Page[LoggedEvent]:
        """The audit log, in order, from the event after cursor ``after``."""
        return self.licensing.events(after=after, limit=limit)

    # -- activation and renewal (Activations) ----------------------------------------------

    def activate(self, request_code: str, *, method: str = "air-gapped") -> str:
        """Redeem an air-gapped request code and return the signed token (see :meth:`redeem`)."""
        return self.activations.redeem(parse_request_code(request_code), method=method).token

    def redeem(
        self, request: ActivationRequest, *, method: str, client: str | None = None
    ) -> Activated:
        """The one activation function: key + product + fingerprint → token (Activations.redeem)."""
        return self.activations.redeem(request, method=method, client=client)

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
        """Activate a license found by other proof than its key."""
        return self.activations.redeem_for_license(
            license_id, product=product, fingerprint=fingerprint, hostname=hostname,
            method=method, identity=identity,
        )  # fmt: skip

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
        """Automatic activation by the caller's address (Activations.activate_by_address)."""
        return self.activations.activate_by_address(
            address, product=product, fingerprint=fingerprint, hostname=hostname,
            confirm=confirm, method=method, identity=identity,
        )  # fmt: skip

    def renew(
        self, renewal_code: str, *, method: str = "air-gapped", client: str | None = None
    ) -> str:
        """Renew the lease a renewal code names; return the new token (Activations.renew)."""
        return self.activations.renew(
            parse_renewal_code(renewal_code), method=method, client=client
        ).token

    def renew_request(
        self, request: RenewalRequest, *, method: str, client: str | None = None
    ) -> Activated:
        """A fresh lease for the same activation (see :meth:`Activations.renew`)."""
        return self.activations.renew(request, method=method, client=client)

    # -- revocation lists, rate limits, keys ------------------------------------------------

    def revocation_list(self, days: int | None = None) -> str:
        """The signed revocation list (see :meth:`RevocationLists.text`)."""
        return self.revocation_lists.text(days)

    def signed_revocations(self, days: int | None = None) -> SignedRevocations:
        """The signed revocation list with its size against the panels' limit."""
        return self.revocation_lists.signed(days)

    def revocations(self) -> tuple[int, list[RevocationEntry]]:
        """The revocation list's serial and its entries still in force, for display."""
        return self.licensing.revocations()

    def rate_limited(self) -> list[RateLimited]:
        """Clients with failed attempts inside the window, blocked ones first."""
        return self.rate_limits.limited()

    def clear_rate_limit(self, address: str | None = None) -> list[str]:
        """Forget the failed attempts of ``address`` (of every client when ``None``)."""
        return self.rate_limits.clear(address)

    def signing_key_id(self) -> str:
        """Load the signing key now (checking file mode and passphrase) and return its kid."""
        return self._minter.signer().kid

    def signing_keys(self) -> list[KeyRecord]:
        """The signing keys (public facts only), for display."""
        return self._minter.key_records()

    def save_token(self, path: str | os.PathLike[str], token: str, *, force: bool = False) -> None:
        """Write a token to ``path`` (``--out``) without ever replacing key material."""
        outputs.save_token(path, token, protected=self._protected(), force=force)

    def save_revocation_list(
        self, path: str | os.PathLike[str], text: str, *, force: bool = False
    ) -> None:
        """Write a revocation list to ``path`` (``--out``), with the same care as a token."""
        outputs.save_revocation_list(path, text, protected=self._protected(), force=force)

    def _protected(self) -> list[Path]:
        return [self.keys, *self.ledger.protected_paths()]

    # -- the console and the admin API (Accounts) ------------------------------------------

    def add_user(self, name: str, password: str) -> Account:
        """Add a console user (password hashed with Argon2id)."""
        return self.accounts.add_user(name, password, actor=self.actor)

    def remove_user(self, name: str) -> None:
        """Remove a console user and end their sessions."""
        self.accounts.remove_user(name, actor=self.actor)

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


def _create(
    ledger: str | os.PathLike[str],
    keys: Path,
    name: str,
    now: _dt.datetime,
    lease_days: int,
    shard_width: int,
    accept_machine_id: bool,
) -> None:
    """Make a new ledger and, when the keys folder has none, the activation-key secret."""
    if not isinstance(name, str) or not name.strip() or len(name) > 128:
        raise BadInputError("provider name must be 1-128 characters")
    terms.check_lease_days(lease_days)
    check_creatable(ledger)
    Keyring(keys).active()
    secret_path = keys / SECRET_FILE
    made_secret = not secret_path.exists()
    secret = KeySecret.create_or_load(keys)
    try:
        create_ledger(
            ledger,
            provider=name.strip(),
            secret_check=secret.check(),
            now=now,
            lease_days=lease_days,
            shard_width=shard_width,
            accept_machine_id=bool(accept_machine_id),
        )
    except LicenseError:
        if made_secret:  # lost a race for the folder, or a bad shard width: leave nothing
            secret_path.unlink(missing_ok=True)
        raise
