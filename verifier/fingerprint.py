"""Server fingerprints: what a token is bound to, and the one rule for matching.

A fingerprint is a short list of typed component hashes, e.g.
``["mid:…", "uuid:…", "mac:…"]``. Each component (``/etc/machine-id``, the
DMI product UUID where readable, the MAC of each physical NIC) is hashed with
HMAC-SHA256 under a key derived from the product name, so the fingerprints of
two products on one server cannot be linked, and no raw identifier leaves the
server.

Matching (:func:`matches`) is a weighted strict majority: host identifiers
(machine id, DMI UUID) weigh 2, each NIC weighs 1, and a server matches a bound
fingerprint when the components it still has weigh *more than half* of the
bound ones. So a NIC added or replaced, or a reinstalled OS on the same
hardware, keeps the server licensed, while two servers that share no
component can never both match one fingerprint — however the fingerprint was
crafted.

Example:
    >>> fp = fingerprint("ispmanager", machine_id="container-42")
    >>> matches(fp, fingerprint("ispmanager", machine_id="container-42"))
    True
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import re
from collections.abc import Iterable, Sequence
from pathlib import Path

from verifier.errors import BadInputError

__all__ = [
    "Fingerprint",
    "COMPONENT_PATTERN",
    "MAX_COMPONENTS",
    "MAX_PER_KIND",
    "fingerprint",
    "fingerprint_from_sources",
    "matches",
    "parse_fingerprint",
    "probe_components",
]

Fingerprint = tuple[str, ...]

#: kind → weight in the match rule.
_WEIGHTS = {"mid": 2, "uuid": 2, "mac": 1}
#: kind → how many components of that kind one fingerprint may hold.
MAX_PER_KIND = {"mid": 1, "uuid": 1, "mac": 8}
MAX_COMPONENTS = sum(MAX_PER_KIND.values())
#: One component: its kind, a colon, 32 lowercase hex digits (128 bits of HMAC-SHA256).
COMPONENT_PATTERN = "^(" + "|".join(MAX_PER_KIND) + "):[0-9a-f]{32}$"
_COMPONENT = re.compile(COMPONENT_PATTERN)

_MACHINE_ID_FILES = (Path("/etc/machine-id"), Path("/var/lib/dbus/machine-id"))
_DMI_UUID = Path("/sys/class/dmi/id/product_uuid")
_NET = Path("/sys/class/net")
# Placeholder UUIDs some firmware reports for every board alike.
_BOGUS_UUIDS = {"00000000-0000-0000-0000-000000000000", "ffffffff-ffff-ffff-ffff-ffffffffffff"}


def _product_key(product: str) -> bytes:
    return hashlib.sha256(b"licet/fingerprint/v1\x00" + product.encode()).digest()


def _component(key: bytes, kind: str, value: str) -> str:
    digest = hmac.new(key, f"{kind}\x00{value}".encode(), hashlib.sha256).hexdigest()
    return f"{kind}:{digest[:32]}"


def fingerprint_from_sources(
    product: str,
    machine_id: str | None,
    dmi_uuid: str | None = None,
    macs: Iterable[str] = (),
) -> Fingerprint:
    """Build a fingerprint from explicit component values (what :func:`fingerprint` reads).

    Args:
        product: the product name; it keys every hash.
        machine_id: the OS machine id, or a container's own stable id.
        dmi_uuid: the board's product UUID, when readable.
        macs: MAC addresses of physical NICs.

    Raises:
        BadInputError: when no component is left to bind to.
    """
    if not product:
        raise BadInputError("product must not be empty")
    key = _product_key(product)
    parts: list[str] = []
    if machine_id and machine_id.strip():
        parts.append(_component(key, "mid", machine_id.strip()))
    uuid = (dmi_uuid or "").strip().lower()
    if uuid and uuid not in _BOGUS_UUIDS:
        parts.append(_component(key, "uuid", uuid))
    clean_macs = sorted({m.strip().lower() for m in macs if m.strip()} - {"00:00:00:00:00:00"})
    parts.extend(_component(key, "mac", mac) for mac in clean_macs[: MAX_PER_KIND["mac"]])
    if not parts:
        raise BadInputError(
            "no stable server identifier found — pass a machine id (--machine-id) for this server"
        )
    return tuple(parts)


@functools.cache
def fingerprint(product: str, machine_id: str | None = None) -> Fingerprint:
    """Return this server's fingerprint for ``product``, computed once per process.

    Args:
        product: the product name.
        machine_id: a stable id that replaces every hardware component —
            for containers and cloned VMs whose ``/etc/machine-id`` is shared.

    Raises:
        BadInputError: when the server exposes no identifier at all.
    """
    if machine_id is not None:
        if not machine_id.strip():
            raise BadInputError("machine id must not be empty")
        return fingerprint_from_sources(product, machine_id)
    return fingerprint_from_sources(product, _read_machine_id(), _read(_DMI_UUID), _read_macs())


def probe_components(machine_id: str | None = None) -> list[tuple[str, str]]:
    """Say which identifiers this server offers (for ``verifier fingerprint``), without values."""
    if machine_id is not None:
        return [("machine-id", "given on the command line (hardware ignored)")]
    macs = _read_macs()
    return [
        ("machine-id", "found" if _read_machine_id() else "missing"),
        (
            "dmi-uuid",
            "found" if _read(_DMI_UUID) else "not readable (needs root, or a VM without DMI)",
        ),
        ("nics", f"{len(macs)} physical NIC(s)"),
    ]


def _read(path: Path) -> str | None:
    try:
        return path.read_text(encoding="ascii", errors="replace").strip() or None
    except OSError:
        return None  # absent, or readable by root only (DMI): that component is skipped


def _read_machine_id() -> str | None:
    for path in _MACHINE_ID_FILES:
        value = _read(path)
        if value:
            return value
    return None


def _read_macs() -> list[str]:
    try:
        interfaces = list(_NET.iterdir())
    except OSError:
        return []
    # Physical NICs have a backing device; bridges, veths, bonds and lo do not.
    return [
        mac for nic in interfaces if (nic / "device").exists() and (mac := _read(nic / "address"))
    ]


def parse_fingerprint(value: object) -> Fingerprint:
    """Validate a fingerprint received from elsewhere (request code, HTTP, token).

    Raises:
        BadInputError: wrong type, unknown component, duplicates, or too many of a kind.
    """
    if not isinstance(value, list | tuple) or not value:
        raise BadInputError("fingerprint must be a non-empty list of component hashes")
    counts = dict.fromkeys(MAX_PER_KIND, 0)
    for part in value:
        if not isinstance(part, str) or _COMPONENT.fullmatch(part) is None:
            raise BadInputError("fingerprint has a malformed component")
        counts[part.partition(":")[0]] += 1
    if len(set(value)) != len(value):
        raise BadInputError("fingerprint repeats a component")
    if any(counts[kind] > limit for kind, limit in MAX_PER_KIND.items()):
        raise BadInputError("fingerprint has too many components of one kind")
    return tuple(value)


def _weight(parts: Iterable[str]) -> int:
    return sum(_WEIGHTS[part.split(":", 1)[0]] for part in parts)


def matches(bound: Sequence[str], current: Sequence[str]) -> bool:
    """Return whether a server with fingerprint ``current`` is the one ``bound`` names.

    True when the components of ``bound`` still present in ``current`` weigh
    more than half of ``bound``'s total weight.
    """
    kept = set(bound).intersection(current)
    return 2 * _weight(kept) > _weight(bound)
