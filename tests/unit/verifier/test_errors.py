"""The one error registry: every class registers a unique code when it is created."""

from __future__ import annotations

import datetime as dt
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
