"""The one error registry: every class registers a unique code when it is created."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys

import pytest
from error_catalogue import every_error_class, example, same_error

from verifier import errors
from verifier.errors import LicenseError, error_class, error_for_code


def test_every_error_of_every_package_has_a_unique_registered_code() -> None:
    classes = every_error_class()
    codes = [cls.code for cls in classes]
    assert len(codes) == len(set(codes))
    assert len(classes) > 30  # the walk reached keytool's and issuer's modules too
    for cls in classes:
        assert error_class(cls.code) is cls


@pytest.mark.parametrize("cls", every_error_class(), ids=lambda cls: cls.code)
def test_every_error_is_rebuilt_as_its_exact_class_with_its_data(cls: type[LicenseError]) -> None:
    original = example(cls)
    same_error(error_for_code(original.code, original.message, original.details()), original)


def test_a_duplicate_code_is_an_error_when_the_class_is_created() -> None:
    with pytest.raises(TypeError, match=r"'ledger-busy' .* already used by verifier\.errors\.LedgerBusyError"):

        class Impostor(LicenseError):
            code = "ledger-busy"

    assert error_class("ledger-busy") is errors.LedgerBusyError


def test_a_class_without_its_own_code_is_an_error_when_it_is_created() -> None:
    with pytest.raises(TypeError, match="must define its own"):

        class Nameless(errors.LedgerError):
            pass

    with pytest.raises(TypeError, match="kebab-case"):

        class Shouting(LicenseError):
            code = "NOT_KEBAB"


def test_provider_errors_are_rebuilt_by_a_panel_that_imports_only_verifier() -> None:
    # The panel process never imports issuer or keytool, yet gets the exact classes.
    code = (
        "import sys\n"
        "from verifier.errors import error_for_code\n"
        "names = [type(error_for_code(c, 'x')).__name__ for c in "
        "('ledger-busy', 'ledger-write-failed', 'no-active-key', 'passphrase-error')]\n"
        "assert not any(m.split('.')[0] in ('issuer', 'keytool') for m in sys.modules)\n"
        "print(' '.join(names))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["LedgerBusyError", "LedgerWriteError", "NoActiveKeyError", "PassphraseError"]


def test_an_unknown_or_malformed_answer_is_a_plain_license_error_with_the_servers_code() -> None:
    unknown = error_for_code("from-the-future", "something new")
    assert type(unknown) is LicenseError and unknown.code == "from-the-future"
    dateless = error_for_code("regeneration-too-soon", "too soon", {"allowed_from": "soon"})
    assert type(dateless) is LicenseError and dateless.code == "regeneration-too-soon"
    assert dateless.message == "too soon"
    naive = error_for_code("already-activated", "taken", {"regenerate_after": 7})
    assert isinstance(naive, errors.AlreadyActivatedError) and naive.regenerate_after is None


def test_a_regeneration_date_keeps_its_instant() -> None:
    allowed = dt.datetime(2027, 3, 1, 8, 15, tzinfo=dt.UTC)
    err = errors.RegenerationTooSoonError(allowed)
    back = error_for_code(err.code, err.message, err.details())
    assert isinstance(back, errors.RegenerationTooSoonError) and back.allowed_from == allowed


# Run in a fresh interpreter: nothing but the import named may have filled the registry.
_REGISTRY_PROBE = (
    "import json, sys\n"
    "import {module}\n"
    "from verifier.errors import LicenseError, error_classes\n"
    "found, pending = set(), [LicenseError]\n"
    "while pending:\n"
    "    cls = pending.pop()\n"
    "    pending.extend(cls.__subclasses__())\n"
    "    if 'code' in cls.__dict__:\n"
    "        found.add(cls.__module__ + '.' + cls.__qualname__)\n"
    "registered = [cls.__module__ + '.' + cls.__qualname__ for cls in error_classes()]\n"
    "print(json.dumps([registered, sorted(found), [m for m in sys.modules if m.startswith(('issuer', 'keytool'))]]))\n"
)


def _registry_after(module: str) -> tuple[list[str], list[str], list[str]]:
    code = _REGISTRY_PROBE.format(module=module)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    registered, found, provider = json.loads(out.stdout)
    return registered, found, provider


@pytest.mark.parametrize("module", ["verifier", "verifier.errors"])
def test_the_registry_is_whole_right_after_a_fresh_import(module: str) -> None:
    registered, found, provider = _registry_after(module)
    assert provider == []  # nothing of the provider's side helped
    assert len(registered) == len(set(registered)) and sorted(registered) == found
    exported = {f"verifier.errors.{name}" for name in errors.__all__ if isinstance(getattr(errors, name), type)}
    # Every class of the package is registered under the package's own name, families hidden.
    assert {name for name in registered if name.startswith("verifier.errors")} == exported
    # The same registry as once every module of every package is imported.
    assert set(registered) == {f"{cls.__module__}.{cls.__qualname__}" for cls in every_error_class()}


def test_error_classes_show_and_pickle_as_members_of_verifier_errors() -> None:
    import pickle

    for cls in every_error_class():
        if cls.__module__ != "verifier.keys":
            assert cls.__module__ == "verifier.errors", cls
            assert getattr(errors, cls.__name__) is cls
        assert pickle.loads(pickle.dumps(cls)) is cls  # pickled by name: verifier.errors.<Name>
    assert repr(errors.LedgerBusyError) == "<class 'verifier.errors.LedgerBusyError'>"
