"""What a sign-in looks like to the risk model: two feature hierarchies and context.

After Freeman et al. (NDSS 2016): the network chain country → network owner → /24
(/48) prefix and the agent chain device type → OS → browser → browser major → exact
user agent. Each level's key includes its ancestors, so a count at a level is a count
of that whole path (Chrome-on-Windows is not Chrome-on-Android).
"""

from __future__ import annotations

import hashlib
from functools import lru_cache
from typing import Any, NamedTuple

from usertide.enrich.ip import ip_prefix
from usertide.events import Event
from usertide.risk.history import Place

NETWORK_LEVELS = ("country", "network", "prefix")
AGENT_LEVELS = ("device", "os", "browser", "major", "agent")


class LoginFeatures(NamedTuple):
    success: bool
    time: float
    network: tuple[str, str, str]  # path keys per NETWORK_LEVELS
    agent: tuple[str, str, str, str, str]  # path keys per AGENT_LEVELS
    country: str | None
    country_name: str | None
    city: str | None
    network_owner: str | None
    browser: str | None  # "Firefox on Windows"
    latitude: float | None
    longitude: float | None
    accuracy_km: float
    prefix: str | None
    automation: bool
    hour: int  # of day, UTC
    place: Place | None  # where GeoIP puts it, when it does (shared, never changed)


def login_features(event: Event) -> LoginFeatures:
    """Memoized on the event: several processors read the same sign-in."""
    memo: LoginFeatures | None = event.__dict__.get("_login")
    if memo is None:
        memo = _features(event)
        event.__dict__["_login"] = memo
    return memo


def _features(event: Event) -> LoginFeatures:
    ctx = event.context
    geo = ctx.geo
    device = ctx.device
    prefix = _prefix(ctx.ip)
    t = event.timestamp.timestamp()
    # One branch per enrichment rather than a test per field: this runs per sign-in.
    if geo is not None:
        country = geo.country
        owner = f"AS{geo.asn}" if geo.asn else (geo.as_org or None)
        latitude, longitude = geo.latitude, geo.longitude
        accuracy = geo.accuracy_km or 50.0
        place = (
            Place(time=t, latitude=latitude, longitude=longitude, accuracy_km=accuracy,
                  country=country)
            if latitude is not None and longitude is not None
            else None
        )  # fmt: skip
        country_name, city, as_org = geo.country_name, geo.city, geo.as_org
    else:
        country = owner = latitude = longitude = place = None
        country_name = city = as_org = None
        accuracy = 1000.0
    if device is not None:
        os_name = device.os or "?"
        browser = device.browser or "?"
        agent = _agent_path(
            device.device_type or "?",
            os_name,
            browser,
            device.browser_version or "?",
            ctx.user_agent or "",
        )
        shown: str | None = f"{browser} on {os_name}"
        automation = device.is_bot or device.is_headless or device.is_automation
    else:
        agent = _agent_path("?", "?", "?", "?", ctx.user_agent or "")
        shown = None
        automation = False
    return LoginFeatures(
        success=login_succeeded(event.properties),
        time=t,
        network=_network_path(country, owner, prefix),
        agent=agent,
        country=country,
        country_name=country_name,
        city=city,
        network_owner=as_org,
        browser=shown,
        latitude=latitude,
        longitude=longitude,
        accuracy_km=accuracy,
        prefix=prefix,
        automation=bool(automation),
        hour=utc_hour(t),
        place=place,
    )


def utc_hour(t: float) -> int:
    """The hour of day (UTC) of a Unix time (UTC days have 86,400 s)."""
    return int(t // 3600) % 24


def login_succeeded(properties: dict[str, Any]) -> bool:
    """``properties.success``; a sign-in event without it is taken as successful."""
    value = properties.get("success", True)
    if isinstance(value, str):
        return value.strip().lower() not in ("false", "0", "no", "failed", "failure")
    return bool(value)


@lru_cache(maxsize=50_000)
def _network_path(
    country: str | None, owner: str | None, prefix: str | None
) -> tuple[str, str, str]:
    """country → network → prefix, each key naming its parents."""
    country_key = country or "?"
    network_key = f"{country_key}/{owner or '?'}"
    return (country_key, network_key, f"{network_key}/{prefix or '?'}")


@lru_cache(maxsize=50_000)
def _agent_path(
    dtype: str, os_name: str, browser: str, major: str, user_agent: str
) -> tuple[str, str, str, str, str]:
    """device type → OS → browser → major version → user-agent string (a digest)."""
    digest = hashlib.blake2b(user_agent.encode("utf-8", "surrogatepass"), digest_size=6).hexdigest()
    os_key = f"{dtype}/{os_name}"
    browser_key = f"{os_key}/{browser}"
    major_key = f"{browser_key}/{major}"
    return (dtype, os_key, browser_key, major_key, f"{major_key}/{digest}")


@lru_cache(maxsize=50_000)
def _prefix(ip: str | None) -> str | None:
    if not ip:
        return None
    try:
        return ip_prefix(ip)
    except ValueError:
        return None
