"""The license server's last word on a token: a renewal refused for good.

When the configured license server refuses to renew because the activation
was superseded, the license was revoked, or the license has no such
activation, the token must stop at once — not run on to the end of its
lease. The answer is a problem+json, not a signed document, so the panel
keeps a small record of it beside the token (``<store>.refusal``) instead of
a proof, and judges tokens by it:

- it covers the refused token's license and activation, and only tokens of
  that activation signed no later than the refused one: a token issued
  afterwards (a renewal, a re-activation, a new activation) is the server's
  newer word and runs;
- it records the code and where it came from, never the server's own words,
  so nothing a server sends is replayed on a status screen later;
- a damaged record counts as none.

Example:
    >>> refusal = RenewalRefusal.of(held, err, server=url, at=now)  # doctest: +SKIP
    >>> refusal.covers(held)  # doctest: +SKIP
    True
"""

from __future__ import annotations

import datetime as _dt
import json
from dataclasses import dataclass

from verifier.claims import License
from verifier.encoding import EncodingError, json_loads_strict
from verifier.errors import (
    ActivationNotFoundError,
    ActivationSupersededError,
    LicenseError,
    LicenseRevokedError,
    TokenStoreError,
)
from verifier.store import TokenStore
from verifier.timefmt import format_utc, from_epoch, is_epoch

__all__ = ["RECORDED_REFUSALS", "HeldRefusal", "RenewalRefusal", "parse_refusal"]

#: The refusals that stop a token for good, by code. ``activation-not-found``
#: (the license no longer knows this activation) stops it like a superseded one.
RECORDED_REFUSALS: dict[str, type[LicenseError]] = {
    cls.code: cls
    for cls in (ActivationSupersededError, LicenseRevokedError, ActivationNotFoundError)
}
_MAX_TEXT = 256
_MAX_URL = 2048


@dataclass(frozen=True)
class RenewalRefusal:
    """A renewal the license server refused for good.

    Attributes:
        code: the refusal's code (one of :data:`RECORDED_REFUSALS`).
        license_id: the license of the refused token.
        activation_id: the activation of the refused token.
        token_iat: when the refused token was signed (epoch seconds); tokens of
            this activation signed later are not covered.
        server: the license server that refused.
        refused_at: when it refused (the panel's clock).
    """

    code: str
    license_id: str
    activation_id: str
    token_iat: int
    server: str
    refused_at: _dt.datetime

    @classmethod
    def of(
        cls, held: License, error: LicenseError, *, server: str, at: _dt.datetime
    ) -> RenewalRefusal | None:
        """The record of ``error`` refusing to renew ``held``, or ``None`` for a passing refusal.

        Args:
            held: the license of the token whose renewal was refused.
            error: the server's refusal.
            server: the license server's URL.
            at: the time of the refusal.
        """
        if error.code not in RECORDED_REFUSALS:
            return None  # unreachable, rate limited, wrong server ...: nothing final
        return cls(
            code=error.code,
            license_id=held.license_id,
            activation_id=held.activation_id,
            token_iat=held.iat,
            server=server,
            refused_at=at.astimezone(_dt.UTC).replace(microsecond=0),
        )

    def covers(self, lic: License) -> bool:
        """Whether ``lic`` is the refused activation's, signed no later than the refused token."""
        return (
            lic.activation_id == self.activation_id
            and lic.license_id == self.license_id
            and lic.iat <= self.token_iat
        )

    def error(self) -> LicenseError:
        """The refusal, as the error a check of a covered token raises."""
        cls = RECORDED_REFUSALS[self.code]
        return cls(
            f"the license server {self.server} refused to renew activation "
            f"{self.activation_id} on {format_utc(self.refused_at)}: {cls.default_message}"
        )

    def to_text(self) -> str:
        """The record as stored (one line of JSON)."""
        return json.dumps(
            {
                "v": 1,
                "code": self.code,
                "license_id": self.license_id,
                "activation_id": self.activation_id,
                "token_iat": self.token_iat,
                "server": self.server,
                "refused_at": int(self.refused_at.timestamp()),
            },
            sort_keys=True,
        )


def _text(value: object, limit: int) -> str | None:
    if type(value) is not str or not 0 < len(value) <= limit or not value.isprintable():
        return None
    return value


def parse_refusal(text: str) -> RenewalRefusal | None:
    """Read a stored record; ``None`` when it is damaged (a damaged record counts as none)."""
    try:
        data = json_loads_strict(text)
    except EncodingError:
        return None
    if not isinstance(data, dict) or data.get("v") != 1:
        return None
    code = _text(data.get("code"), _MAX_TEXT)
    license_id = _text(data.get("license_id"), _MAX_TEXT)
    activation_id = _text(data.get("activation_id"), _MAX_TEXT)
    server = _text(data.get("server"), _MAX_URL)
    token_iat = data.get("token_iat")
    refused_at = from_epoch(data.get("refused_at"))
    if (
        code not in RECORDED_REFUSALS
        or license_id is None
        or activation_id is None
        or server is None
        or not is_epoch(token_iat)
        or refused_at is None
    ):
        return None
    return RenewalRefusal(
        code=code,
        license_id=license_id,
        activation_id=activation_id,
        token_iat=token_iat,
        server=server,
        refused_at=refused_at,
    )


class HeldRefusal:
    """The refusal for good a panel holds, kept in the token store beside the token.

    Attributes:
        current: the refusal in force, or ``None``.
        problem: why the stored record could not be read or written; ``None``
            when nothing went wrong.
    """

    def __init__(self) -> None:
        self.current: RenewalRefusal | None = None
        self.problem: str | None = None
        self._stamp: int | None = None  # mtime of the refusal record last read

    def reload(self, store: TokenStore) -> bool:
        """Pick up the record another process (``verifier renew`` from cron) kept.

        Returns:
            Whether the refusal in force changed.
        """
        stamp = store.refusal_stamp()
        if stamp == self._stamp:
            return False
        self._stamp = stamp
        try:
            text = store.load_refusal()
        except TokenStoreError as err:
            # Unreadable is not gone: a refusal already known here still applies.
            self.problem = f"the renewal refusal was not read: {err.message}"
            return False
        refusal = None if text is None else parse_refusal(text)
        self.problem = None
        if text is not None and refusal is None:
            self.problem = f"the damaged renewal refusal in {store.refusal_path} was ignored"
        if refusal == self.current:
            return False
        self.current = refusal
        return True

    def record(self, refusal: RenewalRefusal, store: TokenStore | None) -> None:
        """Put ``refusal`` in force and keep it in ``store`` when there is one (never raises)."""
        self.current, self.problem = refusal, None
        if store is not None:
            try:
                store.save_refusal(refusal.to_text())
                self._stamp = store.refusal_stamp()
            except TokenStoreError as err:
                # Still refused in this process; status says why it will not survive a restart.
                self.problem = f"the renewal refusal could not be saved: {err.message}"
