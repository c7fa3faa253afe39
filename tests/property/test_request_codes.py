"""Hypothesis: request codes round-trip, and any altered code is refused."""

from __future__ import annotations

import re
import string

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from support import FakeClock

from verifier import LicenseError, RequestCodeError, parse_request_code, request_code
from verifier.activation_key import key_from_bytes
from verifier.fingerprint import fingerprint
from verifier.request import HOSTNAME_PATTERN, display_hostname

names = st.text(alphabet=string.ascii_letters + string.digits + "-_.", min_size=1, max_size=40)
hostnames = st.text(min_size=0, max_size=100)
keys = st.binary(min_size=15, max_size=15).map(key_from_bytes)


@settings(max_examples=150)
@given(product=names, machine=names, host=hostnames, key=keys, seconds=st.integers(0, 10**10))
def test_round_trip(product: str, machine: str, host: str, key: str, seconds: int) -> None:
    import datetime as dt

    clock = FakeClock(dt.datetime(2000, 1, 1, tzinfo=dt.UTC) + dt.timedelta(seconds=seconds))
    code = request_code(product, key, machine_id=machine, hostname=host or "h", clock=clock)
    req = parse_request_code(code)
    # Any hostname is sent in its displayable form: other characters become '-'.
    assert (req.product, req.activation_key, req.hostname) == (product, key, display_hostname(host or "h"))
    assert re.fullmatch(HOSTNAME_PATTERN, req.hostname)
    if re.fullmatch(HOSTNAME_PATTERN, host or "h"):
        assert req.hostname == (host or "h")
    assert req.fingerprint == fingerprint(product, machine)
    assert req.created_at == clock.now


CODE = request_code("ispmanager", key_from_bytes(bytes(15)), machine_id="m", hostname="web1", clock=FakeClock())
NON_SPACE = st.characters(codec="utf-8").filter(lambda c: not c.isspace())


@settings(max_examples=500)
@given(data=st.data())
def test_any_altered_character_is_refused(data: st.DataObject) -> None:
    position = data.draw(st.integers(0, len(CODE) - 1))
    replacement = data.draw(NON_SPACE.filter(lambda c: c != CODE[position]))
    with pytest.raises(RequestCodeError):
        parse_request_code(CODE[:position] + replacement + CODE[position + 1 :])


@settings(max_examples=200)
@given(cut=st.integers(1, len(CODE) - 1))
def test_any_truncation_is_refused(cut: int) -> None:
    with pytest.raises(RequestCodeError):
        parse_request_code(CODE[:cut])


@settings(max_examples=300)
@given(junk=st.text(max_size=300) | st.builds(lambda s: "LICET1." + s, st.text(max_size=300)))
def test_garbage_only_ever_raises_a_license_error(junk: str) -> None:
    try:
        parse_request_code(junk)
    except LicenseError:
        return
    raise AssertionError("garbage parsed as a request code")
