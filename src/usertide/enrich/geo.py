"""Where an event came from: country, region, city, coordinates and network owner of its IP.

Everything is read from local files; nothing here touches the network. With no databases
configured it uses the data shipped inside installed packages, which is old (see
:data:`PACKAGED_CITY_DB` and :func:`load_packaged_asn_data`): configure current MaxMind
GeoLite2/GeoIP2 files for production accuracy.
"""

from __future__ import annotations

import ipaddress
import threading
import time
from functools import cache, lru_cache
from importlib.resources import files
from pathlib import Path
from typing import Any, Final

import maxminddb
import msgspec

from usertide.enrich.base import Enricher
from usertide.enrich.ip import MAX_IP_LENGTH, parse_ip
from usertide.events import Event, Geo

#: GeoLite2-City from the ``maxminddb-geolite2`` package (built 2018-07-03): the offline
#: fallback for country, region, city and coordinates.
PACKAGED_CITY_DB: Final = Path(str(files("_maxminddb_geolite2") / "GeoLite2-City.mmdb"))

#: Country+ASN data (IPv4 and IPv6) shipped with ``geoip2fast`` (MaxMind GeoLite2, 2024-06-18):
#: the offline fallback for the network owner. It holds AS organisation names only, no numbers.
PACKAGED_ASN_DATA: Final = "geoip2fast-asn-ipv6.dat.gz"

GEO_CACHE_SIZE: Final = 10_000

_CITY_DB_TYPES: Final = ("City", "Country", "Enterprise")
_ASN_DB_TYPES: Final = ("ASN", "ISP")
# What geoip2fast reports for "no owner": empty, its own placeholder, or IANA for reserved space.
_NO_ORG: Final = frozenset({"", "<unknown>", "IANA.ORG"})


def open_mmdb(path: str | Path, kinds: tuple[str, ...]) -> maxminddb.Reader:
    """Open a MaxMind-format database (C extension + mmap when available) and check its kind.

    Raises ``FileNotFoundError`` for a missing file and ``ValueError`` when the file is a
    valid database of the wrong kind (say an ASN file given as the city database), so a bad
    configuration fails at startup rather than as silently empty lookups.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"MaxMind database not found: {path}")
    reader = maxminddb.open_database(path, maxminddb.MODE_AUTO)
    database_type = reader.metadata().database_type
    if not any(kind in database_type for kind in kinds):
        reader.close()
        raise ValueError(f"{path} is a {database_type!r} database; expected one of {kinds}")
    return reader


@cache
def _packaged_city_reader() -> maxminddb.Reader:
    # One process-wide reader: it is an mmap, thread-safe for reads, and lives as long as the
    # process (so it is never closed and never reported as a leaked resource).
    return open_mmdb(PACKAGED_CITY_DB, _CITY_DB_TYPES)


_asn_data_lock = threading.Lock()
_asn_data: Any = None  # geoip2fast.GeoIP2Fast once loaded; the package ships no type hints


def load_packaged_asn_data() -> Any:
    """Load geoip2fast's ASN data once per process and return the ``GeoIP2Fast`` object.

    Loading unpickles ~790k networks: 0.2-0.3 s and ~130 MiB of RSS (and geoip2fast runs
    ``ps`` twice to report its memory use). It therefore happens lazily, on the first lookup
    that needs it, unless :meth:`GeoIPEnricher.warm` is called at startup. geoip2fast keeps
    its tables in module globals, so there can only be one data set per process.
    """
    global _asn_data
    with _asn_data_lock:
        if _asn_data is None:
            import geoip2fast  # deferred: importing it alone costs ~50 ms

            data_file = Path(geoip2fast.__file__).parent / PACKAGED_ASN_DATA
            # An absolute path, because for a bare file name geoip2fast looks in the current
            # directory before its own.
            _asn_data = geoip2fast.GeoIP2Fast(geoip2fast_data_file=str(data_file))
        return _asn_data


def _packaged_as_org(address: str) -> str | None:
    name = getattr(load_packaged_asn_data().lookup(address), "asn_name", "")
    return name if isinstance(name, str) and name not in _NO_ORG else None


def _english_name(section: object) -> str | None:
    if not isinstance(section, dict):
        return None
    names = section.get("names")
    name = names.get("en") if isinstance(names, dict) else None
    return name if isinstance(name, str) else None


def _number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def geo_from_city_record(record: object) -> Geo:
    """Map a GeoIP2/GeoLite2 City (or Country) record to ``Geo``; unknown shapes map to nothing.

    ``region`` is the English name of the first (largest) subdivision, e.g. a US state.
    """
    if not isinstance(record, dict):
        return Geo()
    country = record.get("country")
    location = record.get("location")
    location = location if isinstance(location, dict) else {}
    subdivisions = record.get("subdivisions")
    region = (
        _english_name(subdivisions[0]) if isinstance(subdivisions, list) and subdivisions else None
    )
    iso_code = country.get("iso_code") if isinstance(country, dict) else None
    return Geo(
        country=iso_code if isinstance(iso_code, str) else None,
        country_name=_english_name(country),
        region=region,
        city=_english_name(record.get("city")),
        latitude=_number(location.get("latitude")),
        longitude=_number(location.get("longitude")),
        accuracy_km=_number(location.get("accuracy_radius")),
    )


def asn_from_record(record: object) -> tuple[int | None, str | None]:
    """``(number, organisation)`` from a GeoLite2-ASN or GeoIP2-ISP record."""
    if not isinstance(record, dict):
        return None, None
    number = record.get("autonomous_system_number")
    org = record.get("autonomous_system_organization")
    return (
        number if isinstance(number, int) and not isinstance(number, bool) else None,
        org if isinstance(org, str) and org else None,
    )


def _is_routable(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    # Private, loopback, link-local, CGNAT, documentation and reserved ranges locate nothing;
    # multicast passes Python's is_global test but is not a client address either.
    return address.is_global and not address.is_multicast


class GeoIPEnricher(Enricher):
    """Sets ``context.geo`` from ``context.ip``.

    ``city_db`` is a MaxMind City or Country database (GeoLite2-City, GeoIP2-City, ...),
    ``asn_db`` a GeoLite2-ASN or GeoIP2-ISP database. Without ``city_db`` the GeoLite2-City
    file shipped in ``maxminddb-geolite2`` is used. Without ``asn_db`` the organisation comes
    from ``geoip2fast``'s shipped data, which has names but no AS numbers, so ``Geo.asn``
    stays ``None``; that data is loaded on the first lookup (0.2-0.3 s, ~130 MiB) unless
    :meth:`warm` is called first.

    Invalid, private, loopback and other non-routable addresses leave ``geo`` untouched.
    Results are cached per IP string in a bounded LRU.
    """

    name = "geoip"

    def __init__(
        self,
        city_db: str | Path | None = None,
        asn_db: str | Path | None = None,
        *,
        cache_size: int = GEO_CACHE_SIZE,
    ) -> None:
        self._cached_lookup = lru_cache(maxsize=cache_size)(self._lookup_uncached)
        self._owned: list[maxminddb.Reader] = []  # readers this instance opened and must close
        self._asn: maxminddb.Reader | None = None
        if city_db is None:
            self._city = _packaged_city_reader()
        else:
            self._city = open_mmdb(city_db, _CITY_DB_TYPES)
            self._owned.append(self._city)
        if asn_db is not None:
            try:
                self._asn = open_mmdb(asn_db, _ASN_DB_TYPES)
            except BaseException:
                self.close()  # do not leak the city reader opened just above
                raise
            self._owned.append(self._asn)

    def warm(self) -> float:
        """Load every lazily loaded data set now; returns the seconds it took."""
        started = time.perf_counter()
        if self._asn is None:
            load_packaged_asn_data()
        return time.perf_counter() - started

    def close(self) -> None:
        """Close the databases this instance opened (the packaged ones are process-wide)."""
        for reader in self._owned:
            reader.close()
        self._owned.clear()
        self._cached_lookup.cache_clear()

    def __enter__(self) -> GeoIPEnricher:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def lookup(self, ip: str) -> Geo | None:
        """Geo for one address, ``None`` when it is invalid, non-routable or unknown.

        The result is the caller's own copy and may be modified freely.
        """
        if len(ip) > MAX_IP_LENGTH:
            return None  # not an address, and not worth a cache slot
        geo = self._cached_lookup(ip)
        return msgspec.structs.replace(geo) if geo is not None else None

    def enrich(self, event: Event) -> None:
        ip = event.context.ip
        if not ip:
            return
        geo = self.lookup(ip)
        if geo is not None:
            event.context.geo = geo

    def _lookup_uncached(self, ip: str) -> Geo | None:
        address = parse_ip(ip)
        if address is None or not _is_routable(address):
            return None
        geo = geo_from_city_record(self._city.get(address))
        if self._asn is not None:
            geo.asn, geo.as_org = asn_from_record(self._asn.get(address))
        else:
            geo.as_org = _packaged_as_org(str(address))
        return None if geo == Geo() else geo
