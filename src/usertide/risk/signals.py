"""Signals beside the likelihood ratio, each a pure function giving a readable reason."""

from __future__ import annotations

import math
from functools import lru_cache

from usertide.engine.base import Reason
from usertide.risk.config import RiskConfig
from usertide.risk.features import LoginFeatures
from usertide.risk.history import LoginHistory

EARTH_RADIUS_KM = 6371.0


def haversine_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_KM * math.asin(min(1.0, math.sqrt(a)))


def impossible_travel(
    login: LoginFeatures, history: LoginHistory, config: RiskConfig
) -> Reason | None:
    last = history.last_place
    here = login.place
    if last is None or here is None:
        return None
    distance = haversine_km(last.latitude, last.longitude, here.latitude, here.longitude)
    # GeoIP places a city's addresses within a radius; only distance beyond both radii
    # (and a fixed tolerance) counts as travel.
    uncertainty = min(last.accuracy_km + here.accuracy_km, 1000.0) + config.geo_tolerance_km
    travelled = distance - uncertainty
    if travelled <= 0:
        return None
    hours = max(login.time - last.time, 0.0) / 3600.0
    speed = travelled / hours if hours > 0 else math.inf
    if speed <= config.travel_kmh:
        return None
    shown = "instantly" if math.isinf(speed) else f"at {speed:,.0f} km/h"
    return Reason(
        code="impossible_travel",
        message=f"{distance:,.0f} km from the previous sign-in "
        f"({_ago(login.time - last.time)} earlier): that is travelling {shown}",
        data={
            "distance_km": round(distance),
            "hours": round(hours, 2),
            "speed_kmh": None if math.isinf(speed) else round(speed),
        },
    )


def recent_failures(history: LoginHistory, now: float, window: float) -> int:
    since = now - window
    n = 0
    for t in history.failures:  # a plain loop: this runs for every sign-in
        if since <= t <= now:
            n += 1
    return n


def is_hosting(owner: str | None, config: RiskConfig) -> bool:
    if not owner:
        return False
    return _matches(owner, config.hosting_networks)


@lru_cache(maxsize=20_000)
def _matches(owner: str, names: tuple[str, ...]) -> bool:
    lowered = owner.lower()
    return any(name in lowered for name in names)


def hour_share(history: LoginHistory, hour: int) -> float:
    total = sum(history.hours)
    return history.hours[hour] / total if total > 0 else 1.0


def _ago(seconds: float) -> str:
    seconds = max(seconds, 0.0)
    if seconds < 3600:
        return f"{seconds / 60:.0f} min"
    if seconds < 172_800:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86_400:.0f} days"
