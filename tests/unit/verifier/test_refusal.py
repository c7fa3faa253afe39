"""A renewal the license server refused for good stops the held token, and only it."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Any

import pytest
from support import FakeClock, Provider

from verifier import (
    ActivationNotFoundError,
    ActivationSupersededError,
    LicenseRevokedError,
    RateLimitedError,
    ServerUnavailableError,
    TokenState,
    TokenStore,
    WrongServerError,
)
from verifier.refusal import RenewalRefusal, parse_refusal

SERVER = "https://licenses.example"


@pytest.mark.parametrize(
    ("error", "state"),
    [
        (ActivationSupersededError(), TokenState.SUPERSEDED),
        (LicenseRevokedError(), TokenState.REVOKED),
        (ActivationNotFoundError(), TokenState.SUPERSEDED),
    ],
    ids=["superseded", "revoked", "not-found"],
)
def test_a_refusal_for_good_stops_the_held_token_and_survives_a_restart(
    provider: Provider, tmp_path: Path, error: Exception, state: TokenState
) -> None:
    store = TokenStore(tmp_path / "panel.token")
    token = provider.token()
    store.save(token)
    v = provider.verifier(store=store)
    assert v.status(token).state == TokenState.VALID  # remembered in its cache
    assert v.record_refusal(token, error, server_url=SERVER) is not None  # type: ignore[arg-type]
    status = v.status(token)
    assert status.state == state and status.error is not None
    assert status.error.code == error.code  # type: ignore[attr-defined]
    assert SERVER in status.error.message and "ACT-TEST" in status.error.message
    with pytest.raises(type(error)):
        v.verify(token)
    assert stat.S_IMODE(os.stat(store.refusal_path).st_mode) == 0o600
    restarted = provider.verifier(store=TokenStore(store.path))
    assert restarted.status(token).state == state


@pytest.mark.parametrize(
    "error",
    [WrongServerError(), RateLimitedError(), ServerUnavailableError()],
    ids=["wrong-server", "rate-limited", "unavailable"],
)
def test_passing_refusals_are_not_recorded(provider: Provider, tmp_path: Path, error: Exception) -> None:
    store = TokenStore(tmp_path / "panel.token")
    v = provider.verifier(store=store)
    token = provider.token()
    assert v.record_refusal(token, error, server_url=SERVER) is None  # type: ignore[arg-type]
    assert v.status(token).state == TokenState.VALID
    assert not store.refusal_path.exists()


def test_a_token_signed_after_the_refusal_runs_and_other_activations_are_untouched(
    provider: Provider, clock: FakeClock, tmp_path: Path
) -> None:
    store = TokenStore(tmp_path / "panel.token")
    v = provider.verifier(store=store)
    refused = provider.token()
    v.record_refusal(refused, ActivationSupersededError(), server_url=SERVER)
    clock.advance(seconds=5)
    older_sibling = refused  # the very token, installed again by hand: still refused
    assert v.status(older_sibling).state == TokenState.SUPERSEDED
    renewed = provider.token()  # the same activation, signed later (a renewal, a re-activation)
    other = provider.token(jti="ACT-OTHER")
    assert v.status(renewed).state == TokenState.VALID
    assert v.status(other).state == TokenState.VALID


def test_a_refusal_recorded_by_another_process_is_picked_up(
    provider: Provider, clock: FakeClock, tmp_path: Path
) -> None:
    store = TokenStore(tmp_path / "panel.token")
    token = provider.token()
    running = provider.verifier(store=store)
    assert running.status(token).state == TokenState.VALID
    cron = provider.verifier(store=TokenStore(store.path))
    cron.record_refusal(token, LicenseRevokedError(), server_url=SERVER)
    clock.advance(minutes=6)  # the running panel looks at its store with its clock mark
    assert running.status(token).state == TokenState.REVOKED


DAMAGES = {
    "not json": lambda good: "garbage {",
    "not an object": lambda good: "[]",
    "another version": lambda good: json.dumps({**good, "v": 2}),
    "fields missing": lambda good: json.dumps({"v": 1, "code": good["code"]}),
    "a passing code": lambda good: json.dumps({**good, "code": "wrong-server"}),
    "a code of another type": lambda good: json.dumps({**good, "code": ["activation-superseded"]}),
    "no timestamp": lambda good: json.dumps({**good, "token_iat": "yesterday"}),
    "a control character": lambda good: json.dumps({**good, "server": "http://x\x1b[2J"}),
}


@pytest.mark.parametrize("damage", DAMAGES.values(), ids=DAMAGES.keys())
def test_a_damaged_record_counts_as_none(provider: Provider, tmp_path: Path, damage: Any) -> None:
    store = TokenStore(tmp_path / "panel.token")
    token = provider.token()
    text = damage(json.loads(_record(provider, token)))
    assert parse_refusal(text) is None
    store.save_refusal(text)
    status = provider.verifier(store=store).status(token)
    assert status.state == TokenState.VALID
    assert any("damaged renewal refusal" in note for note in status.notes)


def test_the_record_round_trips_and_names_no_server_words(provider: Provider, tmp_path: Path) -> None:
    token = provider.token()
    text = _record(provider, token)
    refusal = parse_refusal(text)
    assert isinstance(refusal, RenewalRefusal)
    assert refusal.to_text() == text
    assert set(json.loads(text)) == {"v", "code", "license_id", "activation_id", "token_iat", "server", "refused_at"}


def test_a_store_that_cannot_keep_it_still_refuses_in_this_process_and_says_why(
    provider: Provider, tmp_path: Path
) -> None:
    store = TokenStore(tmp_path / "panel.token")
    token = provider.token()
    store.refusal_path.mkdir()  # no file can replace it, not even root's
    v = provider.verifier(store=store)
    v.record_refusal(token, ActivationSupersededError(), server_url=SERVER)
    status = v.status(token)
    assert status.state == TokenState.SUPERSEDED
    assert any("renewal refusal could not be saved" in note for note in status.notes)


def _record(provider: Provider, token: str) -> str:
    v = provider.verifier()
    refusal = v.record_refusal(token, ActivationSupersededError(), server_url=SERVER)
    assert refusal is not None
    return refusal.to_text()
