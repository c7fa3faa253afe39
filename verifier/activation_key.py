"""Activation keys: the human-typable format, defined once.

A key is 23 Crockford base32 characters (115 bits) plus one check
character, shown in six dash-separated groups of four::

    7K3Q-M9XW-2D4H-R8TB-6VNC-PJ5F

Input is case- and dash-insensitive, and Crockford's look-alikes are folded
(``O`` → ``0``, ``I``/``L`` → ``1``). The check character is Luhn mod 32, which
catches every single mistyped character and nearly every swap of two
neighbours, so a typo is reported before any request is sent.

Example:
    >>> key = key_from_bytes(bytes(range(15)))
    >>> normalize_key(key.lower().replace("-", "")) == key
    True
"""

from __future__ import annotations

from verifier.errors import ActivationKeyFormatError

__all__ = ["KEY_BITS", "KEY_LENGTH", "key_from_bytes", "normalize_key"]

_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_VALUE = {c: i for i, c in enumerate(_ALPHABET)}
_VALUE.update({"O": 0, "I": 1, "L": 1})
_DATA_CHARS = 23
KEY_BITS = 5 * _DATA_CHARS
KEY_LENGTH = _DATA_CHARS + 1
_GROUP = 4
_MAX_INPUT = 64


def _check_char(values: list[int]) -> str:
    # Luhn mod N (N = 32): double every second value from the right, fold, sum.
    total = 0
    for position, value in enumerate(reversed(values)):
        if position % 2 == 0:
            value *= 2
            value = value // 32 + value % 32
        total += value
    return _ALPHABET[(-total) % 32]


def _group(chars: str) -> str:
    return "-".join(chars[i : i + _GROUP] for i in range(0, len(chars), _GROUP))


def key_from_bytes(secret: bytes) -> str:
    """Format the first 115 bits of ``secret`` as a display key.

    Raises:
        ValueError: ``secret`` is shorter than 15 bytes.
    """
    if len(secret) * 8 < KEY_BITS:
        raise ValueError("need at least 115 bits")
    number = int.from_bytes(secret[:15], "big") >> (15 * 8 - KEY_BITS)
    values = [(number >> (5 * i)) & 31 for i in reversed(range(_DATA_CHARS))]
    data = "".join(_ALPHABET[v] for v in values)
    return _group(data + _check_char(values))


def normalize_key(text: object) -> str:
    """Return the canonical display form of a typed key.

    Raises:
        ActivationKeyFormatError: wrong type, length, character, or check character.
    """
    if not isinstance(text, str) or len(text) > _MAX_INPUT:
        raise ActivationKeyFormatError("activation key must be 24 characters, e.g. XXXX-XXXX-…")
    chars = "".join(text.split()).replace("-", "").upper()
    if len(chars) != KEY_LENGTH:
        raise ActivationKeyFormatError(
            f"activation key must have {KEY_LENGTH} characters, got {len(chars)} — check for a typo"
        )
    bad = sorted({c for c in chars if c not in _VALUE})
    if bad:
        raise ActivationKeyFormatError(
            f"activation key contains invalid character {bad[0]!r} — check for a typo"
        )
    values = [_VALUE[c] for c in chars]
    if _check_char(values[:-1]) != _ALPHABET[values[-1]]:
        raise ActivationKeyFormatError("activation key has a typo (check character does not match)")
    return _group("".join(_ALPHABET[v] for v in values))
