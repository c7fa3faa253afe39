from __future__ import annotations

import importlib
import subprocess
import sys

import pytest

import verifier
from verifier import errors


@pytest.mark.parametrize("package", ["verifier", "keytool"])
def test_every_exported_name_imports(package: str) -> None:
    module = importlib.import_module(package)
    for name in module.__all__:
        assert getattr(module, name) is not None, name


def test_import_verifier_loads_no_cli_storage_web_or_qr_library() -> None:
    code = (
        "import sys, verifier\n"
        "bad = [m for m in sys.modules if m.split('.')[0] in "
        "('typer', 'click', 'tinydb', 'fastapi', 'starlette', 'uvicorn', 'httpx', 'issuer', 'keytool', 'segno')]\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_every_error_has_a_unique_stable_code() -> None:
    classes = [getattr(errors, n) for n in errors.__all__ if isinstance(getattr(errors, n), type)]
    codes = [c.code for c in classes]
    assert len(codes) == len(set(codes))
    assert all(issubclass(c, verifier.LicenseError) for c in classes)


def test_error_codes_round_trip_through_the_wire() -> None:
    import datetime as dt

    err = errors.AlreadyActivatedError(dt.date(2027, 2, 15))
    back = errors.error_for_code(err.code, err.message, err.details())
    assert isinstance(back, errors.AlreadyActivatedError)
    assert back.regenerate_after == dt.date(2027, 2, 15)
    assert "2027-02-15" in back.message
    unknown = errors.error_for_code("from-the-future", "something new")
    assert type(unknown) is errors.LicenseError and unknown.code == "from-the-future"
    assert isinstance(errors.error_for_code("license-revoked", "gone"), errors.LicenseRevokedError)
