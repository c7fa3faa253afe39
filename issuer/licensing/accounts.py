"""Who may use the console and the admin API: users, API tokens, sessions, login limits.

Passwords are hashed with Argon2id; API tokens are 256-bit random strings,
stored as their SHA-256 (a hash that cannot be reversed and needs no slow
hashing, since the token cannot be guessed); console sessions are stored
under the SHA-256 of their cookie, so reading the ledger gives no way in.
Every secret comparison is constant-time, and an unknown user name costs the
same Argon2 work as a wrong password.

A log-in is counted as a failed one *before* its password is checked, in one
locked ledger step that refuses it when this user name has failed too often
from this address, or this address under any names much more often
(:class:`issuer.policy.ratelimit.LoginAttempt`); a right password takes the count back
and clears the name's failures from that address. So concurrent guesses never
check more passwords than the limit, and guesses from one address never lock
the user out at another. At most :data:`PASSWORD_CHECKS` passwords are checked
at once per process (each Argon2 check takes 64 MiB); a log-in that finds no
free check within ``AccountsConfig.check_wait`` is refused uncounted.

Example:
    >>> accounts = Accounts(ledger.account_store, clock=utc_now)  # doctest: +SKIP
    >>> accounts.add_user("alice", "correct horse battery", actor="cli:root")  # doctest: +SKIP
    >>> key = accounts.login("alice", "correct horse", address="::1")  # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import hashlib
import hmac
import math
import re
import secrets
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from issuer.addresses import rate_bucket
from issuer.errors import AccountNotFoundError, AuthenticationError, PermissionDeniedError
from issuer.ledger.api import AccountStore
from issuer.policy.ratelimit import LoginAttempt
from issuer.records import Account, Event, Session
from verifier.clock import Clock, now_from
from verifier.errors import BadInputError, RateLimitedError

if TYPE_CHECKING:
    from argon2 import PasswordHasher

__all__ = ["PASSWORD_CHECKS", "SCOPES", "TOKEN_PREFIX", "Accounts", "AccountsConfig", "sees_keys"]

#: What an API token may do: ``read`` GETs without activation keys, ``keys``
#: GETs with them, ``write`` also creates and changes (and sees keys).
SCOPES = ("read", "keys", "write")
TOKEN_PREFIX = "licet_"  # noqa: S105  # a marker for secret scanners, not a secret
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,63}")
_TOKEN = re.compile(re.escape(TOKEN_PREFIX) + r"[A-Za-z0-9_-]{43}")
_SESSION = re.compile(r"[A-Za-z0-9_-]{43}")
MIN_PASSWORD, MAX_PASSWORD = 12, 1024
#: Passwords checked at once in one process: each Argon2id check takes 64 MiB and a
#: core for a tenth of a second or so, so a flood of log-ins queues instead of
#: exhausting memory. Shared by every ``Accounts`` of the process.
PASSWORD_CHECKS = 2
_checks = threading.BoundedSemaphore(PASSWORD_CHECKS)


def sees_keys(account: Account) -> bool:
    """Whether answers to this account may carry activation keys.

    A key is what a customer activates with: whoever reads it can burn the
    customer's license, so a token that only reads (dashboards, reports)
    never gets one. Console users see keys (the edit form shows them).
    """
    return account.scope in ("keys", "write")


@dataclass(frozen=True)
class AccountsConfig:
    """Session and login rules, with defaults.

    Attributes:
        session_idle: a session unused this long ends (default 30 minutes).
        session_max: a session ends this long after login, used or not (default 12 hours).
        login_limit: failed logins allowed per user name from one address in
            ``login_window`` (default 5; 1 to 1000); more log-ins of that name from
            that address are refused, the right password too, until the window passes.
        address_login_limit: failed logins allowed from one address under any
            names in ``login_window`` (default 100; from ``login_limit`` to 100,000);
            then every log-in from that address is refused until the window passes.
        login_window: the window (default 15 minutes).
        check_wait: how long a log-in waits for one of the :data:`PASSWORD_CHECKS`
            (default 5 seconds; at most a minute); then it is refused, uncounted,
            with a time to retry.
    """

    session_idle: _dt.timedelta = _dt.timedelta(minutes=30)
    session_max: _dt.timedelta = _dt.timedelta(hours=12)
    login_limit: int = 5
    address_login_limit: int = 100
    login_window: _dt.timedelta = _dt.timedelta(minutes=15)
    check_wait: _dt.timedelta = _dt.timedelta(seconds=5)

    def __post_init__(self) -> None:
        if not _dt.timedelta(minutes=1) <= self.session_idle <= self.session_max:
            raise BadInputError("session_idle must be at least a minute and at most session_max")
        if self.session_max > _dt.timedelta(days=30):
            raise BadInputError("session_max must be at most 30 days")
        if not 1 <= self.login_limit <= 1000:
            raise BadInputError("login_limit must be between 1 and 1000")
        if not self.login_limit <= self.address_login_limit <= 100_000:
            raise BadInputError("address_login_limit must be from login_limit to 100000")
        if not _dt.timedelta(minutes=1) <= self.login_window <= _dt.timedelta(days=1):
            raise BadInputError("login_window must be between a minute and a day")
        if not _dt.timedelta(0) <= self.check_wait <= _dt.timedelta(minutes=1):
            raise BadInputError("check_wait must be at most a minute")


def _sha256(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def _name(kind: str, value: Any) -> str:
    if not isinstance(value, str) or _NAME.fullmatch(value) is None:
        raise BadInputError(
            f"{kind} name must be 1-64 letters, digits, '.', '_', '@' or '-', "
            "starting with a letter or digit"
        )
    return value


def _hasher() -> PasswordHasher:
    try:
        from argon2 import PasswordHasher
    except ImportError as err:
        raise BadInputError(
            "console accounts need the 'console' extra: pip install '.[console]' (in the checkout)"
        ) from err
    return PasswordHasher()  # Argon2id with the library's current recommended cost


class Accounts:
    """Console users, API tokens and sessions in one ledger.

    Args:
        store: where they are stored: a ledger's
            :attr:`~issuer.ledger.api.LedgerBackend.account_store`, the only
            part of the ledger accounts use.
        clock: time source (session expiry and login limits follow it).
        config: session and login rules.
    """

    def __init__(
        self, store: AccountStore, *, clock: Clock, config: AccountsConfig | None = None
    ) -> None:
        self.store = store
        self.config = config or AccountsConfig()
        self._clock = clock
        self._dummy_hash: str | None = None

    # -- users -------------------------------------------------------------------

    def users(self) -> list[Account]:
        """The console users, by name."""
        return self.store.accounts("user")

    def add_user(self, name: str, password: str, *, actor: str) -> Account:
        """Add a console user.

        Raises:
            BadInputError: a malformed name, or a password under 12 characters.
            AccountExistsError: the name is taken.
        """
        _name("user", name)
        if not isinstance(password, str) or not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
            raise BadInputError(
                f"password must be {MIN_PASSWORD} to {MAX_PASSWORD} characters long"
            )
        now = now_from(self._clock)
        account = Account("user", name, _hasher().hash(password), "write", now)
        self.store.add_account(account, self._event("user-added", actor, now, name))
        return account

    def remove_user(self, name: str, *, actor: str) -> None:
        """Remove a console user and end their sessions.

        Raises:
            AccountNotFoundError: no such user.
        """
        now = now_from(self._clock)
        self.store.remove_account("user", name, self._event("user-removed", actor, now, name))

    # -- API tokens ----------------------------------------------------------------

    def tokens(self) -> list[Account]:
        """The admin API tokens, by name (only hashes of the tokens are stored)."""
        return self.store.accounts("token")

    def create_token(self, name: str, scope: str, *, actor: str) -> tuple[Account, str]:
        """Create an API token; returns it with the token text, which is never stored.

        Raises:
            BadInputError: a malformed name or an unknown scope.
            AccountExistsError: the name is taken.
        """
        _name("token", name)
        if scope not in SCOPES:
            raise BadInputError(f"scope must be one of {', '.join(SCOPES)}")
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        now = now_from(self._clock)
        account = Account("token", name, _sha256(token), scope, now)
        self.store.add_account(
            account, self._event("token-created", actor, now, f"{name} ({scope})")
        )
        return account, token

    def revoke_token(self, name: str, *, actor: str) -> None:
        """Revoke an API token at once.

        Raises:
            AccountNotFoundError: no such token.
        """
        now = now_from(self._clock)
        self.store.remove_account("token", name, self._event("token-revoked", actor, now, name))

    def authenticate_token(self, token: str, *, write: bool) -> Account:
        """The API token's account, if the token is valid and its scope allows the request.

        Raises:
            AuthenticationError: no such token (or not a token at all).
            PermissionDeniedError: a read- or keys-scope token asking to write.
        """
        if not isinstance(token, str) or _TOKEN.fullmatch(token) is None:
            raise AuthenticationError("missing or invalid API token")
        digest = _sha256(token)
        account = self.store.find_account("token", secret_hash=digest)
        if account is None or not hmac.compare_digest(account.secret_hash, digest):
            raise AuthenticationError("missing or invalid API token")
        if write and account.scope != "write":
            raise PermissionDeniedError()
        return account

    # -- console sessions -------------------------------------------------------------

    def login(self, name: str, password: str, *, address: str) -> str:
        """Check a password and open a session; returns the session cookie value.

        Args:
            name: the user name given.
            password: the password given.
            address: the client's address (IPv6 clients are counted per /64).

        Raises:
            RateLimitedError: too many failed logins of this name from this
                address, or from this address under any names; or no password
                check came free in time (nothing is counted then).
            AuthenticationError: wrong name or password (the message does not say which).
        """
        known = isinstance(name, str) and _NAME.fullmatch(name) is not None
        attempt = LoginAttempt(
            user=name if known else "-",  # names no account can have count as one
            bucket=rate_bucket(address),
            now=now_from(self._clock),
            window=self.config.login_window,
            user_limit=self.config.login_limit,
            address_limit=self.config.address_login_limit,
        )
        # Counted as a failure before the password is checked, in one locked step:
        # concurrent guesses can never check more passwords than the limit.
        self.store.reserve_login(attempt)
        account = self.store.find_account("user", name=name) if known else None
        if not _checks.acquire(timeout=self.config.check_wait.total_seconds()):
            self.store.release_login(attempt)  # nothing was checked: nothing counts
            wait = max(1, math.ceil(self.config.check_wait.total_seconds()))
            raise RateLimitedError(
                f"the console is busy checking other logins — try again in {wait} s",
                retry_after=wait,
            )
        try:
            password_ok = self._password_ok(account, password)
        finally:
            _checks.release()
        if account is None or not password_ok:
            raise AuthenticationError()  # the failure counted above stands
        self.store.release_login(attempt, forget=(attempt.pair,))
        now = attempt.now
        key = secrets.token_urlsafe(32)
        try:
            self.store.open_session(
                Session(_sha256(key), account.name, now, now),
                drop_unused_since=now - self.config.session_idle,
            )
        except AccountNotFoundError:  # removed (on another node) since the password check
            raise AuthenticationError() from None
        return key

    def session_user(self, key: str) -> str:
        """The user of a live session; an expired one is ended.

        Raises:
            AuthenticationError: no session, or it expired.
        """
        if not isinstance(key, str) or _SESSION.fullmatch(key) is None:
            raise AuthenticationError("please log in")
        now = now_from(self._clock)
        digest = _sha256(key)
        session = self.store.session(digest)
        if session is None or not hmac.compare_digest(session.key_hash, digest):
            raise AuthenticationError("please log in")
        if (
            now - session.last_seen >= self.config.session_idle
            or now - session.created_at >= self.config.session_max
        ):
            self.store.end_session(digest)
            raise AuthenticationError("your session expired — please log in again")
        if now - session.last_seen >= _dt.timedelta(minutes=1):  # not a write per request
            self.store.save_session(Session(digest, session.user, session.created_at, now))
        return session.user

    def logout(self, key: str) -> None:
        """End a session server-side (the cookie becomes worthless)."""
        if isinstance(key, str) and _SESSION.fullmatch(key):
            self.store.end_session(_sha256(key))

    @staticmethod
    def csrf_token(key: str) -> str:
        """The anti-forgery token of a session: derived from its secret cookie, never stored."""
        return hashlib.sha256(b"licet-csrf\0" + key.encode()).hexdigest()

    @classmethod
    def csrf_ok(cls, key: str, token: Any) -> bool:
        """Whether a form's anti-forgery token belongs to the session (constant-time)."""
        if not isinstance(token, str) or not token.isascii():
            return False
        if not isinstance(key, str) or _SESSION.fullmatch(key) is None:
            return False  # no session (or login cookie): no token can be right
        return hmac.compare_digest(cls.csrf_token(key), token)

    # -- internals ---------------------------------------------------------------------

    def _password_ok(self, account: Account | None, password: Any) -> bool:
        from argon2.exceptions import InvalidHashError, VerificationError

        hasher = _hasher()
        if not isinstance(password, str) or len(password) > MAX_PASSWORD:
            password = ""
        if account is None:
            # The same Argon2 work as for a real user: timing does not reveal names.
            if self._dummy_hash is None:
                self._dummy_hash = hasher.hash(secrets.token_urlsafe(16))
            with contextlib.suppress(VerificationError, InvalidHashError):
                hasher.verify(self._dummy_hash, password or "-")
            return False
        try:
            return bool(hasher.verify(account.secret_hash, password))
        except (VerificationError, InvalidHashError):
            return False

    @staticmethod
    def _event(action: str, actor: str, now: _dt.datetime, detail: str) -> Event:
        return Event(at=now, action=action, actor=actor, detail=detail)
