"""licet's panel side: offline verification of activation tokens.

Panels ship this package. It imports only the standard library and
cryptography — never a CLI, storage or web library.

Example:
    >>> from verifier import Verifier, TrustedKeys
    >>> v = Verifier(product="ispmanager",
    ...              trusted_keys=TrustedKeys.from_file("trusted_keys.json"))  # doctest: +SKIP
    >>> lic = v.verify(token)  # doctest: +SKIP
    >>> lic.license_id, lic.features, lic.expires_at, lic.has("dns")  # doctest: +SKIP

With a token store the verifier also keeps the revocation list and the clock
mark beside the token; ``v.status(token).state`` is one of :class:`TokenState`.
"""

from __future__ import annotations

__version__ = "0.1.0"

from verifier.activation_key import normalize_key
from verifier.claims import License
from verifier.errors import (
    ActivationKeyFormatError,
    ActivationNotFoundError,
    ActivationRequiredError,
    ActivationSupersededError,
    AlreadyActivatedError,
    BadInputError,
    CallbackError,
    ClockRollbackError,
    InvalidActivationKeyError,
    InvalidTokenError,
    LicenseError,
    LicenseExpiredError,
    LicenseNotFoundError,
    LicenseRevokedError,
    MachineIdRefusedError,
    NoLicenseForAddressError,
    ProductMismatchError,
    RateLimitedError,
    RegenerationTooSoonError,
    RenewalCodeError,
    RequestCodeError,
    RevocationsError,
    RevocationsRollbackError,
    ServerUnavailableError,
    SigningKeyRevokedError,
    TokenExpiredError,
    TokenNotYetValidError,
    TokenStoreError,
    TokenTooLargeError,
    TrustedKeysError,
    UntrustedKeyError,
    WrongServerError,
)
from verifier.fingerprint import fingerprint
from verifier.keys import UnsafeKeyError
from verifier.renewal import RenewalRequest, parse_renewal_code, renewal_code
from verifier.request import ActivationRequest, parse_request_code, request_code
from verifier.revocations import RevocationList
from verifier.store import TokenStore
from verifier.trust import TrustedKey, TrustedKeys
from verifier.verify import Status, TokenState, Verifier, VerifierConfig

__all__ = [
    "__version__",
    "Challenge",
    "activate_automatic",
    "activate_online",
    "fetch_revocations",
    "renew_online",
    "startup",
    "ActivationKeyFormatError",
    "ActivationNotFoundError",
    "ActivationRequest",
    "ActivationRequiredError",
    "ActivationSupersededError",
    "AlreadyActivatedError",
    "BadInputError",
    "CallbackError",
    "ClockRollbackError",
    "InvalidActivationKeyError",
    "InvalidTokenError",
    "License",
    "LicenseError",
    "LicenseExpiredError",
    "LicenseNotFoundError",
    "LicenseRevokedError",
    "MachineIdRefusedError",
    "NoLicenseForAddressError",
    "ProductMismatchError",
    "RateLimitedError",
    "RegenerationTooSoonError",
    "RenewalCodeError",
    "RenewalRequest",
    "RequestCodeError",
    "RevocationList",
    "RevocationsError",
    "RevocationsRollbackError",
    "ServerUnavailableError",
    "SigningKeyRevokedError",
    "Status",
    "TokenExpiredError",
    "TokenNotYetValidError",
    "TokenState",
    "TokenStore",
    "TokenStoreError",
    "TokenTooLargeError",
    "TrustedKey",
    "TrustedKeys",
    "TrustedKeysError",
    "UnsafeKeyError",
    "UntrustedKeyError",
    "Verifier",
    "VerifierConfig",
    "WrongServerError",
    "fingerprint",
    "normalize_key",
    "parse_renewal_code",
    "parse_request_code",
    "renewal_code",
    "request_code",
]

# The online client pulls in http.server and urllib; panels that only verify
# offline should not pay for importing them.
_CLIENT_NAMES = (
    "Challenge",
    "activate_automatic",
    "activate_online",
    "fetch_revocations",
    "renew_online",
    "startup",
)


def __getattr__(name: str) -> object:
    if name in _CLIENT_NAMES:
        from verifier import client

        return getattr(client, name)
    raise AttributeError(f"module 'verifier' has no attribute {name!r}")
