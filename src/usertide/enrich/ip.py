"""IP address privacy: what of ``context.ip`` is kept once geo enrichment has used it."""

from __future__ import annotations

import ipaddress
from functools import lru_cache
from typing import Final, Literal, get_args

from usertide.enrich.base import Enricher
from usertide.events import Event

IpPolicy = Literal["keep", "truncate", "drop"]
IP_POLICIES: Final[frozenset[str]] = frozenset(get_args(IpPolicy))

#: Prefix lengths kept by truncation and used as "the same network" by the risk model. /24 is
#: what a home or office IPv4 block looks like; /48 is the usual IPv6 site allocation.
IPV4_PREFIX: Final = 24
IPV6_PREFIX: Final = 48

#: Longer values are rejected unparsed, which also keeps junk out of the per-IP caches. The
#: longest IPv6 text is 45 characters; the rest leaves room for a zone ("%eth0").
MAX_IP_LENGTH: Final = 64

_Address = ipaddress.IPv4Address | ipaddress.IPv6Address
_Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_ip(ip: str) -> _Address | None:
    """Parse an address, unwrapping IPv4-mapped IPv6 (``::ffff:a.b.c.d``); ``None`` if invalid.

    Dual-stack servers report IPv4 clients in the mapped form, and they must be treated (and
    truncated) as the IPv4 addresses they are.
    """
    if len(ip) > MAX_IP_LENGTH:
        return None
    try:
        address = ipaddress.ip_address(ip.strip())
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return address.ipv4_mapped
        if address.scope_id is not None:
            # A zone ("fe80::1%eth0") names an interface on the collecting host, not the client.
            return ipaddress.IPv6Address(address.packed)
    return address


def _network_of(address: _Address) -> _Network:
    if isinstance(address, ipaddress.IPv4Address):
        return ipaddress.IPv4Network((address, IPV4_PREFIX), strict=False)
    return ipaddress.IPv6Network((address, IPV6_PREFIX), strict=False)


def truncate_ip(ip: str) -> str | None:
    """Zero the host part: IPv4 keeps its /24 (``a.b.c.0``), IPv6 its /48.

    Returns ``None`` for anything that is not an IP address: an unparseable value cannot be
    shown to be free of personal data, so it is not kept.
    """
    return None if len(ip) > MAX_IP_LENGTH else _truncate_cached(ip)


@lru_cache(maxsize=10_000)
def _truncate_cached(ip: str) -> str | None:
    address = parse_ip(ip)
    if address is None:
        return None
    return str(_network_of(address).network_address)


def ip_prefix(ip: str) -> str:
    """The network an address belongs to in CIDR form: ``a.b.c.0/24`` or ``x:x:x::/48``.

    A truncated address has the same prefix as the original, so the risk model can compare
    stored (truncated) events with live ones. Raises ``ValueError`` for a non-address.
    """
    address = parse_ip(ip)
    if address is None:
        raise ValueError(f"not an IP address: {ip!r}")
    return str(_network_of(address))


class IpPrivacyEnricher(Enricher):
    """Applies the IP policy to ``context.ip``; must run after every enricher that reads the IP.

    ``keep`` stores the full address, ``truncate`` (the default) stores only its network
    (see :func:`truncate_ip`), ``drop`` removes it.
    """

    name = "ip_privacy"

    def __init__(self, policy: IpPolicy = "truncate") -> None:
        if policy not in IP_POLICIES:
            raise ValueError(f"unknown IP policy {policy!r}; expected one of {sorted(IP_POLICIES)}")
        self.policy: IpPolicy = policy

    def enrich(self, event: Event) -> None:
        ip = event.context.ip
        if ip is None or self.policy == "keep":
            return
        if self.policy == "drop":
            event.context.ip = None
        else:
            event.context.ip = truncate_ip(ip)
