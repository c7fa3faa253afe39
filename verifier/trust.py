"""The keys a panel trusts, and the JWKS format they travel in.

A panel trusts exactly the keys it is given — from the provider's
``keytool export`` file or embedded in the panel package — never a key named
inside a token. Each key carries its status and validity window: a retired
key still verifies tokens issued before its retirement; a revoked key
verifies nothing.

Example:
    >>> keys = TrustedKeys.from_file("trusted_keys.json")  # doctest: +SKIP
    >>> keys.kids  # doctest: +SKIP
    ('21fe31dfa154a261',)
"""

from __future__ import annotations

import datetime as _dt
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from verifier.encoding import EncodingError, b64url_decode, b64url_encode, json_loads_strict
from verifier.errors import (
    SigningKeyRevokedError,
    TrustedKeysError,
    TrustedKeysMissingError,
    UntrustedKeyError,
)
from verifier.fileio import os_error_words, read_regular
from verifier.keys import UnsafeKeyError, key_id, load_public_key
from verifier.timefmt import from_epoch

__all__ = ["KeyStatus", "TrustedKey", "TrustedKeys", "MAX_TRUST_FILE_BYTES"]

MAX_TRUST_FILE_BYTES = 1 << 20


class KeyStatus:
    """The three states of a signing key."""

    ACTIVE = "active"
    RETIRED = "retired"
    REVOKED = "revoked"
    ALL = (ACTIVE, RETIRED, REVOKED)


@dataclass(frozen=True)
class TrustedKey:
    """One public key and the window in which tokens it signed are accepted.

    Attributes:
        kid: key id, always :func:`verifier.keys.key_id` of ``public_bytes``.
        public_bytes: the raw 32-byte Ed25519 public key.
        status: ``active``, ``retired`` or ``revoked``.
        not_before: tokens issued (``iat``) before this are refused.
        not_after: tokens issued after this (retirement) are refused; ``None`` while active.
    """

    kid: str
    public_bytes: bytes
    status: str
    not_before: _dt.datetime
    not_after: _dt.datetime | None

    def to_jwk(self) -> dict[str, Any]:
        """The RFC 8037 JWK of this key with licet's status and window members."""
        return {
            "kty": "OKP",
            "crv": "Ed25519",
            "x": b64url_encode(self.public_bytes),
            "kid": self.kid,
            "use": "sig",
            "alg": "EdDSA",
            "licet_status": self.status,
            "licet_not_before": int(self.not_before.timestamp()),
            "licet_not_after": None if self.not_after is None else int(self.not_after.timestamp()),
        }

    @classmethod
    def from_jwk(cls, jwk: object) -> TrustedKey:
        """Parse and check one JWK.

        Raises:
            TrustedKeysError: anything but an Ed25519 signing key whose kid matches.
        """
        if not isinstance(jwk, dict):
            raise TrustedKeysError("trusted key must be a JSON object")
        if (jwk.get("kty"), jwk.get("crv")) != ("OKP", "Ed25519"):
            raise TrustedKeysError("trusted key is not an Ed25519 (OKP) key")
        if jwk.get("alg", "EdDSA") != "EdDSA" or jwk.get("use", "sig") != "sig":
            raise TrustedKeysError("trusted key is not an EdDSA signing key")
        if "d" in jwk:
            raise TrustedKeysError("trusted keys must not contain private key material")
        x, kid, status = jwk.get("x"), jwk.get("kid"), jwk.get("licet_status", KeyStatus.ACTIVE)
        if not isinstance(x, str) or not isinstance(kid, str) or status not in KeyStatus.ALL:
            raise TrustedKeysError("trusted key lacks x, kid or a valid licet_status")
        try:
            raw = b64url_decode(x)
            load_public_key(raw)
        except EncodingError as err:
            raise TrustedKeysError(f"trusted key {kid!r}: x is not base64url") from err
        except UnsafeKeyError as err:
            raise TrustedKeysError(f"trusted key {kid!r}: {err.message}") from err
        if key_id(raw) != kid:
            raise TrustedKeysError(f"trusted key {kid!r}: kid does not match the key")
        return cls(
            kid=kid,
            public_bytes=raw,
            status=status,
            not_before=_moment(jwk.get("licet_not_before", 0), kid) or _EPOCH,
            not_after=_moment(jwk.get("licet_not_after"), kid),
        )


_EPOCH = _dt.datetime(1970, 1, 1, tzinfo=_dt.UTC)


def _moment(value: object, kid: str) -> _dt.datetime | None:
    if value is None:
        return None
    moment = from_epoch(value)
    if moment is None:
        raise TrustedKeysError(f"trusted key {kid!r}: validity window is not a timestamp")
    return moment


class TrustedKeys:
    """An immutable set of trusted public keys, looked up by kid."""

    def __init__(self, keys: Iterable[TrustedKey]) -> None:
        self._keys: dict[str, TrustedKey] = {}
        self._public: dict[str, Ed25519PublicKey] = {}
        for key in keys:
            if key.kid in self._keys:
                raise TrustedKeysError(f"trusted key {key.kid!r} appears twice")
            self._keys[key.kid] = key
            self._public[key.kid] = load_public_key(key.public_bytes)
        if not self._keys:
            raise TrustedKeysError("no trusted keys given")

    @classmethod
    def from_jwks(cls, jwks: Mapping[str, Any]) -> TrustedKeys:
        """Build from a parsed JWKS object (``{"keys": [...]}``), e.g. embedded in a panel."""
        keys = jwks.get("keys") if isinstance(jwks, Mapping) else None
        if (
            isinstance(jwks, Mapping)
            and "version" in jwks
            and isinstance(keys, list)
            and any(isinstance(k, Mapping) and "public" in k for k in keys)
        ):
            raise TrustedKeysError(
                "this is the provider's keyring (keys/keyring.json), not a trust set: "
                "give the trusted_keys.json that 'keytool export' writes"
            )
        if not isinstance(keys, list):
            raise TrustedKeysError("trusted keys must be a JWKS object with a 'keys' list")
        return cls(TrustedKey.from_jwk(jwk) for jwk in keys)

    @classmethod
    def from_json(cls, text: str | bytes) -> TrustedKeys:
        """Build from JWKS text."""
        if len(text) > MAX_TRUST_FILE_BYTES:
            raise TrustedKeysError("trusted keys document is too large")
        try:
            return cls.from_jwks(json_loads_strict(text))
        except EncodingError as err:
            raise TrustedKeysError(f"trusted keys are not valid JSON: {err}") from err

    @classmethod
    def from_file(cls, path: str | os.PathLike[str]) -> TrustedKeys:
        """Read a JWKS file written by ``keytool export``.

        Raises:
            TrustedKeysError: unreadable, too large, or any key unusable.
        """
        try:
            data = read_regular(Path(path), MAX_TRUST_FILE_BYTES)
        except OSError as err:
            raise TrustedKeysError(
                f"cannot read trusted keys {os.fspath(path)!r}: {os_error_words(err)}"
            ) from err
        if data is None:
            raise TrustedKeysMissingError(
                f"trusted keys file {Path(path).resolve()} not found — it is the "
                "trusted_keys.json the provider makes with 'keytool export'"
            )
        return cls.from_json(data)

    @property
    def kids(self) -> tuple[str, ...]:
        """The trusted key ids."""
        return tuple(self._keys)

    def __iter__(self) -> Any:
        return iter(self._keys.values())

    def key_for(self, kid: object, *, subject: str = "activation token") -> Ed25519PublicKey:
        """Return the public key a token's ``kid`` names, before anything else of it is read.

        Args:
            kid: the ``kid`` of the header, as found.
            subject: how a refusal names what was signed.

        Raises:
            UntrustedKeyError: unknown kid (any non-string too), or a revoked key.
        """
        key = self._keys.get(kid) if isinstance(kid, str) else None
        if key is None:
            named = repr(kid[:32]) if isinstance(kid, str) else "(no usable kid)"
            raise UntrustedKeyError(
                f"{subject} is signed by an unknown key {named}: the trusted keys here "
                "do not hold it — the provider re-exports them with 'keytool export'; install "
                "the new trusted_keys.json"
            )
        if key.status == KeyStatus.REVOKED:
            raise SigningKeyRevokedError(f"{subject} is signed by revoked key {kid}")
        return self._public[key.kid]

    def check_window(self, kid: str, iat: int, *, subject: str = "activation token") -> None:
        """Refuse a verified token that was issued outside its key's validity window.

        No leeway applies: a key's window and a token's ``iat`` come from the
        same clock, the provider's.

        Args:
            kid: the trusted key that signed it.
            iat: when it was signed (epoch seconds).
            subject: how a refusal names what was signed.

        Raises:
            UntrustedKeyError: ``iat`` (epoch seconds) before the key existed or after it retired.
        """
        key = self._keys[kid]
        if iat < key.not_before.timestamp():
            raise UntrustedKeyError(f"{subject} predates its signing key {kid}")
        if key.not_after is not None and iat > key.not_after.timestamp():
            raise UntrustedKeyError(f"{subject} was signed after key {kid} was retired")

    def to_jwks(self) -> dict[str, Any]:
        """The JWKS object of these keys."""
        return {"keys": [key.to_jwk() for key in self._keys.values()]}
