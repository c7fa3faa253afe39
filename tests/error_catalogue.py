"""Every LicenseError subclass licet defines, each with an example instance carrying data."""

from __future__ import annotations

import datetime as dt
import importlib
import pkgutil

import verifier
from verifier.errors import (
    ActivationRequiredError,
    AlreadyActivatedError,
    ClockRollbackError,
    LicenseError,
    NoLicenseForAddressError,
    RegenerationTooSoonError,
)

PACKAGES = ("verifier", "keytool", "issuer")


def every_error_class() -> list[type[LicenseError]]:
    """Import every module of the three packages, then walk the LicenseError tree."""
    for package in PACKAGES:
        module = importlib.import_module(package)
        for info in pkgutil.walk_packages(module.__path__, package + "."):
            importlib.import_module(info.name)
    found: list[type[LicenseError]] = []
    pending = [LicenseError]
    while pending:
        cls = pending.pop()
        if cls.__module__.split(".")[0] in PACKAGES:
            found.append(cls)
        pending.extend(cls.__subclasses__())
    assert verifier.LicenseError in found
    return sorted(found, key=lambda c: c.code)


def example(cls: type[LicenseError]) -> LicenseError:
    """An instance of ``cls``, with data where the class carries some."""
    if cls is AlreadyActivatedError:
        return AlreadyActivatedError(dt.date(2027, 2, 15))
    if cls is RegenerationTooSoonError:
        return RegenerationTooSoonError(dt.datetime(2027, 2, 15, 12, 30, tzinfo=dt.UTC))
    if cls is ClockRollbackError:
        return ClockRollbackError(dt.datetime(2027, 2, 15, 12, 30, tzinfo=dt.UTC))
    if cls is ActivationRequiredError:
        return ActivationRequiredError(reason=NoLicenseForAddressError(), buy_url="https://example.com/buy")
    return cls()


def same_error(rebuilt: LicenseError, original: LicenseError) -> None:
    """Assert ``rebuilt`` is ``original`` again: exact class, code, message and data."""
    assert type(rebuilt) is type(original), (type(rebuilt), type(original))
    assert (rebuilt.code, rebuilt.message, rebuilt.details()) == (original.code, original.message, original.details())
    for name in ("regenerate_after", "allowed_from", "buy_url", "seen"):
        assert getattr(rebuilt, name, None) == getattr(original, name, None), name
    reason = getattr(original, "reason", None)
    if reason is not None:
        same_error(rebuilt.reason, reason)  # type: ignore[attr-defined]
