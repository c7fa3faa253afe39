"""Strict base64url and JSON, shared by tokens, request codes and trust files.

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

_B64URL = re.compile(r"[A-Za-z0-9_-]*")


class EncodingError(ValueError):
    """Private: raised by this module, always re-raised as a LicenseError by callers."""


def b64url_encode(data: bytes) -> str:
    """Unpadded base64url, the JOSE spelling."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    """Decode unpadded base64url, refusing padding, whitespace and non-canonical tails."""
    if len(text) % 4 == 1 or _B64URL.fullmatch(text) is None:
        raise EncodingError("not base64url")
    try:
        data = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError) as err:  # pragma: no cover - regex already guards
        raise EncodingError("not base64url") from err
    if b64url_encode(data) != text:
        raise EncodingError("non-canonical base64url")
    return data


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        raise EncodingError("duplicate JSON member")
    return obj


def _no_constants(name: str) -> Any:
    raise EncodingError(f"{name} is not JSON")


def json_loads_strict(data: bytes | str) -> Any:
    """Parse JSON refusing duplicate members and NaN/Infinity.

    Callers bound the input size first; the size bound is what keeps deeply
    nested input cheap (CPython's parser raises RecursionError, caught here).
    """
    try:
        return json.loads(data, object_pairs_hook=_no_duplicates, parse_constant=_no_constants)
    except EncodingError:
        raise
    except (ValueError, RecursionError, UnicodeDecodeError) as err:
        raise EncodingError("not valid JSON") from err


def json_dumps_compact(obj: Any) -> bytes:
    """Deterministic compact JSON (sorted keys, no spaces, UTF-8)."""
    return json.dumps(obj, separators=(",", ":"), sort_keys=True, ensure_ascii=False).encode()
