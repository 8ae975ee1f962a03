"""The SSRF guard: which URLs a webhook may be sent to. The resolver is faked, so
nothing here touches the network."""

from __future__ import annotations

import ipaddress
from collections.abc import Callable

import pytest

from usertide.notify.netguard import UnsafeDestination, check_url, is_public


def resolving_to(*addresses: str) -> Callable[[str, int], list[str]]:
    return lambda host, port: list(addresses)


PUBLIC = resolving_to("93.184.215.14")


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "127.8.9.10",
        "10.0.0.1",
        "172.16.5.4",
        "192.168.1.1",
        "169.254.169.254",  # cloud metadata
        "100.64.0.1",  # carrier-grade NAT
        "0.0.0.0",
        "0.1.2.3",
        "224.0.0.1",
        "239.255.255.250",
        "240.0.0.1",
        "255.255.255.255",
        "192.0.2.10",  # documentation
        "198.18.0.1",  # benchmarking
        "::1",
        "::",
        "fe80::1",
        "fc00::1",
        "fd12:3456::1",
        "fec0::1",  # site-local (deprecated)
        "ff02::1",
        "::ffff:127.0.0.1",  # IPv4-mapped
        "::ffff:10.0.0.1",
        "64:ff9b::a00:1",  # NAT64 of 10.0.0.1
        "2002:7f00:1::1",  # 6to4 of 127.0.0.1
        "2002:a9fe:a9fe::1",  # 6to4 of 169.254.169.254
        "2001:db8::1",  # documentation
    ],
)
def test_non_public_addresses(address: str) -> None:
    assert not is_public(ipaddress.ip_address(address))
    with pytest.raises(UnsafeDestination):
        check_url("https://hooks.example/x", resolver=resolving_to(address))


@pytest.mark.parametrize("address", ["93.184.215.14", "8.8.8.8", "2606:4700::1111"])
def test_public_addresses(address: str) -> None:
    assert is_public(ipaddress.ip_address(address))
    destination = check_url("https://hooks.example/x", resolver=resolving_to(address))
    assert destination.addresses == (address,)


def test_one_private_answer_is_enough_to_refuse() -> None:
    with pytest.raises(UnsafeDestination, match=r"10\.0\.0\.1"):
        check_url("https://hooks.example/x", resolver=resolving_to("93.184.215.14", "10.0.0.1"))


@pytest.mark.parametrize(
    "url",
    [
        "ftp://hooks.example/x",
        "file:///etc/passwd",
        "gopher://hooks.example/",
        "javascript:alert(1)",
        "hooks.example/x",
        "http://user:pw@hooks.example/x",
        "http://user@hooks.example/x",
        "http:///nohost",
        "http://[::1/x",
        "",
    ],
)
def test_refused_urls(url: str) -> None:
    with pytest.raises(UnsafeDestination):
        check_url(url, allow_private=True, resolver=PUBLIC)


def test_literal_addresses_are_checked_too() -> None:
    # A literal still goes through the resolver (the system one returns it as is).
    seen: list[str] = []

    def resolve(host: str, port: int) -> list[str]:
        seen.append(host)
        return [host]

    for url in ("http://127.0.0.1/", "http://[::1]:8080/", "http://169.254.169.254/"):
        with pytest.raises(UnsafeDestination):
            check_url(url, resolver=resolve)
    assert seen == ["127.0.0.1", "::1", "169.254.169.254"]


def test_allow_private_and_allowlist_lift_the_address_check_only() -> None:
    local = resolving_to("10.0.0.7")
    assert check_url("http://hooks.lan/x", allow_private=True, resolver=local).addresses == (
        "10.0.0.7",
    )
    assert check_url("http://Hooks.LAN/x", allowed_hosts={"hooks.lan"}, resolver=local)
    assert check_url("http://[::1]/x", allowed_hosts={"[::1]"}, resolver=resolving_to("::1"))
    with pytest.raises(UnsafeDestination):
        check_url("http://other.lan/x", allowed_hosts={"hooks.lan"}, resolver=local)
    with pytest.raises(UnsafeDestination):
        check_url("http://u:p@hooks.lan/x", allowed_hosts={"hooks.lan"}, resolver=local)


def test_destination_fields() -> None:
    calls: list[tuple[str, int]] = []

    def resolve(host: str, port: int) -> list[str]:
        calls.append((host, port))
        return ["93.184.215.14", "93.184.215.14", "2606:4700::1111"]

    d = check_url("https://Bücher.Example/hook?x=1", resolver=resolve)
    assert d.host == "xn--bcher-kva.example"
    assert d.port == 443
    assert d.addresses == ("93.184.215.14", "2606:4700::1111")
    assert calls == [("xn--bcher-kva.example", 443)]
    assert check_url("http://hooks.example:8080/", resolver=PUBLIC).port == 8080
    assert check_url("http://hooks.example/", resolver=PUBLIC).port == 80


def test_resolution_failure_is_an_os_error() -> None:
    with pytest.raises(OSError):
        check_url("https://hooks.example/", resolver=resolving_to())
