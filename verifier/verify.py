"""Offline verification of activation tokens.

Everything the check relies on is pinned by the verifier's configuration —
the algorithm (EdDSA), the token type, the audience (the product), the issuer
when configured, the trusted keys and the required claims — and nothing is
read from the token to decide *how* to check it: a token that names its own
algorithm or key would let an attacker choose a weaker check. Headers that
name keys (``jwk``, ``jku``, ``x5u``, ``x5c``) are never looked at.

Example:
    >>> keys = TrustedKeys.from_file("trusted_keys.json")  # doctest: +SKIP
    >>> v = Verifier(product="ispmanager", trusted_keys=keys)  # doctest: +SKIP
    >>> lic = v.verify(token)  # doctest: +SKIP
    >>> lic.has("dns")  # doctest: +SKIP
    True
"""

from __future__ import annotations

import datetime as _dt
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from verifier.claims import (
    ALGORITHM,
    IDENTITY_MACHINE_ID,
    TOKEN_TYPE,
    License,
    license_from_claims,
)
from verifier.clock import Clock, now_from, utc_now
from verifier.encoding import EncodingError, b64url_decode, json_loads_strict
from verifier.errors import (
    BadInputError,
    InvalidTokenError,
    LicenseError,
    TokenExpiredError,
    TokenNotYetValidError,
    TokenTooLargeError,
    WrongServerError,
)
from verifier.fingerprint import Fingerprint, fingerprint, matches
from verifier.keys import check_signature
from verifier.trust import TrustedKeys

__all__ = ["Status", "TokenState", "Verifier", "VerifierConfig"]

_MEMO_SIZE = 16  # headers and fingerprint matches remembered per verifier
_UNSEEN = object()


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
    """

    leeway: _dt.timedelta = _dt.timedelta(seconds=60)
    max_token_bytes: int = 8192
    cache_size: int = 64

    def __post_init__(self) -> None:
        if not _dt.timedelta(0) <= self.leeway <= _dt.timedelta(hours=1):
            raise BadInputError("leeway must be between 0 and 1 hour")
        if not 512 <= self.max_token_bytes <= 65536:
            raise BadInputError("max_token_bytes must be between 512 and 65536")
        if not 0 <= self.cache_size <= 4096:
            raise BadInputError("cache_size must be between 0 and 4096")


class TokenState:
    """The states a status screen shows."""

    VALID = "valid"
    EXPIRED = "expired"
    MISSING = "missing"
    INVALID = "invalid"
    WRONG_SERVER = "wrong_server"


@dataclass(frozen=True)
class Status:
    """The result of a status check (for screens; :meth:`Verifier.verify` raises instead).

    Attributes:
        state: one of :class:`TokenState`.
        license: the verified license when ``state`` is ``valid``.
        error: the refusal when it is not.
    """

    state: str
    license: License | None = None
    error: LicenseError | None = None

    @property
    def valid(self) -> bool:
        """Whether the panel may run."""
        return self.state == TokenState.VALID

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready view (``verifier status --json``)."""
        out: dict[str, Any] = {"state": self.state}
        if self.license is not None:
            out.update(self.license.to_dict())
        if self.error is not None:
            out["code"] = self.error.code
            out["reason"] = self.error.message
        return out


class Verifier:
    """Checks activation tokens for one product on this server.

    Args:
        product: the product this panel is; tokens for any other audience are refused.
        trusted_keys: the only keys whose signatures count.
        issuer: when given, the ``iss`` every token must carry.
        config: leeway, size limit, cache size.
        clock: time source (aware UTC datetimes).
        machine_id: stable-id override for containers and cloned VMs.
        server_fingerprint: this server's fingerprint; computed from the
            machine when omitted (tests pass one to simulate several servers).
    """

    def __init__(
        self,
        product: str,
        trusted_keys: TrustedKeys,
        *,
        issuer: str | None = None,
        config: VerifierConfig | None = None,
        clock: Clock = utc_now,
        machine_id: str | None = None,
        server_fingerprint: Fingerprint | None = None,
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
        self.machine_id = machine_id
        self._fingerprint = server_fingerprint
        self._leeway = self.config.leeway.total_seconds()
        self._cache: OrderedDict[str, License] = OrderedDict()
        self._headers: dict[str, object] = {}
        self._matched: dict[Fingerprint, bool] = {}

    @property
    def server_fingerprint(self) -> Fingerprint:
        """The fingerprint of the server this runs on, for the product (computed once)."""
        if self._fingerprint is None:
            self._fingerprint = fingerprint(self.product, self.machine_id)
        return self._fingerprint

    def verify(self, token: object) -> License:
        """Verify ``token`` offline and return its license.

        The header and the key it names are checked first, then the
        signature over the exact bytes received; only a signed payload is
        decoded and its claims checked. Repeated checks of a token already
        verified skip the signature and fingerprint (they cannot change) but
        re-check ``nbf`` and ``exp`` against the clock every time.

        Raises:
            TokenTooLargeError: over the size limit (checked before parsing).
            UntrustedKeyError: unknown, revoked, or out-of-window signing key.
            TokenExpiredError | TokenNotYetValidError: outside its validity.
            WrongServerError: bound to another server.
            InvalidTokenError: anything else wrong with it.
        """
        if not isinstance(token, str):
            raise InvalidTokenError("activation token must be text")
        now = now_from(self._clock).timestamp()
        hit = self._cache.get(token)
        if hit is not None:
            self._check_window(hit, now)
            return hit
        lic = self._verify_fully(token, now)
        if self.config.cache_size:
            self._cache[token] = lic
            if len(self._cache) > self.config.cache_size:
                self._cache.popitem(last=False)
        return lic

    def status(self, token: str | None) -> Status:
        """Classify ``token`` for a status screen.

        Returns one of valid, expired, missing, invalid, wrong_server; never raises
        for a bad token.
        """
        if token is None or not token.strip():
            return Status(TokenState.MISSING)
        try:
            return Status(TokenState.VALID, license=self.verify(token.strip()))
        except TokenExpiredError as err:
            return Status(TokenState.EXPIRED, error=err)
        except WrongServerError as err:
            return Status(TokenState.WRONG_SERVER, error=err)
        except LicenseError as err:
            return Status(TokenState.INVALID, error=err)

    def _check_window(self, lic: License, now: float) -> None:
        if lic.exp <= now - self._leeway:
            raise TokenExpiredError()
        if lic.nbf > now + self._leeway:
            raise TokenNotYetValidError()

    def _verify_fully(self, token: str, now: float) -> License:
        # Order matters: only the header (pinned values, the kid) is read before
        # the signature has verified over the exact bytes received; the payload
        # is decoded, and memos are filled, only from signed input.
        if len(token) > self.config.max_token_bytes:
            raise TokenTooLargeError(
                f"activation token is larger than {self.config.max_token_bytes} bytes"
            )
        if not token.isascii():
            raise InvalidTokenError("activation token is not a compact JWS (ASCII text)")
        parts = token.split(".")
        if len(parts) != 3:
            raise InvalidTokenError("activation token is not a compact JWS (three parts)")
        head, body, signature = parts
        kid = self._headers.get(head, _UNSEEN)
        known_header = kid is not _UNSEEN
        if not known_header:
            kid = _header_kid(head)
        check_signature(
            self._keys.key_for(kid), token[: len(head) + 1 + len(body)].encode(), signature
        )
        if not known_header and len(self._headers) < _MEMO_SIZE:
            # Every token signed by one key shares one header; remember a few signed ones.
            self._headers[head] = kid
        lic = license_from_claims(_json_segment(body, "payload"))
        self._keys.check_window(str(kid), lic.iat)  # key_for accepted it: a trusted kid
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


def _header_kid(segment: str) -> object:
    """Check a header segment's pinned values and return its kid (as found: the keys judge it)."""
    header = _json_segment(segment, "header")
    if header.get("alg") != ALGORITHM:
        raise InvalidTokenError(f"activation token must be signed with {ALGORITHM}")
    if header.get("typ") != TOKEN_TYPE:
        raise InvalidTokenError(f"activation token type must be {TOKEN_TYPE}")
    if "crit" in header:
        raise InvalidTokenError("activation token requires extensions this verifier lacks")
    return header.get("kid")


def _json_segment(segment: str, name: str) -> dict[str, Any]:
    try:
        value = json_loads_strict(b64url_decode(segment))
    except EncodingError as err:
        raise InvalidTokenError(f"activation token {name} is malformed ({err})") from err
    if not isinstance(value, dict):
        raise InvalidTokenError(f"activation token {name} is not a JSON object")
    return value
