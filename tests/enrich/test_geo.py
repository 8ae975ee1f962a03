from collections.abc import Iterator
from datetime import UTC, datetime
from ipaddress import IPv4Address, IPv6Address
from pathlib import Path

import maxminddb
import pytest
from hypothesis import given
from hypothesis import strategies as st

from usertide.enrich import PACKAGED_CITY_DB, GeoIPEnricher
from usertide.enrich.geo import asn_from_record, geo_from_city_record
from usertide.events import Context, Event, Geo

# One enricher for the module: it shares the process-wide packaged readers anyway, and the
# geoip2fast ASN data takes ~0.3 s to load the first time.
GEO = GeoIPEnricher()


def make_event(ip: str | None) -> Event:
    now = datetime(2024, 6, 1, tzinfo=UTC)
    return Event(id="evt-1", type="track", timestamp=now, received_at=now, context=Context(ip=ip))


def test_google_dns_ipv4() -> None:
    geo = GEO.lookup("8.8.8.8")
    assert geo is not None
    assert (geo.country, geo.country_name) == ("US", "United States")
    assert geo.latitude is not None
    assert geo.longitude is not None
    assert geo.accuracy_km is not None
    assert geo.accuracy_km > 0
    assert geo.as_org == "GOOGLE"
    # The shipped ASN data has organisation names only: numbers need a configured ASN database.
    assert geo.asn is None


def test_cloudflare_dns() -> None:
    geo = GEO.lookup("1.1.1.1")
    assert geo is not None
    assert geo.as_org == "CLOUDFLARENET"


def test_google_dns_ipv6() -> None:
    geo = GEO.lookup("2001:4860:4860::8888")
    assert geo is not None
    assert geo.country == "US"
    assert geo.as_org == "GOOGLE"


def test_ripe_ncc_amsterdam() -> None:
    geo = GEO.lookup("193.0.6.139")
    assert geo is not None
    assert (geo.country, geo.city, geo.region) == ("NL", "Amsterdam", "North Holland")
    assert geo.latitude == pytest.approx(52.37, abs=0.5)
    assert geo.longitude == pytest.approx(4.89, abs=0.5)
    assert geo.as_org is not None
    assert "RIPE" in geo.as_org


def test_yandex_dns() -> None:
    geo = GEO.lookup("77.88.8.8")
    assert geo is not None
    assert geo.country == "RU"
    assert geo.as_org == "YANDEX LLC"


def test_ipv4_mapped_ipv6_is_looked_up_as_ipv4() -> None:
    assert GEO.lookup("::ffff:8.8.8.8") == GEO.lookup("8.8.8.8")


@pytest.mark.parametrize(
    "ip",
    [
        "10.0.0.1",
        "192.168.1.20",
        "172.16.5.4",
        "127.0.0.1",
        "100.64.0.1",  # carrier-grade NAT
        "169.254.1.1",
        "224.0.0.251",
        "0.0.0.0",
        "::1",
        "::",
        "fe80::1%eth0",
        "fd00::1",
        "2001:db8::1",  # documentation range
        "::ffff:10.0.0.1",
        "not-an-ip",
        "",
        "8.8.8.8.8",
        "1.2.3.4:443",
        "8.8.8.8" + " " * 100,
    ],
)
def test_unlocatable_addresses_give_nothing(ip: str) -> None:
    assert GEO.lookup(ip) is None


def test_enrich_sets_geo() -> None:
    event = make_event("193.0.6.139")
    GEO.enrich(event)
    assert event.context.geo == GEO.lookup("193.0.6.139")


@pytest.mark.parametrize("ip", [None, "", "10.1.2.3", "garbage"])
def test_enrich_leaves_geo_alone_without_a_usable_ip(ip: str | None) -> None:
    event = make_event(ip)
    GEO.enrich(event)
    assert event.context.geo is None


def test_lookups_return_independent_copies() -> None:
    first = GEO.lookup("8.8.8.8")
    assert first is not None
    first.country = "XX"
    second = GEO.lookup("8.8.8.8")
    assert second is not None
    assert second.country == "US"


def test_packaged_city_database_is_geolite2_city() -> None:
    with maxminddb.open_database(PACKAGED_CITY_DB) as reader:
        assert reader.metadata().database_type == "GeoLite2-City"


@pytest.fixture
def configured() -> Iterator[GeoIPEnricher]:
    enricher = GeoIPEnricher(city_db=str(PACKAGED_CITY_DB))
    yield enricher
    enricher.close()


def test_configured_city_database_path(configured: GeoIPEnricher) -> None:
    geo = configured.lookup("193.0.6.139")
    assert geo is not None
    assert (geo.country, geo.city) == ("NL", "Amsterdam")


def test_missing_database_fails_at_construction(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="MaxMind database not found"):
        GeoIPEnricher(city_db=tmp_path / "GeoLite2-City.mmdb")
    with pytest.raises(FileNotFoundError, match="MaxMind database not found"):
        GeoIPEnricher(asn_db=tmp_path / "GeoLite2-ASN.mmdb")


def test_wrong_kind_of_database_fails_at_construction() -> None:
    with pytest.raises(ValueError, match="'GeoLite2-City' database"):
        GeoIPEnricher(asn_db=PACKAGED_CITY_DB)


def test_corrupt_database_fails_at_construction(tmp_path: Path) -> None:
    bogus = tmp_path / "GeoLite2-City.mmdb"
    bogus.write_bytes(b"not a maxmind database")
    with pytest.raises(maxminddb.InvalidDatabaseError):
        GeoIPEnricher(city_db=bogus)


def test_geolite2_asn_record_mapping() -> None:
    # The shape of a GeoLite2-ASN record, as maxminddb returns it.
    record = {"autonomous_system_number": 15169, "autonomous_system_organization": "GOOGLE"}
    assert asn_from_record(record) == (15169, "GOOGLE")
    assert asn_from_record(None) == (None, None)
    assert asn_from_record({"autonomous_system_number": "15169"}) == (None, None)


def test_odd_city_records_map_to_empty_geo() -> None:
    assert geo_from_city_record(None) == Geo()
    assert geo_from_city_record({"country": "US", "location": [1, 2], "subdivisions": {}}) == Geo()


def test_warm_loads_the_asn_data() -> None:
    assert GEO.warm() >= 0.0


@given(st.text(max_size=60))
def test_arbitrary_strings_never_raise(ip: str) -> None:
    event = make_event(ip)
    GEO.enrich(event)


@given(st.one_of(st.ip_addresses(v=4), st.ip_addresses(v=6)))
def test_arbitrary_addresses_never_raise(address: IPv4Address | IPv6Address) -> None:
    geo = GEO.lookup(str(address))
    assert geo is None or geo != Geo()
