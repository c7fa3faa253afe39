"""Client addresses: one canonical spelling, whose word to believe, where callbacks may go.

Every rule about an IP address the license server sees lives here, so the
ledger's assigned IPs, the address a request comes from, the rate-limit
bucket and the callback guard all agree:

* An IPv4 client reaching a dual-stack listener (``--host ::``) appears as
  ``::ffff:a.b.c.d``; :func:`canonical_ip` turns that back into ``a.b.c.d``
  so it matches a license assigned to ``a.b.c.d`` (and ``--ip ::ffff:…`` is
  stored as the IPv4 it is).
* Behind trusted proxies the client is the right-most ``X-Forwarded-For``
  hop that is not itself a trusted proxy: the hops to its left were written
  by the client and prove nothing (:func:`client_address`). Every line of the
  header counts, in order, as one list (:func:`forwarded_hops`): HAProxy
  appends a line of its own instead of extending the client's.
* IPv6 clients are rate limited per network prefix (/64 by default), since one
  subscriber usually holds a whole /64 (:func:`rate_bucket`).
* Callbacks go to public addresses only; an IPv6 address that carries an IPv4
  one (mapped, compatible, NAT64, 6to4, Teredo) is judged by that IPv4
  (:func:`callback_allowed`).

Example:
    >>> canonical_ip("::ffff:203.0.113.7")
    '203.0.113.7'
    >>> rate_bucket("2001:db8:1:2:aaaa::1", ipv6_prefix=64)
    '2001:db8:1:2::/64'
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence

from verifier.errors import BadInputError

__all__ = [
    "ProxyList",
    "callback_allowed",
    "canonical_ip",
    "client_address",
    "forwarded_hops",
    "in_bucket",
    "parse_proxies",
    "rate_bucket",
]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
ProxyList = tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]

_NAT64 = (ipaddress.IPv6Network("64:ff9b::/96"), ipaddress.IPv6Network("64:ff9b:1::/48"))
_IPV4_COMPATIBLE = ipaddress.IPv6Network("::/96")


def _parse(value: str) -> IPAddress:
    """Parse strictly (dotted quads only, no zone ids) and unmap ``::ffff:a.b.c.d``."""
    if not isinstance(value, str) or "%" in value:
        raise ValueError("not an IP address")
    ip = ipaddress.ip_address(value.strip())
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


def canonical_ip(value: str) -> str:
    """The one spelling of an IP address: compressed IPv6, IPv4 for IPv4-mapped IPv6.

    Raises:
        BadInputError: ``value`` is not an IP address.
    """
    try:
        return str(_parse(value))
    except ValueError:
        raise BadInputError(f"{value!r} is not an IP address") from None


def parse_proxies(values: Iterable[str]) -> ProxyList:
    """Parse ``--trusted-proxy`` values: addresses or networks (``10.0.0.0/8``).

    Raises:
        BadInputError: a value is neither.
    """
    networks = []
    for value in values:
        text = value.strip() if isinstance(value, str) else ""
        try:
            if "/" in text:
                network = ipaddress.ip_network(text, strict=False)
            else:
                network = ipaddress.ip_network(_parse(text))
        except ValueError:
            raise BadInputError(
                f"--trusted-proxy {value!r} is not an IP address or network"
            ) from None
        networks.append(network)
    return tuple(networks)


def _trusted(address: IPAddress, proxies: ProxyList) -> bool:
    return any(address.version == net.version and address in net for net in proxies)


def forwarded_hops(lines: Sequence[str]) -> list[str]:
    """Every line of a repeated ``X-Forwarded-For`` header as one list of hops, left to right.

    The lines of a repeated header are one comma-separated list, in the order
    they came (RFC 9110, section 5.3): a proxy may append a line of its own
    (HAProxy's ``option forwardfor`` does) rather than extend the client's, so
    reading one line would believe the client. Whitespace around a hop is not
    part of it, and empty elements are ignored (RFC 9110, section 5.6.1): a
    client can write those, but no proxy does.

    Raises:
        TypeError: ``lines`` is one string — the caller read one line, not all.
    """
    if isinstance(lines, str):
        raise TypeError("forwarded_hops takes every header line, not one string")
    hops = (hop.strip(" \t") for line in lines for hop in line.split(","))
    return [hop for hop in hops if hop]


def client_address(peer: str, forwarded_for: Sequence[str], proxies: ProxyList) -> str:
    """The address a request comes from, in canonical form ('' when unknown).

    The TCP ``peer``, unless it is a trusted proxy: then the hops of every
    ``X-Forwarded-For`` line (``forwarded_for``, in the order received; see
    :func:`forwarded_hops`) are walked from the right — each proxy appends the
    address it saw — and the first hop that is not a trusted proxy is the
    client. A malformed hop stops the walk at the proxy that passed it on, so
    the request is judged as coming from that proxy — never from a hop the
    client wrote.

    Raises:
        TypeError: ``forwarded_for`` is one string instead of the header's lines.
    """
    hops = forwarded_hops(forwarded_for)
    try:
        current = _parse(peer)
    except ValueError:
        return ""
    if not _trusted(current, proxies):
        return str(current)
    for hop in reversed(hops):
        try:
            address = _parse(hop)
        except ValueError:
            return str(current)
        current = address
        if not _trusted(address, proxies):
            break
    return str(current)


def rate_bucket(address: str, *, ipv6_prefix: int = 64) -> str:
    """The rate-limit bucket of ``address``: the IPv4 address, or its IPv6 /``ipv6_prefix``."""
    try:
        ip = _parse(address)
    except ValueError:
        return address or "unknown"
    if isinstance(ip, ipaddress.IPv4Address):
        return str(ip)
    return str(ipaddress.IPv6Network((ip, ipv6_prefix), strict=False))


def in_bucket(address: str, bucket: str) -> bool:
    """Whether a client at ``address`` is counted in rate-limit ``bucket``, whatever its prefix.

    Raises:
        BadInputError: ``address`` is not an IP address.
    """
    ip = _parse(canonical_ip(address))
    try:
        return ip in ipaddress.ip_network(bucket, strict=False)
    except ValueError:
        return bucket == str(ip)


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address carries, by every standard embedding."""
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip.teredo is not None:
        return ip.teredo[1]  # the client's (obfuscated) address; the server half is public
    packed = int(ip)
    if any(ip in net for net in _NAT64) or (ip in _IPV4_COMPATIBLE and packed > 1):
        return ipaddress.IPv4Address(packed & 0xFFFFFFFF)
    return None


def callback_allowed(address: str, allow_private: bool) -> bool:
    """Whether a back-request may go to ``address``: public addresses only, unless allowed."""
    try:
        ip = _parse(address)
    except ValueError:
        return False
    if ip.is_unspecified or ip.is_multicast:
        return False
    if isinstance(ip, ipaddress.IPv6Address):
        carried = _embedded_ipv4(ip)
        if carried is not None:
            if carried.is_unspecified or carried.is_multicast:
                return False
            if not allow_private and not carried.is_global:
                return False
    return allow_private or ip.is_global
