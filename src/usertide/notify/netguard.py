"""Where a webhook may go: an http(s) URL whose host resolves only to public addresses.

A webhook URL is typed in by an operator, so without a guard it is a way to make the
server send requests to itself, to the LAN or to a cloud metadata endpoint (SSRF).
:func:`check_url` parses the URL with the same parser that sends the request (httpx),
resolves its host once and classifies every address; the caller then connects to one of
those checked addresses (:attr:`Destination.addresses`), so a second DNS answer can't
swap in an internal address between the check and the connection (DNS rebinding).
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass

import httpx

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], Sequence[str]]
"""``(host, port) -> addresses``: resolves a host name; raises ``OSError`` on failure."""

_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")


class UnsafeDestination(ValueError):
    """The URL is refused for good: wrong scheme, credentials in it, or an address that
    isn't public. Trying again won't help."""


@dataclass(frozen=True, slots=True)
class Destination:
    url: httpx.URL
    host: str  # as in the URL, IDNA-encoded and lower case
    port: int
    addresses: tuple[str, ...]  # resolved and checked, in resolver order


def system_resolver(host: str, port: int) -> list[str]:
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def is_public(address: IPAddress) -> bool:
    """False for private, loopback, link-local, multicast, reserved, unspecified and
    other non-global addresses, including IPv4 addresses wrapped in IPv6 (mapped,
    6to4, NAT64)."""
    if isinstance(address, ipaddress.IPv6Address):
        embedded = address.ipv4_mapped or address.sixtofour
        if embedded is None and address in _NAT64:
            embedded = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
        if embedded is not None and not is_public(embedded):
            return False
        if address.is_site_local:
            return False
    return not (
        address.is_private
        or address.is_loopback
        or address.is_link_local
        or address.is_multicast
        or address.is_reserved
        or address.is_unspecified
        or not address.is_global
    )


def check_url(
    url: str | httpx.URL,
    *,
    allow_private: bool = False,
    allowed_hosts: Collection[str] = (),
    resolver: Resolver = system_resolver,
) -> Destination:
    """Parse, resolve and check ``url``. Raises :class:`UnsafeDestination` when it is
    refused and ``OSError`` when its host doesn't resolve (which may be temporary).

    ``allow_private`` or a host listed in ``allowed_hosts`` (exact, case-insensitive:
    ``"hooks.internal"``, ``"10.0.0.7"``) lifts the address check only; the scheme and
    credentials checks always apply."""
    try:
        parsed = url if isinstance(url, httpx.URL) else httpx.URL(url)
    except (httpx.InvalidURL, TypeError) as error:
        raise UnsafeDestination(f"not a valid URL: {error}") from None
    if parsed.scheme not in ("http", "https"):
        raise UnsafeDestination(f"scheme {parsed.scheme!r} is not allowed, only http(s)")
    if parsed.userinfo:
        raise UnsafeDestination("credentials in the URL are not allowed")
    host = parsed.raw_host.decode("ascii").lower()
    if not host:
        raise UnsafeDestination("the URL has no host")
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    addresses = tuple(dict.fromkeys(resolver(host, port)))
    if not addresses:
        raise OSError(f"{host} resolved to no address")
    exempt = allow_private or host in {h.lower().strip("[]") for h in allowed_hosts}
    for text in addresses:
        try:
            address = ipaddress.ip_address(text)
        except ValueError:
            raise UnsafeDestination(f"{host} resolved to something that isn't an IP") from None
        if not exempt and not is_public(address):
            raise UnsafeDestination(f"{host} resolves to a non-public address ({address})")
    return Destination(url=parsed, host=host, port=port, addresses=addresses)
