"""Activation request codes: what an air-gapped panel hands to the provider.

One line of text: the version prefix ``LICET1.``, then base64url of a compact
JSON object (product, activation key, fingerprint, hostname, nonce, creation
time) followed by the first 4 bytes of its SHA-256, so a truncated or altered
copy is refused with a clear message instead of reaching the ledger.

Example:
    >>> code = request_code("ispmanager", key, machine_id="vm-1")  # doctest: +SKIP
    >>> parse_request_code(code).product  # doctest: +SKIP
    'ispmanager'
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import hmac
import re
import secrets
import socket
from dataclasses import dataclass
from typing import Any

from verifier.activation_key import normalize_key
from verifier.claims import IDENTITY_HARDWARE, IDENTITY_KINDS, IDENTITY_MACHINE_ID, TOKEN_TYPE
from verifier.clock import Clock, from_epoch, now_from, utc_now
from verifier.encoding import (
    EncodingError,
    b64url_decode,
    b64url_encode,
    json_dumps_compact,
    json_loads_strict,
    unfold,
)
from verifier.errors import BadInputError, LicenseError, RequestCodeError
from verifier.fingerprint import Fingerprint, fingerprint, parse_fingerprint
from verifier.revocations import REVOCATIONS_TYPE

__all__ = [
    "ActivationRequest",
    "HOSTNAME_PATTERN",
    "MAX_REQUEST_CODE",
    "RENEWAL_PREFIX",
    "REQUEST_PREFIX",
    "check_hostname",
    "check_text",
    "code_kind",
    "decode_code",
    "display_hostname",
    "encode_code",
    "parse_request_code",
    "identity_kind",
    "request_code",
    "wrong_kind",
]

REQUEST_PREFIX = "LICET1."
RENEWAL_PREFIX = "LICET1R."
# What people copy between a panel and the provider, by how it starts (the longer prefix
# first): a text pasted where another kind belongs is named, not called "unsupported".
_PREFIXES = ((RENEWAL_PREFIX, "renewal code"), (REQUEST_PREFIX, "activation request code"))
_SIGNED_KINDS = {TOKEN_TYPE: "activation token", REVOCATIONS_TYPE: "revocation list"}
MAX_REQUEST_CODE = 4096
_CHECKSUM_BYTES = 4
_MAX_TEXT = 253  # a hostname's maximum length; products and nonces are shorter
#: A hostname is only shown to the provider, in a terminal or a page: letters,
#: digits, '.', '_' and '-' only, so no control character or markup gets there.
HOSTNAME_PATTERN = r"^[A-Za-z0-9._-]{0,253}$"
_HOSTNAME = re.compile(HOSTNAME_PATTERN)
_NOT_HOSTNAME = re.compile(r"[^A-Za-z0-9._-]")


def check_hostname(value: object) -> str:
    """A hostname received in a code or a body, refused unless it matches :data:`HOSTNAME_PATTERN`.

    Raises:
        BadInputError: not text, too long, or a character outside the pattern.
    """
    if not isinstance(value, str) or _HOSTNAME.fullmatch(value) is None:
        raise BadInputError("host must be at most 253 letters, digits, '.', '_' or '-'")
    return value


def display_hostname(name: str) -> str:
    """``name`` made fit to show: other characters become ``-``, cut to 253 characters."""
    return _NOT_HOSTNAME.sub("-", name)[:_MAX_TEXT]


@dataclass(frozen=True)
class ActivationRequest:
    """The content of a request code (or of an online manual activation).

    Attributes:
        product: the product to activate.
        activation_key: the key in canonical form (its check character already verified).
        fingerprint: the server's fingerprint.
        hostname: shown to the provider only; never trusted.
        nonce: makes every request code unique.
        created_at: when the panel made the request (informational).
        identity: what the fingerprint was taken from: ``hardware``, or
            ``machine-id`` when the server declared its own id.
    """

    product: str
    activation_key: str
    fingerprint: Fingerprint
    hostname: str
    nonce: str
    created_at: _dt.datetime
    identity: str = IDENTITY_HARDWARE

    def to_payload(self) -> dict[str, Any]:
        """The JSON object inside the code."""
        return {
            "v": 1,
            "product": self.product,
            "key": self.activation_key,
            "fp": list(self.fingerprint),
            "host": self.hostname,
            "nonce": self.nonce,
            "ts": int(self.created_at.timestamp()),
            "idk": self.identity,
        }

    def encode(self) -> str:
        """The one-line request code."""
        return encode_code(REQUEST_PREFIX, self.to_payload())


def encode_code(prefix: str, payload: dict[str, Any]) -> str:
    """One line of text: ``prefix``, then base64url of compact JSON and its 4-byte checksum."""
    body = json_dumps_compact(payload)
    return prefix + b64url_encode(body + hashlib.sha256(body).digest()[:_CHECKSUM_BYTES])


def code_kind(text: str) -> str | None:
    """Which kind of licet text ``text`` is, by its look alone (nothing is checked).

    Returns:
        ``activation request code``, ``renewal code``, ``activation token``,
        ``revocation list``, or ``None`` for anything else.
    """
    code = unfold(text)
    for prefix, name in _PREFIXES:
        if code.startswith(prefix):
            return name
    if code.startswith("eyJ") and code.count(".") == 2:
        try:  # only to name it: the type in a header that has not been verified
            header = json_loads_strict(b64url_decode(code.split(".", 1)[0]))
        except EncodingError:
            return None
        typ = header.get("typ") if isinstance(header, dict) else None
        return _SIGNED_KINDS.get(typ) if isinstance(typ, str) else None
    return None


def _a(what: str) -> str:
    return f"an {what}" if what[:1] in "aeiou" else f"a {what}"


def wrong_kind(kind: str, expected: str) -> str:
    """The refusal of one kind of code where another was expected, as every door says it.

    Example:
        >>> wrong_kind("renewal code", "activation request code")
        'this is a renewal code, not an activation request code'
    """
    return f"this is {_a(kind)}, not {_a(expected)}"


def decode_code(
    text: object, prefix: str, what: str, error: type[LicenseError], max_length: int
) -> object:
    """Undo :func:`encode_code`, refusing truncated, altered or foreign codes.

    Args:
        text: the code as pasted (line breaks, indentation and ``>`` quote
            markers at line starts are ignored: :func:`~verifier.encoding.unfold`).
        prefix: the version prefix the code must carry.
        what: how the code is named in messages (``activation request code``).
        error: the error class to raise.
        max_length: longer codes are refused before decoding.

    Raises:
        LicenseError: ``error`` with a message saying what is wrong.
    """
    if not isinstance(text, str):
        raise error(f"{what} must be text")
    code = unfold(text)  # copied across terminals and mail: wrapped, indented, quoted
    if len(code) > max_length:
        raise error(f"{what} is too long")
    if not code.startswith(prefix):
        kind = code_kind(code)
        if kind is not None:
            raise error(wrong_kind(kind, what))
        if code.startswith("LICET") and "." in code:
            version = code.split(".", 1)[0]
            raise error(f"{what} version {version!r} is not supported here")
        raise error(f"not {_a(what)} (it should start with {prefix!r})")
    damaged = f"{what} is truncated or altered — copy the whole line"
    try:
        raw = b64url_decode(code[len(prefix) :])
    except EncodingError as err:
        raise error(damaged) from err
    body, checksum = raw[:-_CHECKSUM_BYTES], raw[-_CHECKSUM_BYTES:]
    if len(raw) <= _CHECKSUM_BYTES or not hmac.compare_digest(
        hashlib.sha256(body).digest()[:_CHECKSUM_BYTES], checksum
    ):
        raise error(damaged)
    try:
        return json_loads_strict(body)
    except EncodingError as err:
        raise error(f"{what} does not contain valid JSON") from err


def request_code(
    product: str,
    key: str,
    *,
    machine_id: str | None = None,
    hostname: str | None = None,
    clock: Clock = utc_now,
) -> str:
    """Make the request code this server prints for an air-gapped activation.

    Args:
        product: the product to activate.
        key: the activation key as the customer typed it.
        machine_id: the stable-id override for containers and cloned VMs.
        hostname: shown to the provider; defaults to this host's name.
        clock: the time source.

    Raises:
        ActivationKeyFormatError: the key has a typo (caught here, before anything is sent).
        BadInputError: the product is empty or the server has no identifier.
    """
    check_text("product", product)
    request = ActivationRequest(
        product=product,
        activation_key=normalize_key(key),
        fingerprint=fingerprint(product, machine_id),
        hostname=display_hostname(hostname or socket.gethostname()),
        nonce=secrets.token_urlsafe(12),
        created_at=now_from(clock),
        identity=identity_kind(machine_id),
    )
    return request.encode()


def identity_kind(machine_id: str | None) -> str:
    """The identity kind of a fingerprint taken with this ``machine_id`` override (or none)."""
    return IDENTITY_HARDWARE if machine_id is None else IDENTITY_MACHINE_ID


def check_text(name: str, value: object) -> str:
    """Return ``value`` if it is a non-empty string of at most 253 characters.

    Raises:
        BadInputError: it is not.
    """
    if not isinstance(value, str) or not value or len(value) > _MAX_TEXT:
        raise BadInputError(f"{name} must be a non-empty string of at most {_MAX_TEXT} characters")
    return value


def parse_request_code(text: object) -> ActivationRequest:
    """Parse and check a request code.

    Raises:
        RequestCodeError: not a request code, another version, truncated, altered, or malformed.
        ActivationKeyFormatError: the code carries a key with a typo.
    """
    payload = decode_code(
        text, REQUEST_PREFIX, "activation request code", RequestCodeError, MAX_REQUEST_CODE
    )
    return _request_from_payload(payload)


def _request_from_payload(payload: object) -> ActivationRequest:
    """Validate the JSON object inside a request code, field by field.

    Raises:
        RequestCodeError: any field missing or of the wrong type.
        ActivationKeyFormatError: the key has a typo.
    """
    if not isinstance(payload, dict) or payload.get("v") != 1:
        raise RequestCodeError("activation request has an unknown layout")
    try:
        product = check_text("product", payload.get("product"))
        hostname = payload.get("host", "")
        check_hostname(hostname)
        nonce = check_text("nonce", payload.get("nonce"))
        created = from_epoch(payload.get("ts"))
        if created is None:
            raise BadInputError("ts must be a timestamp")
        fp = parse_fingerprint(payload.get("fp"))
        identity = payload.get("idk", IDENTITY_HARDWARE)
        if identity not in IDENTITY_KINDS:
            raise BadInputError(f"idk must be one of {', '.join(IDENTITY_KINDS)}")
    except BadInputError as err:
        raise RequestCodeError(f"activation request is malformed: {err.message}") from err
    return ActivationRequest(
        product=product,
        activation_key=normalize_key(payload.get("key")),
        fingerprint=fp,
        hostname=hostname,
        nonce=nonce,
        created_at=created,
        identity=identity,
    )
