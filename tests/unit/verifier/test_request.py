from __future__ import annotations

import base64
import json

import pytest
from support import PRODUCT, FakeClock

from verifier import ActivationKeyFormatError, RequestCodeError, parse_request_code, request_code
from verifier.activation_key import key_from_bytes
from verifier.encoding import b64url_encode
from verifier.fingerprint import fingerprint

KEY = key_from_bytes(bytes(range(15)))


def make(clock: FakeClock, **kwargs: object) -> str:
    return request_code(PRODUCT, KEY.lower(), machine_id="vm-1", hostname="web1", clock=clock, **kwargs)


def test_round_trip_carries_everything_the_provider_needs(clock: FakeClock) -> None:
    req = parse_request_code(make(clock))
    assert req.product == PRODUCT
    assert req.activation_key == KEY
    assert req.fingerprint == fingerprint(PRODUCT, "vm-1")
    assert req.hostname == "web1"
    assert req.created_at == clock.now
    assert len(req.nonce) >= 16


def test_each_code_is_unique(clock: FakeClock) -> None:
    assert make(clock) != make(clock)


def test_code_is_one_line_with_version_prefix(clock: FakeClock) -> None:
    code = make(clock)
    assert code.startswith("LICET1.") and "\n" not in code and " " not in code


def test_wrapped_copy_is_accepted(clock: FakeClock) -> None:
    code = make(clock)
    wrapped = "  " + "\n  ".join(code[i : i + 60] for i in range(0, len(code), 60)) + "\n"
    assert parse_request_code(wrapped).activation_key == KEY


def test_typo_in_key_is_caught_before_a_code_exists(clock: FakeClock) -> None:
    typo = KEY[:-1] + ("0" if KEY[-1] != "0" else "1")
    with pytest.raises(ActivationKeyFormatError):
        request_code(PRODUCT, typo, machine_id="vm-1", clock=clock)


@pytest.mark.parametrize("cut", [1, 5, 20])
def test_truncated_code_is_refused(clock: FakeClock, cut: int) -> None:
    with pytest.raises(RequestCodeError, match=r"truncated or altered|whole line"):
        parse_request_code(make(clock)[:-cut])


def test_other_version_is_named(clock: FakeClock) -> None:
    with pytest.raises(RequestCodeError, match="'LICET2' is not supported"):
        parse_request_code("LICET2." + make(clock)[7:])


@pytest.mark.parametrize("text", ["", "hello", "LICET1.", "LICET1.!!!!", 42, None, "LICET1." + "A" * 5000])
def test_garbage_is_refused(text: object) -> None:
    with pytest.raises(RequestCodeError):
        parse_request_code(text)


def _with_checksum(payload: object) -> str:
    import hashlib

    body = json.dumps(payload).encode()
    return "LICET1." + b64url_encode(body + hashlib.sha256(body).digest()[:4])


@pytest.mark.parametrize(
    "mutate",
    [
        lambda p: p.update(v=2),
        lambda p: p.update(product=7),
        lambda p: p.update(fp="mid"),
        lambda p: p.update(ts="yesterday"),
        lambda p: p.update(ts=True),
        lambda p: p.pop("nonce"),
        lambda p: p.update(host=["x"]),
    ],
)
def test_wrong_json_types_are_refused_even_with_a_valid_checksum(clock: FakeClock, mutate) -> None:  # type: ignore[no-untyped-def]
    payload = parse_request_code(make(clock)).to_payload()
    mutate(payload)
    with pytest.raises(RequestCodeError, match=r"malformed|layout"):
        parse_request_code(_with_checksum(payload))


def test_bad_key_inside_a_valid_code_is_a_key_error(clock: FakeClock) -> None:
    payload = parse_request_code(make(clock)).to_payload()
    payload["key"] = "ABCD"
    with pytest.raises(ActivationKeyFormatError):
        parse_request_code(_with_checksum(payload))


def test_non_json_body_is_refused() -> None:
    import hashlib

    body = b"\xff\xfe not json"
    code = "LICET1." + base64.urlsafe_b64encode(body + hashlib.sha256(body).digest()[:4]).decode().rstrip("=")
    with pytest.raises(RequestCodeError, match="valid JSON"):
        parse_request_code(code)
