"""Offline verification of activation tokens.

Everything the check relies on is pinned by the verifier's configuration —
the algorithm (EdDSA), the token type, the audience (the product), the issuer
when configured, the trusted keys and the required claims — and nothing is
read from the token to decide *how* to check it: a token that names its own
algorithm or key would let an attacker choose a weaker check. Headers that
name keys (``jwk``, ``jku``, ``x5u``, ``x5c``) are never looked at.

With a :class:`~verifier.store.TokenStore`, a verifier also applies the
provider's signed revocation list (kept beside the token; a superseded
activation or a revoked license stops at once), remembers the license
server's refusal to renew a token (superseded, revoked, no such activation:
that token stops at once too) and keeps the clock mark, the time this server
has counted to (:mod:`verifier.clock_mark`): a wall clock set back further
than the tolerance, at once or a little at a time, stops the panel.

Example:
    >>> keys = TrustedKeys.from_file("trusted_keys.json")  # doctest: +SKIP
    >>> v = Verifier(product="ispmanager", trusted_keys=keys)  # doctest: +SKIP
    >>> lic = v.verify(token)  # doctest: +SKIP
    >>> lic.has("dns")  # doctest: +SKIP
    True
"""

from __future__ import annotations

import datetime as _dt
import math
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from verifier.claims import (
    IDENTITY_MACHINE_ID,
    TOKEN_TYPE,
    License,
    license_from_claims,
)
from verifier.clock import BootClock, Clock, format_utc, now_from, system_boot_clock, utc_now
from verifier.clock_mark import MarkKeeper
from verifier.errors import (
    ActivationNotFoundError,
    ActivationSupersededError,
    BadInputError,
    ClockRollbackError,
    InvalidTokenError,
    LicenseError,
    LicenseRevokedError,
    SigningKeyRevokedError,
    TokenExpiredError,
    TokenNotYetValidError,
    TokenStoreError,
    TokenTooLargeError,
    WrongServerError,
)
from verifier.fingerprint import Fingerprint, fingerprint, matches
from verifier.jws import TOKEN_WORDING, JwsChecker
from verifier.refusal import HeldRefusal, RenewalRefusal
from verifier.renewal import held_license
from verifier.revocations import HeldRevocations, RevocationList
from verifier.store import TokenStore
from verifier.trust import TrustedKeys

__all__ = ["Status", "TokenState", "Verifier", "VerifierConfig"]

_MEMO_SIZE = 16  # headers and fingerprint matches remembered per verifier


@dataclass(frozen=True)
class VerifierConfig:
    """Tunables of offline verification, with safe defaults.

    Attributes:
        leeway: clock skew tolerated on ``exp``, ``nbf`` and ``iat``
            (default 60 s; at most 1 hour).
        max_token_bytes: tokens longer than this are refused before any
            parsing (default 8 KiB; a licet token is under 1 KiB).
        cache_size: how many verified tokens are remembered so repeated checks
            of the same token skip the signature (default 64; 0 disables).
        clock_tolerance: how far the clock may fall behind the clock mark (the
            time this server has counted to) before the panel stops (default
            1 hour; 1 minute to 7 days).
        mark_interval: how far the clock mark moves on between a running
            verifier's visits to its store, where it saves the mark if it moved
            and picks up a newer revocation list (default 5 minutes; at most
            1 hour), so repeated checks stay cheap.
    """

    leeway: _dt.timedelta = _dt.timedelta(seconds=60)
    max_token_bytes: int = 8192
    cache_size: int = 64
    clock_tolerance: _dt.timedelta = _dt.timedelta(hours=1)
    mark_interval: _dt.timedelta = _dt.timedelta(minutes=5)

    def __post_init__(self) -> None:
        if not _dt.timedelta(0) <= self.leeway <= _dt.timedelta(hours=1):
            raise BadInputError("leeway must be between 0 and 1 hour")
        if not 512 <= self.max_token_bytes <= 65536:
            raise BadInputError("max_token_bytes must be between 512 and 65536")
        if not 0 <= self.cache_size <= 4096:
            raise BadInputError("cache_size must be between 0 and 4096")
        if not _dt.timedelta(minutes=1) <= self.clock_tolerance <= _dt.timedelta(days=7):
            raise BadInputError("clock_tolerance must be between 1 minute and 7 days")
        if not _dt.timedelta(0) <= self.mark_interval <= _dt.timedelta(hours=1):
            raise BadInputError("mark_interval must be between 0 and 1 hour")


class TokenState(StrEnum):
    """What a panel's token amounts to; only ``valid`` and ``grace`` let the panel run."""

    VALID = "valid"  # verifies, before renew_at
    GRACE = "grace"  # verifies, past renew_at: renew now
    EXPIRED = "expired"  # past exp: the lease or the license ran out
    SUPERSEDED = "superseded"  # the activation was replaced (or the license no longer has it)
    REVOKED = "revoked"  # the license, or the key that signed the token, was revoked
    CLOCK_ROLLBACK = "clock_rollback"  # the clock is behind the time this store counted to
    MISSING = "missing"
    INVALID = "invalid"
    WRONG_SERVER = "wrong_server"


_RUNS = frozenset({TokenState.VALID, TokenState.GRACE})
_DAY = 86400


@dataclass(frozen=True)
class Status:
    """The result of a status check (for screens; :meth:`Verifier.verify` raises instead).

    Attributes:
        state: one of :class:`TokenState`.
        license: the verified license when the panel may run (``valid`` or ``grace``).
        error: the refusal when it may not.
        checked_at: when the check ran (epoch seconds).
        revocations: the revocation list applied, if any.
        notes: problems that do not stop the panel (a stale revocation list,
            a clock mark that could not be saved).
    """

    state: TokenState
    license: License | None = None
    error: LicenseError | None = None
    checked_at: float = 0.0
    revocations: RevocationList | None = None
    notes: tuple[str, ...] = ()

    @property
    def valid(self) -> bool:
        """Whether the panel may run (``valid`` or ``grace``)."""
        return self.state in _RUNS

    @property
    def days_left(self) -> int | None:
        """Whole days until the token expires, when the panel may run."""
        if self.license is None:
            return None
        return max(0, math.floor((self.license.exp - self.checked_at) / _DAY))

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready view (``verifier status --json``)."""
        out: dict[str, Any] = {"state": str(self.state)}
        if self.license is not None:
            out.update(self.license.to_dict())
            out["days_left"] = self.days_left
        revocations = self.revocations
        out["revocations_serial"] = None if revocations is None else revocations.serial
        out["revocations_stale"] = (
            None if revocations is None else revocations.stale(self.checked_at)
        )
        out["notes"] = list(self.notes)
        if self.error is not None:
            out["code"] = self.error.code
            out["reason"] = self.error.message
        return out


# Refusals and the state each one puts a token in (anything else: invalid).
_STATES: tuple[tuple[type[LicenseError], TokenState], ...] = (
    (ClockRollbackError, TokenState.CLOCK_ROLLBACK),
    (TokenExpiredError, TokenState.EXPIRED),
    (ActivationSupersededError, TokenState.SUPERSEDED),
    (ActivationNotFoundError, TokenState.SUPERSEDED),
    (LicenseRevokedError, TokenState.REVOKED),
    (SigningKeyRevokedError, TokenState.REVOKED),
    (WrongServerError, TokenState.WRONG_SERVER),
)


class Verifier:
    """Checks activation tokens for one product on this server.

    Args:
        product: the product this panel is; tokens for any other audience are refused.
        trusted_keys: the only keys whose signatures count.
        issuer: when given, the ``iss`` every token must carry.
        config: leeway, size limit, cache size.
        clock: time source (aware UTC datetimes).
        boot_clock: the clock nobody can set back, which carries the clock
            mark forward between checks (default: this machine's).
        machine_id: stable-id override for containers and cloned VMs.
        server_fingerprint: this server's fingerprint; computed from the
            machine when omitted (tests pass one to simulate several servers).
        store: the token store whose revocation list and clock mark this
            verifier reads and keeps; without one both live in memory only.
    """

    def __init__(
        self,
        product: str,
        trusted_keys: TrustedKeys,
        *,
        issuer: str | None = None,
        config: VerifierConfig | None = None,
        clock: Clock = utc_now,
        boot_clock: BootClock | None = None,
        machine_id: str | None = None,
        server_fingerprint: Fingerprint | None = None,
        store: TokenStore | None = None,
    ) -> None:
        if not isinstance(product, str) or not product:
            raise BadInputError("product must be a non-empty string")
        if not isinstance(trusted_keys, TrustedKeys):
            raise BadInputError("trusted_keys must be a TrustedKeys")
        self.product = product
        self.issuer = issuer
        self.config = config or VerifierConfig()
        self._keys = trusted_keys
        self._clock = clock
        # The real clock read as epoch seconds without building a datetime: every
        # check of a running panel reads it, and datetime.now() costs most of a check.
        self._seconds: Callable[[], float] = (
            time.time if clock is utc_now else lambda: now_from(clock).timestamp()
        )
        self.machine_id = machine_id
        self._fingerprint = server_fingerprint
        self._leeway = self.config.leeway.total_seconds()
        self._cache: OrderedDict[str, License] = OrderedDict()
        self._jws = JwsChecker(
            trusted_keys, typ=TOKEN_TYPE, wording=TOKEN_WORDING, memo_size=_MEMO_SIZE
        )
        self._matched: dict[Fingerprint, bool] = {}
        if store is not None and not isinstance(store, TokenStore):
            raise BadInputError("store must be a TokenStore")
        self.store = store
        if boot_clock is not None and not isinstance(boot_clock, BootClock):
            raise BadInputError("boot_clock must be a BootClock")
        self._mark = MarkKeeper(
            boot_clock or system_boot_clock(),
            self.config.clock_tolerance.total_seconds(),
            self.config.mark_interval.total_seconds(),
        )
        self._check_mark = self._mark.check  # bound once: it runs at every check
        self._mark_error: str | None = None
        self._revocations = HeldRevocations(trusted_keys, issuer)
        self._refusal = HeldRefusal()
        if store is not None:
            self._load_store(store)

    def _load_store(self, store: TokenStore) -> None:
        try:
            self._mark.adopt(store.load_mark())
        except TokenStoreError as err:
            self._mark_error = err.message
        self._reload_revocations(store)
        self._reload_refusal(store)

    def _reload_revocations(self, store: TokenStore) -> None:
        if self._revocations.reload(store):
            self._cache.clear()  # every remembered token is checked against the new list

    def _reload_refusal(self, store: TokenStore) -> None:
        if self._refusal.reload(store):
            self._cache.clear()  # a remembered token must meet the refusal, or be free of it

    @property
    def clock(self) -> Clock:
        """The verifier's time source."""
        return self._clock

    @property
    def revocations(self) -> RevocationList | None:
        """The revocation list applied (the highest serial seen), or ``None``."""
        return self._revocations.current

    @property
    def notes(self) -> tuple[str, ...]:
        """Problems that do not stop the panel, for status screens and logs."""
        notes = []
        if self._mark_error is not None:
            notes.append(f"the clock mark could not be saved: {self._mark_error}")
        if self._revocations.problem is not None:
            notes.append(self._revocations.problem)
        if self._refusal.problem is not None:
            notes.append(self._refusal.problem)
        lst = self._revocations.current
        if lst is not None and lst.stale(self._seconds()):
            notes.append(
                f"the revocation list (serial {lst.serial}) is stale since "
                f"{lst.expires_at.date().isoformat()} — fetch a newer one"
            )
        return tuple(notes)

    def apply_revocations(self, text: object) -> RevocationList:
        """Check a signed revocation list and apply it if it is newer than the one held.

        A list with the serial already applied replaces it only when signed
        later (a refreshed, un-stale copy); a lower serial is refused, so
        replaying an old list cannot un-revoke anything. The list is kept in
        the store when there is one.

        Returns:
            The list now in force (with ``.serial``).

        Raises:
            RevocationsError: malformed, wrongly signed, untrusted key, or another issuer.
            RevocationsRollbackError: a lower serial than the list already applied.
            TokenStoreError: the store could not keep it (nothing was applied).
        """
        lst, changed = self._revocations.apply(text, self.store)
        if changed:
            self._cache.clear()  # every remembered token is checked against the new list
        return lst

    def refresh_revocations(
        self, server_url: str, *, timeout: float = 15.0
    ) -> RevocationList | None:
        """Fetch the provider's revocation list and apply it; never raises.

        A list that cannot be fetched or does not verify is not installed: the
        reason is kept in :attr:`notes` (until a list is applied) and the list
        held stays in force.

        Returns:
            The list in force afterwards, or ``None`` when fetching failed.
        """
        from verifier.wire import fetch_revocations  # HTTP loads only when used

        try:
            lst = fetch_revocations(server_url, self, timeout=timeout)
        except LicenseError as err:
            self._revocations.problem = (
                f"the revocation list from {server_url} was not installed: {err.message}"
            )
            return None
        self._revocations.problem = None
        return lst

    def record_refusal(
        self, token: str, error: LicenseError, *, server_url: str
    ) -> RenewalRefusal | None:
        """Remember that the license server refused to renew ``token`` for good.

        Only ``activation-superseded``, ``license-revoked`` and
        ``activation-not-found`` are kept (other refusals pass): from then on
        ``token``, and any token of its activation signed no later, is refused
        with that error — ``superseded`` or ``revoked`` on a status screen —
        until a token signed afterwards (a renewal, a re-activation) replaces it.
        The record is kept in the store when there is one.

        Args:
            token: the token whose renewal was refused (read without its signature).
            error: the server's refusal.
            server_url: the license server that refused.

        Returns:
            The record, or ``None`` when the refusal is not one that is kept.

        Raises:
            BadInputError: ``token`` is damaged (nothing is recorded).
        """
        refusal = RenewalRefusal.of(
            held_license(token), error, server=server_url, at=now_from(self._clock)
        )
        if refusal is None:
            return None
        self._refusal.record(refusal, self.store)
        self._cache.clear()  # a remembered token must meet the refusal
        return refusal

    @property
    def server_fingerprint(self) -> Fingerprint:
        """The fingerprint of the server this runs on, for the product (computed once)."""
        if self._fingerprint is None:
            self._fingerprint = fingerprint(self.product, self.machine_id)
        return self._fingerprint

    def verify(self, token: object) -> License:
        """Verify ``token`` offline and return its license.

        The clock is checked against the clock mark first. Then the header
        and the key it names, then the signature over the exact bytes
        received; only a signed payload is decoded and its claims checked
        (revocation list, validity, server). Repeated checks of a token
        already verified skip the signature and fingerprint (they cannot
        change) but re-check the clock, ``nbf`` and ``exp`` every time.

        Raises:
            ClockRollbackError: the clock is behind the clock mark by more than the tolerance.
            TokenTooLargeError: over the size limit (checked before parsing).
            UntrustedKeyError: unknown or out-of-window signing key.
            SigningKeyRevokedError: signed by a revoked key.
            ActivationSupersededError: the revocation list names this activation,
                or the license server refused to renew it as superseded.
            LicenseRevokedError: the revocation list names this license, or the
                license server refused to renew it as revoked.
            ActivationNotFoundError: the license server refused to renew it: the
                license has no such activation.
            TokenExpiredError | TokenNotYetValidError: outside its validity.
            WrongServerError: bound to another server.
            InvalidTokenError: anything else wrong with it.
        """
        if not isinstance(token, str):
            raise InvalidTokenError("activation token must be text")
        now = self._seconds()
        visit = self._check_mark(now)
        hit = self._cache.get(token)
        if hit is not None:
            self._check_window(hit, now)
            if visit:
                self._visit_store()
            if token in self._cache:
                return hit
            # The store held a newer list or a refusal (the cache was cleared): check afresh.
        lic = self._verify_fully(token, now)
        if self.config.cache_size:
            self._cache[token] = lic
            if len(self._cache) > self.config.cache_size:
                self._cache.popitem(last=False)
        self._mark.see(lic.iat)  # the provider's clock vouches for this time
        if visit:
            self._visit_store()
        return lic

    def _visit_store(self) -> None:
        """Once per interval of the mark: save the mark if it moved, pick up a newer list."""
        self._mark.visit()
        if self.store is None:
            return
        self._reload_revocations(self.store)
        self._reload_refusal(self.store)
        try:
            # Another process on this store may have counted further: take its mark in.
            self._mark.adopt(self.store.load_mark())
            pending = self._mark.pending()
            if pending is not None:
                self.store.save_mark(pending)
                self._mark.saved(pending)
            self._mark_error = None
        except TokenStoreError as err:
            # A read-only store must not stop a licensed panel: the mark still
            # holds in memory, and status reports why it could not be saved.
            self._mark_error = err.message

    def activate(
        self,
        key: str,
        *,
        server_url: str,
        store: TokenStore | None = None,
        timeout: float = 15.0,
    ) -> License:
        """Activate this server online with an activation key, verify the token, store it.

        The request names this verifier's product and carries the fingerprint
        of this verifier's own identity (its ``machine_id`` when it has one), so
        the key is bound to exactly what :meth:`verify` checks afterwards — a
        panel that verifies with a machine id can never burn its key on the
        hardware fingerprint. Nothing is stored unless the token verifies.

        Args:
            key: the activation key the customer typed.
            server_url: the license server.
            store: where the token goes (default: this verifier's ``store``).
            timeout: seconds for the whole exchange.

        Returns:
            The license of the stored token.

        Raises:
            BadInputError: no store, here or on the verifier.
            ActivationKeyFormatError: a typo in the key (nothing is sent).
            LicenseError: the server's refusal, or a token that does not verify here.
        """
        target = store if store is not None else self.store
        if target is None:
            raise BadInputError("Verifier.activate needs a token store: pass store=")
        from verifier.wire import activate_online  # HTTP loads only when used

        token = activate_online(
            server_url, self.product, key, machine_id=self.machine_id, timeout=timeout
        )
        lic = self.verify(token)
        target.save(token)
        return lic

    def status(self, token: str | None) -> Status:
        """Classify ``token`` for a status screen.

        Returns a :class:`Status` whose state is one of :class:`TokenState`;
        never raises for a bad token.
        """
        now = self._seconds()
        if token is None or not token.strip():
            return Status(TokenState.MISSING, checked_at=now, revocations=self._revocations.current)
        try:
            lic = self.verify(token.strip())
        except LicenseError as err:
            state = next((s for cls, s in _STATES if isinstance(err, cls)), TokenState.INVALID)
            return Status(state, error=err, **self._context(now))
        state = TokenState.GRACE if now >= lic.renew_at_epoch else TokenState.VALID
        return Status(state, license=lic, **self._context(now))

    def _context(self, now: float) -> dict[str, Any]:
        # Read after the check: it may have picked up a newer list from the store.
        return {"checked_at": now, "revocations": self._revocations.current, "notes": self.notes}

    def _check_window(self, lic: License, now: float) -> None:
        if lic.exp <= now - self._leeway:
            ended = format_utc(lic.expires_at)
            if lic.lease_limited:
                raise TokenExpiredError(f"the token's lease ended on {ended} — renew it")
            raise TokenExpiredError(f"the license expired on {ended}")
        if lic.nbf > now + self._leeway:
            raise TokenNotYetValidError()

    def _check_revocations(self, lic: License) -> None:
        lst = self._revocations.current
        if lst is None or lst.issuer != lic.issuer:
            return
        if lic.license_id in lst.licenses:
            raise LicenseRevokedError(
                f"license {lic.license_id} was revoked by the provider "
                f"(revocation list serial {lst.serial})"
            )
        if lic.activation_id in lst.activations:
            raise ActivationSupersededError(
                f"this server's activation {lic.activation_id} was superseded — the activation "
                f"key was regenerated (revocation list serial {lst.serial})"
            )

    def _verify_fully(self, token: str, now: float) -> License:
        # Order matters: only the header (pinned values, the kid) is read before
        # the signature has verified over the exact bytes received; the payload
        # is decoded, and memos are filled, only from signed input.
        if len(token) > self.config.max_token_bytes:
            raise TokenTooLargeError(
                f"activation token is larger than {self.config.max_token_bytes} bytes"
            )
        signed = self._jws.verify(token)
        lic = license_from_claims(signed.payload)
        self._jws.check_window(signed, lic.iat)
        return self._check_claims(lic, now)

    def _check_claims(self, lic: License, now: float) -> License:
        if lic.product != self.product:
            raise InvalidTokenError(
                f"activation token is for product {lic.product!r}, not {self.product!r}"
            )
        if self.issuer is not None and lic.issuer != self.issuer:
            raise InvalidTokenError(f"activation token was not issued by {self.issuer!r}")
        if lic.iat > now + self._leeway:
            raise TokenNotYetValidError("activation token was issued in the future")
        self._check_revocations(lic)
        refusal = self._refusal.current
        if refusal is not None and refusal.covers(lic):
            raise refusal.error()
        self._check_window(lic, now)
        if not self._matches_this_server(lic.fingerprint):
            raise WrongServerError()
        if self.machine_id is not None and lic.identity != IDENTITY_MACHINE_ID:
            # A token bound to hardware must not follow a declared id to other servers.
            raise WrongServerError(
                "activation token is bound to this server's hardware, not to a custom machine id"
            )
        return lic

    def _matches_this_server(self, bound: Fingerprint) -> bool:
        known = self._matched.get(bound)
        if known is None:
            known = matches(bound, self.server_fingerprint)
            if len(self._matched) < _MEMO_SIZE:
                self._matched[bound] = known
        return known
