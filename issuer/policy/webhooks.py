"""The webhook rules: which audit event is which event type, filters, retries, targets.

Pure functions, no I/O: the licensing layer asks them which rows to queue
and when to try again; the ledger only keeps what it is handed.

Example:
    >>> event_type("revoked", {})
    'license.revoked'
    >>> matches(("license.*",), "license.created")
    True
"""

from __future__ import annotations

import datetime as _dt
import ipaddress
import random
import re
from collections.abc import Iterable, Mapping

from issuer.addresses import callback_allowed
from verifier.errors import BadInputError, WebhookTargetError

__all__ = [
    "EVENT_TYPES",
    "GIVE_UP_AFTER",
    "MAX_DESCRIPTION",
    "RETRY_DELAYS",
    "TEST_TYPE",
    "check_description",
    "check_events",
    "check_url",
    "event_type",
    "matches",
    "next_attempt",
    "target_allowed",
]

TEST_TYPE = "webhook.test"
EVENT_TYPES = (
    "license.created",
    "license.updated",
    "license.regenerated",
    "license.revoked",
    "license.activated",
    "license.renewed",
    TEST_TYPE,
)
_BY_ACTION = {
    "created": "license.created",
    "updated": "license.updated",
    "regenerated": "license.regenerated",
    "revoked": "license.revoked",
    "activated": "license.activated",
    "renewed": "license.renewed",
}
#: Seconds before the 2nd, 3rd, ... try; the last one repeats until :data:`GIVE_UP_AFTER`.
RETRY_DELAYS = (5, 30, 120, 600, 3600, 6 * 3600, 12 * 3600)
GIVE_UP_AFTER = _dt.timedelta(days=3)
JITTER = 0.2
MAX_DESCRIPTION = 500
MAX_URL = 2000
_URL = re.compile(r"(?i)https?://(?P<authority>[^/?#]*)(?P<rest>[/?][^#]*)?(?P<fragment>#.*)?")
_HOST_PORT = re.compile(
    r"(?:\[(?P<v6>[0-9A-Fa-f:.]+)\]|(?P<name>[A-Za-z0-9.-]+))(?::(?P<port>\d{1,5}))?"
)


def event_type(action: str, changes: Mapping[str, object]) -> str | None:
    """The webhook event type of a license's audit event, ``None`` when it is not sent.

    A re-activation by the same server is a ``license.activated`` only when it
    changed an audited field; one that changes nothing is not an event.
    """
    if action == "reactivated":
        return "license.activated" if changes else None
    return _BY_ACTION.get(action)


def check_events(events: Iterable[str]) -> tuple[str, ...]:
    """A filter as given (``--event``, repeatable; ``license.*`` allowed), checked and deduplicated.

    Raises:
        BadInputError: an unknown event type.
    """
    wanted: list[str] = []
    for name in events:
        if not isinstance(name, str) or (name not in EVENT_TYPES and name != "license.*"):
            known = ", ".join((*EVENT_TYPES, "license.*"))
            raise BadInputError(f"unknown event type {name!r} — use one of {known}")
        if name not in wanted:
            wanted.append(name)
    return tuple(wanted)


def matches(events: tuple[str, ...], type_: str) -> bool:
    """Whether an endpoint with filter ``events`` receives ``type_`` (none given: all)."""
    if not events:
        return True
    return type_ in events or ("license.*" in events and type_.startswith("license."))


def check_description(description: str | None) -> str:
    """A description, at most :data:`MAX_DESCRIPTION` characters of one line.

    Raises:
        BadInputError: too long, or with control characters.
    """
    text = description or ""
    if not isinstance(text, str) or len(text) > MAX_DESCRIPTION:
        raise BadInputError(f"a webhook description is at most {MAX_DESCRIPTION} characters")
    if any(ord(c) < 32 or ord(c) == 127 for c in text):
        raise BadInputError("a webhook description is one line without control characters")
    return text


def check_url(url: str, *, allow_private: bool) -> str:
    """An endpoint URL: ``https://`` (``http://`` only with ``allow_private``), with a host.

    A host that is an IP address is judged now (:func:`target_allowed`); a
    name is judged at each delivery, after it resolves.

    Raises:
        BadInputError: not an acceptable URL.
    """
    if not isinstance(url, str) or not url or len(url) > MAX_URL:
        raise WebhookTargetError(f"a webhook URL is an http(s) URL of at most {MAX_URL} characters")
    if any(ord(c) <= 32 or ord(c) == 127 for c in url):
        raise WebhookTargetError("a webhook URL has no spaces or control characters")
    found = _URL.fullmatch(url)
    scheme = url.split(":", 1)[0].lower()
    if scheme not in ("https", "http") or found is None:
        raise WebhookTargetError(f"a webhook URL must start with https:// (got {url!r})")
    if scheme == "http" and not allow_private:
        raise WebhookTargetError("an http:// webhook URL needs --allow-private; use https://")
    authority = found.group("authority")
    if "@" in authority:
        raise WebhookTargetError("a webhook URL carries no user name or password")
    if found.group("fragment") is not None:
        raise WebhookTargetError("a webhook URL has no #fragment")
    host_port = _HOST_PORT.fullmatch(authority)
    if host_port is None or not (host_port.group("v6") or host_port.group("name")):
        raise WebhookTargetError(
            f"a webhook URL names a host (and a port from 1 to 65535): {url!r}"
        )
    port = host_port.group("port")
    if port is not None and not 1 <= int(port) <= 65535:
        raise WebhookTargetError(f"a webhook URL has a bad port: {url!r}")
    host = host_port.group("v6") or host_port.group("name")
    if _is_ip(host) and not target_allowed(host, allow_private=allow_private):
        raise WebhookTargetError(
            f"{host} is a loopback, private or reserved address; "
            "add the endpoint with --allow-private if that is meant"
        )
    return url


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def target_allowed(address: str, *, allow_private: bool) -> bool:
    """Whether a delivery may go to ``address``: public only, unless the endpoint allows private.

    Loopback, RFC 1918, link-local, unique-local, CGNAT, unspecified,
    multicast and reserved addresses are refused, IPv4-mapped ones too.
    """
    ip = address.split("%", 1)[0]
    if allow_private:
        return True
    return callback_allowed(ip, False)


def next_attempt(
    failures: int,
    *,
    now: _dt.datetime,
    window_start: _dt.datetime,
    rng: random.Random,
) -> _dt.datetime | None:
    """When to try again after ``failures`` failed tries, ``None`` once 3 days are over.

    Delays are 5 s, 30 s, 2 min, 10 min, 1 h, 6 h, then every 12 h, each
    with ±20 % jitter.
    """
    base = RETRY_DELAYS[min(max(failures, 1), len(RETRY_DELAYS)) - 1]
    delay = base * (1 + rng.uniform(-JITTER, JITTER))
    when = now + _dt.timedelta(seconds=delay)
    if when > window_start + GIVE_UP_AFTER:
        return None
    return when
