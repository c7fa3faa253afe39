"""The one exception tree of licet.

Every refusal anywhere in licet is a :class:`LicenseError` with a stable
machine-readable ``code`` and a one-line human message. The CLIs print
``str(err)`` and exit 1; the license server answers problem+json with
``err.code``; the panel's client turns that code back into the same class
(:func:`error_for_code`), so a panel sees the same exception whether it
activated online or offline.

Every subclass registers its ``code`` when the class is created: a class
without a code of its own, or with a code another class holds, is an error
at import. The classes are written by family (:mod:`~verifier.errors.input`,
``token``, ``activation``, ``transport``, ``provider``, ``admin``); this
package imports every family, so the registry is whole as soon as
``verifier.errors`` is imported, and every class shows as
``verifier.errors.<Name>``.

Every refusal of the provider's side is defined here too — the ledger and
keyring faults, the console's and admin API's refusals, those of the
commands — so a panel or any API client that imports only ``verifier``
rebuilds every code a licet server can send as its exact class;
``issuer.errors`` and ``keytool.errors`` re-export them under their
familiar homes.

Example:
    >>> try:
    ...     raise AlreadyActivatedError(regenerate_after=None)
    ... except LicenseError as err:
    ...     err.code
    'already-activated'
"""

from __future__ import annotations

from verifier.errors._registry import (
    LicenseError,
    error_class,
    error_classes,
    error_for_code,
)
from verifier.errors.activation import (
    ActivationNotFoundError,
    ActivationRequiredError,
    ActivationSupersededError,
    AlreadyActivatedError,
    CallbackError,
    InvalidActivationKeyError,
    LicenseExpiredError,
    LicenseNotFoundError,
    LicenseRevokedError,
    MachineIdRefusedError,
    NoLicenseForAddressError,
    ProductMismatchError,
    RegenerationTooSoonError,
)
from verifier.errors.admin import (
    AccountExistsError,
    AccountNotFoundError,
    AuthenticationError,
    CsrfError,
    ExpiryOutOfRangeError,
    ListenError,
    OutputRefusedError,
    PermissionDeniedError,
    RevocationListTooLargeError,
    UnknownProductError,
    WebhookNotFoundError,
    WebhookTargetError,
)
from verifier.errors.input import (
    ActivationKeyFormatError,
    BadInputError,
    RenewalCodeError,
    RequestCodeError,
)
from verifier.errors.provider import (
    KeyringError,
    KeyringMissingError,
    LedgerBusyError,
    LedgerCorruptError,
    LedgerError,
    LedgerExistsError,
    LedgerMissingError,
    LedgerUnavailableError,
    LedgerVersionError,
    LedgerWriteError,
    NoActiveKeyError,
    PassphraseError,
    PrivateKeyError,
    SecretMissingError,
)
from verifier.errors.token import (
    ClockRollbackError,
    InvalidTokenError,
    RevocationsError,
    RevocationsRollbackError,
    SigningKeyRevokedError,
    TokenExpiredError,
    TokenNotYetValidError,
    TokenStoreError,
    TokenTooLargeError,
    TrustedKeysError,
    TrustedKeysMissingError,
    UntrustedKeyError,
    WrongServerError,
)
from verifier.errors.transport import (
    BodyTooLargeError,
    HeadersTooLargeError,
    HttpRefusalError,
    MethodNotAllowedError,
    NotFoundError,
    RateLimitedError,
    ServerUnavailableError,
)

__all__ = [
    "AccountExistsError",
    "AccountNotFoundError",
    "ActivationKeyFormatError",
    "ActivationNotFoundError",
    "ActivationRequiredError",
    "ActivationSupersededError",
    "AlreadyActivatedError",
    "AuthenticationError",
    "BadInputError",
    "BodyTooLargeError",
    "CallbackError",
    "ClockRollbackError",
    "CsrfError",
    "ExpiryOutOfRangeError",
    "HeadersTooLargeError",
    "HttpRefusalError",
    "InvalidActivationKeyError",
    "InvalidTokenError",
    "KeyringError",
    "KeyringMissingError",
    "LedgerBusyError",
    "LedgerCorruptError",
    "LedgerError",
    "LedgerExistsError",
    "LedgerMissingError",
    "LedgerUnavailableError",
    "LedgerVersionError",
    "LedgerWriteError",
    "LicenseError",
    "LicenseExpiredError",
    "LicenseNotFoundError",
    "LicenseRevokedError",
    "ListenError",
    "MachineIdRefusedError",
    "MethodNotAllowedError",
    "NoActiveKeyError",
    "NoLicenseForAddressError",
    "NotFoundError",
    "OutputRefusedError",
    "PassphraseError",
    "PermissionDeniedError",
    "PrivateKeyError",
    "ProductMismatchError",
    "RateLimitedError",
    "RegenerationTooSoonError",
    "RenewalCodeError",
    "RequestCodeError",
    "RevocationsError",
    "RevocationListTooLargeError",
    "RevocationsRollbackError",
    "SecretMissingError",
    "ServerUnavailableError",
    "SigningKeyRevokedError",
    "TokenExpiredError",
    "TokenNotYetValidError",
    "TokenStoreError",
    "TokenTooLargeError",
    "TrustedKeysError",
    "TrustedKeysMissingError",
    "UnknownProductError",
    "WebhookNotFoundError",
    "WebhookTargetError",
    "UntrustedKeyError",
    "WrongServerError",
    "error_class",
    "error_classes",
    "error_for_code",
]
