"""Token minting: the one place a licet token is signed.

The issuer signs every activation token through :class:`TokenSigner`; tests
use it to mint real tokens. Claims come from :func:`verifier.claims.build_claims`.

Example:
    >>> signer = Keyring("keys").signer()  # doctest: +SKIP
    >>> token = signer.sign(build_claims(...))  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from verifier.claims import ALGORITHM, TOKEN_TYPE

__all__ = ["TokenSigner"]


class TokenSigner:
    """Signs claims as a compact JWS: header ``alg: EdDSA``, ``typ: licet+jwt``, ``kid``.

    Args:
        private_key: the active Ed25519 private key.
        kid: its key id.
    """

    def __init__(self, private_key: Ed25519PrivateKey, kid: str) -> None:
        self._key = private_key
        self.kid = kid

    def sign(self, claims: Mapping[str, Any], *, typ: str = TOKEN_TYPE) -> str:
        """Return the compact JWS of ``claims`` (an activation token unless ``typ`` differs)."""
        return jwt.encode(
            dict(claims),
            self._key,
            algorithm=ALGORITHM,
            headers={"typ": typ, "kid": self.kid},
        )
