"""Strict base64url and JSON, shared by all three packages (public for that reason).

Tokens, request codes, trust files, the keyring and the JSON request bodies
of both provider servers all parse with these.

Strict means one accepted spelling per value: unpadded base64url whose
trailing bits are zero (so ``...A`` and ``...B`` cannot decode to the same
bytes and count as two different tokens), and JSON objects without duplicate
members (so two parsers can never disagree about a claim).
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from typing import Any

_URLSAFE_TO_STD = bytes.maketrans(b"-_", b"+/")
_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
# Characters allowed last in a segment of length ≡ 2 or 3 (mod 4): the bits
# past the final byte must be zero, or two spellings would decode alike.
_CANONICAL_LAST = {
    2: frozenset(c for i, c in enumerate(_ALPHABET) if i & 0xF == 0),
    3: frozenset(c for i, c in enumerate(_ALPHABET) if i & 0x3 == 0),
}


# A mail client's quote markers at the start of a line: "> ", ">> ", "> > ".
_QUOTE_MARKERS = re.compile(r"^[ \t]*(?:>[ \t]?)+", re.MULTILINE)


def unfold(text: str) -> str:
    """Text a person copied put back on one line: quote markers and all whitespace removed.

    Codes and tokens are base64url, which has neither spaces nor ``>``: a mail
    client folding a long line at 76 columns, a terminal wrapping it, an
    indent, or ``> `` quoting a reply adds nothing that belongs to them.
    """
    return "".join(_QUOTE_MARKERS.sub("", text).split())


class EncodingError(ValueError):
    """Private: raised by this module, always re-raised as a LicenseError by callers."""


def b64url_encode(data: bytes) -> str:
    """Unpadded base64url, the JOSE spelling."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    """Decode unpadded base64url, refusing padding, whitespace and non-canonical tails."""
    tail = len(text) % 4
    if tail == 1 or "+" in text or "/" in text or "=" in text or not text.isascii():
        raise EncodingError("not base64url")
    if tail and text[-1] not in _CANONICAL_LAST[tail]:
        raise EncodingError("non-canonical base64url")
    try:
        # strict_mode refuses whitespace and every character outside the alphabet.
        data = text.encode("ascii").translate(_URLSAFE_TO_STD) + b"=" * (-tail % 4)
        return binascii.a2b_base64(data, strict_mode=True)
    except binascii.Error as err:
        raise EncodingError("not base64url") from err


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj: dict[str, Any] = {}
    for name, value in pairs:
        if name in obj:
            # repr escapes control characters; the cut keeps a hostile name to one short line.
            raise EncodingError(f"duplicate JSON member {name[:64]!r}")
        obj[name] = value
    return obj


def _no_constants(name: str) -> Any:
    raise EncodingError(f"{name} is not JSON")


_DECODER = json.JSONDecoder(object_pairs_hook=_no_duplicates, parse_constant=_no_constants)


def json_loads_strict(data: bytes | str) -> Any:
    """Parse JSON refusing duplicate members and NaN/Infinity.

    Callers bound the input size first; the size bound is what keeps deeply
    nested input cheap (CPython's parser raises RecursionError, caught here).
    """
    try:
        text = data.decode("utf-8") if isinstance(data, bytes) else data
        return _DECODER.decode(text)
    except EncodingError:
        raise
    except (ValueError, RecursionError, UnicodeDecodeError) as err:
        raise EncodingError("not valid JSON") from err


def json_dumps_compact(obj: Any) -> bytes:
    """Deterministic compact JSON (sorted keys, no spaces, UTF-8)."""
    return json.dumps(obj, separators=(",", ":"), sort_keys=True, ensure_ascii=False).encode()
