"""Compact JWS as licet signs it: the one check under tokens and revocation lists.

Nothing read from the text decides how it is checked: the algorithm (EdDSA)
and the type are pinned by the caller, the key comes from the trusted keys
by ``kid``, and a header that asks for extensions (``crit``) is refused.
Only the header is read before the Ed25519 signature has verified over the
exact bytes received; the payload is decoded afterwards, and the header memo
is filled only from signed input. Once the caller has read the time of
signing from the payload, :meth:`JwsChecker.check_window` holds it to the
signing key's validity window.

Refusals are :class:`~verifier.errors.InvalidTokenError` (or the
:class:`~verifier.errors.UntrustedKeyError` family), worded with the
caller's :class:`Wording`; a revocation list turns them into its own refusal.

Example:
    >>> checker = JwsChecker(keys, typ=TOKEN_TYPE, wording=TOKEN_WORDING)  # doctest: +SKIP
    >>> signed = checker.verify(token)  # doctest: +SKIP
    >>> checker.check_window(signed, signed.payload["iat"])  # doctest: +SKIP
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from verifier.claims import ALGORITHM
from verifier.encoding import EncodingError, b64url_decode, json_loads_strict
from verifier.errors import InvalidTokenError
from verifier.keys import SIGNATURE_LENGTH, check_signature
from verifier.trust import TrustedKeys

__all__ = ["TOKEN_WORDING", "JwsChecker", "Signed", "Wording"]

_UNSEEN = object()


@dataclass(frozen=True)
class Wording:
    """How refusals name what is checked.

    Attributes:
        it: the subject of a sentence (``activation token is not ...``).
        its: the possessive before a part (``activation token header ...``).
        decode_detail: whether a malformed part's refusal names the decoding fault.
        short: how a person calls it when telling them to copy it again (default: ``it``).
    """

    it: str
    its: str
    decode_detail: bool = True
    short: str = ""


#: How an activation token's refusals read.
TOKEN_WORDING = Wording(it="activation token", its="activation token", short="the token")
# The start of a compact JWS cut short: base64url of a JSON object ("eyJ"), at most
# three segments, the last one possibly partial. Only its look is judged.
_JWS_START = re.compile(r"eyJ[A-Za-z0-9_-]*(?:\.[A-Za-z0-9_-]*){0,2}")
_SIGNATURE_CHARS = (SIGNATURE_LENGTH * 8 + 5) // 6  # 86: unpadded base64url of 64 bytes


@dataclass(frozen=True)
class Signed:
    """A compact JWS whose signature verified.

    Attributes:
        kid: the trusted key that signed it.
        payload: the decoded payload (a JSON object), read only after the signature.
    """

    kid: str
    payload: dict[str, Any]


class JwsChecker:
    """Checks compact JWS of one type against one set of trusted keys.

    Args:
        keys: the only keys whose signatures count.
        typ: the ``typ`` the header must carry.
        wording: how refusals name what is checked.
        memo_size: how many signed headers to remember (every text signed by one
            key shares one header, so a verifier that checks many skips parsing it).
    """

    def __init__(
        self, keys: TrustedKeys, *, typ: str, wording: Wording, memo_size: int = 0
    ) -> None:
        self._keys = keys
        self._typ = typ
        self._wording = wording
        self._memo_size = memo_size
        self._kids: dict[str, object] = {}

    def verify(self, text: str) -> Signed:
        """Check ``text``'s shape, pinned header and signature; return its kid and payload.

        Raises:
            InvalidTokenError: not a compact JWS in ASCII, a malformed or
                unpinned header, a bad signature, a malformed payload.
            UntrustedKeyError: an unknown kid, or a revoked key (``SigningKeyRevokedError``).
        """
        words = self._wording
        if not text.isascii():
            raise InvalidTokenError(f"{words.it} is not a compact JWS (ASCII text)")
        parts = text.split(".")
        # A copy that lost its end (a mail, a terminal, a text field's limit) says so.
        incomplete = f"{words.short or words.it} is incomplete — copy all of it"
        if len(parts) < 3 and _JWS_START.fullmatch(text):
            raise InvalidTokenError(incomplete)
        if len(parts) != 3:
            raise InvalidTokenError(f"{words.it} is not a compact JWS (three parts)")
        head, body, signature = parts
        kid = self._kids.get(head, _UNSEEN)
        known_header = kid is not _UNSEEN
        if not known_header:
            kid = self._header_kid(head)
        key = self._keys.key_for(kid, subject=words.it)
        if len(signature) < _SIGNATURE_CHARS and _JWS_START.fullmatch(text):
            raise InvalidTokenError(f"{incomplete} (its signature has the wrong length: cut short)")
        signing_input = text[: len(head) + 1 + len(body)].encode()
        check_signature(key, signing_input, signature, subject=words.it)
        if not known_header and len(self._kids) < self._memo_size:
            self._kids[head] = kid
        # key_for accepted it: the kid is a trusted key's, a string.
        return Signed(kid=str(kid), payload=self._segment(body, "payload"))

    def check_window(self, signed: Signed, iat: int) -> None:
        """Refuse a signed text whose time of signing lies outside its key's validity window.

        Raises:
            UntrustedKeyError: ``iat`` before the key existed or after it retired.
        """
        self._keys.check_window(signed.kid, iat, subject=self._wording.it)

    def _header_kid(self, segment: str) -> object:
        """Check a header's pinned values and return its kid (as found: the keys judge it)."""
        words = self._wording
        header = self._segment(segment, "header")
        if header.get("alg") != ALGORITHM:
            raise InvalidTokenError(f"{words.it} must be signed with {ALGORITHM}")
        if header.get("typ") != self._typ:
            raise InvalidTokenError(f"{words.its} type must be {self._typ}")
        if "crit" in header:
            raise InvalidTokenError(f"{words.it} requires extensions this verifier lacks")
        return header.get("kid")

    def _segment(self, segment: str, name: str) -> dict[str, Any]:
        words = self._wording
        try:
            value = json_loads_strict(b64url_decode(segment))
        except EncodingError as err:
            detail = f" ({err})" if words.decode_detail else ""
            raise InvalidTokenError(f"{words.its} {name} is malformed{detail}") from err
        if not isinstance(value, dict):
            raise InvalidTokenError(f"{words.its} {name} is not a JSON object")
        return value
