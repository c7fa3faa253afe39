"""Renewal codes: how an air-gapped panel asks the provider for a fresh lease.

Same style as an activation request code: the version prefix ``LICET1R.``,
then base64url of a compact JSON object (product, license id, activation id,
fingerprint, hostname, nonce, time) and its 4-byte checksum. The ids are read
from the token the panel holds — even an expired one — and the fingerprint is
computed on this server: the provider renews only the license's current
activation on the server it is bound to, so the code carries no secret.

Example:
    >>> code = renewal_code(token, product="ispmanager", machine_id="vm-1")  # doctest: +SKIP
    >>> parse_renewal_code(code).activation_id  # doctest: +SKIP
    'ACT-...'
"""

from __future__ import annotations

import datetime as _dt
import secrets
import socket
from dataclasses import dataclass
from typing import Any

from verifier.claims import License, license_from_claims
from verifier.clock import Clock, from_epoch, now_from, utc_now
from verifier.encoding import EncodingError, b64url_decode, json_loads_strict
from verifier.errors import BadInputError, LicenseError, RenewalCodeError
from verifier.fingerprint import Fingerprint, fingerprint, parse_fingerprint
from verifier.request import (
    RENEWAL_PREFIX,
    check_hostname,
    check_text,
    decode_code,
    display_hostname,
    encode_code,
)

__all__ = [
    "MAX_RENEWAL_CODE",
    "RENEWAL_PREFIX",
    "RenewalRequest",
    "held_license",
    "parse_renewal_code",
    "renewal_code",
]

MAX_RENEWAL_CODE = 4096
_MAX_TOKEN = 8192


@dataclass(frozen=True)
class RenewalRequest:
    """The content of a renewal code (or of an online renewal).

    Attributes:
        product: the product.
        license_id: the license the token names.
        activation_id: the activation the token names.
        fingerprint: this server's fingerprint, computed now.
        hostname: shown to the provider only; never trusted.
        nonce: makes every renewal code unique.
        created_at: when the panel made the code (informational).
    """

    product: str
    license_id: str
    activation_id: str
    fingerprint: Fingerprint
    hostname: str
    nonce: str
    created_at: _dt.datetime

    def to_payload(self) -> dict[str, Any]:
        """The JSON object inside the code."""
        return {
            "v": 1,
            "product": self.product,
            "lic": self.license_id,
            "act": self.activation_id,
            "fp": list(self.fingerprint),
            "host": self.hostname,
            "nonce": self.nonce,
            "ts": int(self.created_at.timestamp()),
        }

    def encode(self) -> str:
        """The one-line renewal code."""
        return encode_code(RENEWAL_PREFIX, self.to_payload())


def held_license(token: object) -> License:
    """The license a stored token names, read without checking its signature.

    Only for naming what the panel holds — its ids for a renewal, or a refusal
    of that renewal: the provider checks everything against its ledger, and a
    forged id only names an activation the forger does not hold.

    Raises:
        BadInputError: no token, or a damaged one.
    """
    if not isinstance(token, str) or len(token) > _MAX_TOKEN or token.count(".") != 2:
        raise BadInputError("the stored activation token is missing or not a token")
    try:
        claims = json_loads_strict(b64url_decode(token.split(".")[1]))
    except EncodingError as err:
        raise BadInputError("the stored activation token is damaged") from err
    if not isinstance(claims, dict):
        raise BadInputError("the stored activation token is damaged")
    try:
        return license_from_claims(claims)
    except LicenseError as err:
        raise BadInputError(f"the stored activation token is damaged: {err.message}") from err


def renewal_code(
    token: str,
    *,
    product: str,
    machine_id: str | None = None,
    hostname: str | None = None,
    clock: Clock = utc_now,
) -> str:
    """Make the renewal code this server prints for an air-gapped renewal.

    Args:
        token: the token the panel holds (valid, in grace, or expired).
        product: the product.
        machine_id: the stable-id override for containers and cloned VMs.
        hostname: shown to the provider; defaults to this host's name.
        clock: the time source.

    Raises:
        BadInputError: no usable token, or the server has no identifier.
    """
    return renewal_request(
        token, product=product, machine_id=machine_id, hostname=hostname, clock=clock
    ).encode()


def renewal_request(
    token: str,
    *,
    product: str,
    machine_id: str | None = None,
    hostname: str | None = None,
    clock: Clock = utc_now,
    server_fingerprint: Fingerprint | None = None,
) -> RenewalRequest:
    """The :class:`RenewalRequest` for ``token`` on this server (see :func:`renewal_code`)."""
    check_text("product", product)
    held = held_license(token)
    return RenewalRequest(
        product=product,
        license_id=held.license_id,
        activation_id=held.activation_id,
        fingerprint=server_fingerprint or fingerprint(product, machine_id),
        hostname=display_hostname(hostname or socket.gethostname()),
        nonce=secrets.token_urlsafe(12),
        created_at=now_from(clock),
    )


def parse_renewal_code(text: object) -> RenewalRequest:
    """Parse and check a renewal code.

    Raises:
        RenewalCodeError: not a renewal code, another version, truncated, altered, or malformed.
    """
    payload = decode_code(text, RENEWAL_PREFIX, "renewal code", RenewalCodeError, MAX_RENEWAL_CODE)
    if not isinstance(payload, dict) or payload.get("v") != 1:
        raise RenewalCodeError("renewal code has an unknown layout")
    try:
        hostname = payload.get("host", "")
        check_hostname(hostname)
        created = from_epoch(payload.get("ts"))
        if created is None:
            raise BadInputError("ts must be a timestamp")
        return RenewalRequest(
            product=check_text("product", payload.get("product")),
            license_id=check_text("license id", payload.get("lic")),
            activation_id=check_text("activation id", payload.get("act")),
            fingerprint=parse_fingerprint(payload.get("fp")),
            hostname=hostname,
            nonce=check_text("nonce", payload.get("nonce")),
            created_at=created,
        )
    except BadInputError as err:
        raise RenewalCodeError(f"renewal code is malformed: {err.message}") from err
