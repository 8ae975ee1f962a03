from datetime import UTC, datetime
from ipaddress import IPv4Address, IPv6Address

import pytest
from hypothesis import given
from hypothesis import strategies as st

from usertide.enrich import IpPrivacyEnricher, ip_prefix, truncate_ip
from usertide.events import Context, Event


def make_event(ip: str | None) -> Event:
    now = datetime(2024, 6, 1, tzinfo=UTC)
    return Event(id="evt-1", type="page", timestamp=now, received_at=now, context=Context(ip=ip))


@pytest.mark.parametrize(
    ("ip", "truncated"),
    [
        ("8.8.8.8", "8.8.8.0"),
        ("193.0.6.139", "193.0.6.0"),
        (" 1.2.3.4 ", "1.2.3.0"),
        ("2001:4860:4860::8888", "2001:4860:4860::"),
        ("2a02:6b8:a::a", "2a02:6b8:a::"),
        ("::ffff:77.88.8.8", "77.88.8.0"),  # IPv4-mapped: truncated as the IPv4 it is
        ("fe80::1%eth0", "fe80::"),
        ("not an ip", None),
        ("", None),
        ("999.1.1.1", None),
        ("1" * 10_000, None),
    ],
)
def test_truncate_ip(ip: str, truncated: str | None) -> None:
    assert truncate_ip(ip) == truncated


@pytest.mark.parametrize(
    ("ip", "prefix"),
    [
        ("8.8.8.8", "8.8.8.0/24"),
        ("2001:4860:4860::8888", "2001:4860:4860::/48"),
        ("::ffff:1.2.3.4", "1.2.3.0/24"),
    ],
)
def test_ip_prefix(ip: str, prefix: str) -> None:
    assert ip_prefix(ip) == prefix


def test_ip_prefix_rejects_non_addresses() -> None:
    with pytest.raises(ValueError, match="not an IP address"):
        ip_prefix("localhost")


@given(st.one_of(st.ip_addresses(v=4), st.ip_addresses(v=6)))
def test_truncation_keeps_the_prefix(address: IPv4Address | IPv6Address) -> None:
    ip = str(address)
    truncated = truncate_ip(ip)
    assert truncated is not None
    # Stored (truncated) and live (full) addresses of one network must compare equal.
    assert ip_prefix(truncated) == ip_prefix(ip)
    assert truncate_ip(truncated) == truncated


@pytest.mark.parametrize(
    ("policy", "stored"),
    [("keep", "8.8.8.8"), ("truncate", "8.8.8.0"), ("drop", None)],
)
def test_policies(policy: str, stored: str | None) -> None:
    event = make_event("8.8.8.8")
    IpPrivacyEnricher(policy).enrich(event)  # type: ignore[arg-type]
    assert event.context.ip == stored


def test_default_policy_truncates() -> None:
    event = make_event("2001:4860:4860::8888")
    IpPrivacyEnricher().enrich(event)
    assert event.context.ip == "2001:4860:4860::"


def test_truncate_drops_what_is_not_an_address() -> None:
    event = make_event("<script>")
    IpPrivacyEnricher().enrich(event)
    assert event.context.ip is None


def test_missing_ip_stays_missing() -> None:
    event = make_event(None)
    IpPrivacyEnricher().enrich(event)
    assert event.context.ip is None


def test_unknown_policy_is_rejected() -> None:
    with pytest.raises(ValueError, match="unknown IP policy"):
        IpPrivacyEnricher("hash")  # type: ignore[arg-type]


@given(st.text(max_size=80), st.sampled_from(["keep", "truncate", "drop"]))
def test_arbitrary_ips_never_raise(ip: str, policy: str) -> None:
    event = make_event(ip)
    IpPrivacyEnricher(policy).enrich(event)  # type: ignore[arg-type]
