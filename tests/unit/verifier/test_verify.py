from __future__ import annotations

import datetime as dt

import pytest
from support import FakeClock, Provider

from verifier import (
    BadInputError,
    InvalidTokenError,
    TokenExpiredError,
    TokenNotYetValidError,
    TokenState,
    VerifierConfig,
    WrongServerError,
)


def test_valid_token_returns_the_license(provider: Provider) -> None:
    lic = provider.verifier().verify(provider.token())
    assert lic.license_id == "LIC-TEST"
    assert lic.product == "ispmanager"
    assert lic.has("dns") and not lic.has("backup")
    assert lic.limits["domains"] == 10
    assert lic.expires_at == provider.clock.now + dt.timedelta(days=30)


def test_license_is_frozen(provider: Provider) -> None:
    lic = provider.verifier().verify(provider.token())
    with pytest.raises(AttributeError):
        lic.license_id = "other"  # type: ignore[misc]
    with pytest.raises(TypeError):
        lic.limits["domains"] = 99  # type: ignore[index]


def test_license_times_are_aware_utc_datetimes_that_compare(provider: Provider) -> None:
    lic = provider.verifier().verify(provider.token(license_exp=int((provider.clock.now + dt.timedelta(days=365)).timestamp())))
    times = (lic.issued_at, lic.not_before, lic.renew_at, lic.expires_at, lic.license_expires_at)
    for moment in times:
        assert isinstance(moment, dt.datetime) and moment.utcoffset() == dt.timedelta(0)
    assert lic.issued_at == lic.not_before < lic.renew_at < lic.expires_at < lic.license_expires_at  # type: ignore[operator]
    assert lic.renew_at == provider.clock.now + dt.timedelta(days=20)
    assert lic.expires_at - lic.renew_at == dt.timedelta(days=10)
    assert lic.renew_at <= provider.clock.now + dt.timedelta(days=25)  # and with the clock
    without = provider.verifier().verify(provider.token())
    assert without.license_expires_at is None and without.license_expires_at_epoch is None


def test_license_epoch_names_carry_the_signed_seconds(provider: Provider) -> None:
    ends = int((provider.clock.now + dt.timedelta(days=365)).timestamp())
    lic = provider.verifier().verify(provider.token(license_exp=ends))
    start = int(provider.clock.now.timestamp())
    assert lic.renew_at_epoch == start + 20 * 86400 == int(lic.renew_at.timestamp())
    assert lic.expires_at_epoch == lic.exp == start + 30 * 86400 == int(lic.expires_at.timestamp())
    assert lic.license_expires_at_epoch == lic.license_exp == ends
    assert all(type(n) is int for n in (lic.renew_at_epoch, lic.expires_at_epoch, lic.license_expires_at_epoch))
    shown = lic.to_dict()  # what `verifier status --json` prints is unchanged: ISO 8601 text
    assert (shown["renew_at"], shown["expires_at"]) == ("2026-02-04T12:00:00Z", "2026-02-14T12:00:00Z")


def test_token_for_another_server_is_wrong_server(provider: Provider) -> None:
    with pytest.raises(WrongServerError):
        provider.verifier("beta").verify(provider.token("alpha"))


def test_repeated_check_still_sees_expiry(provider: Provider, clock: FakeClock) -> None:
    verifier = provider.verifier()
    token = provider.token(days=1)
    assert verifier.verify(token).license_id == "LIC-TEST"
    clock.advance(days=1, seconds=60)
    with pytest.raises(TokenExpiredError):
        verifier.verify(token)


def test_cache_never_accepts_a_different_token(provider: Provider) -> None:
    verifier = provider.verifier()
    token = provider.token()
    verifier.verify(token)
    with pytest.raises(InvalidTokenError):
        verifier.verify(token[:-4] + ("AAAA" if token[-4:] != "AAAA" else "BBBB"))


def test_cache_is_bounded(provider: Provider, clock: FakeClock) -> None:
    verifier = provider.verifier(config=VerifierConfig(cache_size=2))
    tokens = []
    for _ in range(5):
        clock.advance(seconds=1)
        tokens.append(provider.token())
    for token in tokens:
        verifier.verify(token)
    assert len(verifier._cache) == 2


def test_issuer_is_checked_when_configured(provider: Provider) -> None:
    assert provider.verifier(issuer="acme-hosting").verify(provider.token())
    with pytest.raises(InvalidTokenError, match="not issued by"):
        provider.verifier(issuer="someone-else").verify(provider.token())


def test_status_states(provider: Provider, clock: FakeClock) -> None:
    verifier = provider.verifier()
    assert verifier.status(None).state == TokenState.MISSING
    assert verifier.status("  ").state == TokenState.MISSING
    assert verifier.status("garbage").state == TokenState.INVALID
    assert provider.verifier("beta").status(provider.token()).state == TokenState.WRONG_SERVER
    token = provider.token(days=1)
    status = verifier.status(token)
    assert status.valid and status.license is not None
    assert status.to_dict()["features"] == ["dns", "mail"]
    clock.advance(days=2)
    expired = verifier.status(token)
    assert expired.state == TokenState.EXPIRED
    assert expired.to_dict()["code"] == "token-expired"


def test_naive_clock_is_refused(provider: Provider) -> None:
    verifier = provider.verifier(clock=lambda: dt.datetime(2026, 1, 1))
    with pytest.raises(BadInputError, match="aware"):
        verifier.verify(provider.token())


@pytest.mark.parametrize(
    "config",
    [
        {"leeway": dt.timedelta(hours=2)},
        {"leeway": dt.timedelta(seconds=-1)},
        {"max_token_bytes": 10},
        {"cache_size": -1},
    ],
)
def test_config_bounds(config: dict[str, object]) -> None:
    with pytest.raises(BadInputError):
        VerifierConfig(**config)  # type: ignore[arg-type]


def test_not_yet_valid_token(provider: Provider, clock: FakeClock) -> None:
    token = provider.token(nbf=int((clock.now + dt.timedelta(hours=1)).timestamp()))
    with pytest.raises(TokenNotYetValidError):
        provider.verifier().verify(token)
