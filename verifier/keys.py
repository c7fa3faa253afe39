"""Ed25519 public keys: the one key-id rule and the one acceptance rule.

Both the provider's keyring and the panel's trusted keys go through
:func:`load_public_key`, so a key refused in one place is refused everywhere.

Example:
    >>> raw = bytes.fromhex("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a")
    >>> key_id(raw)
    '21fe31dfa154a261'
"""

from __future__ import annotations

import hashlib

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from verifier.encoding import EncodingError, b64url_decode
from verifier.errors import InvalidTokenError, LicenseError

__all__ = [
    "PUBLIC_KEY_LENGTH",
    "SIGNATURE_LENGTH",
    "UnsafeKeyError",
    "key_id",
    "load_public_key",
    "check_signature",
]

PUBLIC_KEY_LENGTH = 32
SIGNATURE_LENGTH = 64

# Curve25519 in twisted Edwards form: -x^2 + y^2 = 1 + d x^2 y^2 (mod p).
_P = 2**255 - 19
_D = (-121665 * pow(121666, _P - 2, _P)) % _P
_SQRT_M1 = pow(2, (_P - 1) // 4, _P)


class UnsafeKeyError(LicenseError):
    """A key that is not a usable Ed25519 public key."""

    code = "unsafe-key"
    default_message = "not a usable Ed25519 public key"


def key_id(public_bytes: bytes) -> str:
    """Return the key id: the first 16 hex characters of SHA-256 of the raw 32 bytes."""
    return hashlib.sha256(public_bytes).hexdigest()[:16]


def load_public_key(public_bytes: bytes) -> Ed25519PublicKey:
    """Accept raw Ed25519 public key bytes, or raise :class:`UnsafeKeyError`.

    Refused: any length but 32, encodings that are not canonical, points not
    on the curve, and points of small order (the identity among them) — with
    such a key, forged signatures verify for many messages.
    """
    if len(public_bytes) != PUBLIC_KEY_LENGTH:
        raise UnsafeKeyError(
            f"Ed25519 public key must be {PUBLIC_KEY_LENGTH} bytes, got {len(public_bytes)}"
        )
    point = _decode_point(public_bytes)
    if point is None:
        raise UnsafeKeyError("Ed25519 public key is not a canonical point on the curve")
    for _ in range(3):  # the cofactor is 8: small-order points vanish after three doublings
        point = _add(point, point)
    if point == (0, 1):
        raise UnsafeKeyError("Ed25519 public key is a small-order point (e.g. the identity)")
    return Ed25519PublicKey.from_public_bytes(public_bytes)


def check_signature(
    key: Ed25519PublicKey,
    signing_input: bytes,
    signature: str,
    *,
    subject: str = "activation token",
) -> None:
    """Check a compact JWS's Ed25519 signature over the exact bytes that were signed.

    Args:
        key: the trusted public key.
        signing_input: ``header.payload`` exactly as received (ASCII bytes), never re-encoded.
        signature: the third segment, base64url text.
        subject: how a refusal names what was signed.

    Raises:
        InvalidTokenError: the signature is not canonical base64url, not 64
            bytes, or does not verify.
    """
    try:
        raw = b64url_decode(signature)
    except EncodingError as err:
        raise InvalidTokenError(f"{subject} signature is not base64url") from err
    if len(raw) != SIGNATURE_LENGTH:
        raise InvalidTokenError(f"{subject} signature has the wrong length")
    try:
        key.verify(raw, signing_input)
    except InvalidSignature as err:
        raise InvalidTokenError(f"{subject} signature is invalid") from err


def _decode_point(data: bytes) -> tuple[int, int] | None:
    encoded = int.from_bytes(data, "little")
    sign = encoded >> 255
    y = encoded & ((1 << 255) - 1)
    if y >= _P:
        return None
    u = (y * y - 1) % _P
    v = (_D * y * y + 1) % _P
    x2 = u * pow(v, _P - 2, _P) % _P
    x = pow(x2, (_P + 3) // 8, _P)
    if (x * x - x2) % _P != 0:
        x = x * _SQRT_M1 % _P
    if (x * x - x2) % _P != 0:
        return None
    if x == 0 and sign == 1:
        return None
    if x & 1 != sign:
        x = _P - x
    return x, y


def _add(a: tuple[int, int], b: tuple[int, int]) -> tuple[int, int]:
    # The twisted Edwards addition law is complete for Ed25519 (d is not a square),
    # so the denominators below are never zero.
    (x1, y1), (x2, y2) = a, b
    t = _D * x1 * x2 * y1 * y2 % _P
    x3 = (x1 * y2 + y1 * x2) * pow(1 + t, _P - 2, _P) % _P
    y3 = (y1 * y2 + x1 * x2) * pow(1 - t, _P - 2, _P) % _P
    return x3, y3
