"""Per-user sign-in history: decayed counts per feature level, bounded in size."""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable, Sequence
from functools import lru_cache

import msgspec

HALF_LIFE_DAYS = 90.0
DECAY_PER_SECOND = math.log(2) / (HALF_LIFE_DAYS * 86_400)
# Entries kept per level: coarse levels keep more alternatives than fine ones.
CAPACITY = {
    "country": 6,
    "network": 6,
    "prefix": 4,
    "device": 3,
    "os": 4,
    "browser": 5,
    "major": 4,
    "agent": 4,
}
MAX_FAILURES = 16
MAX_PENDING = 3
HOUR_CAP = 60


class Count(msgspec.Struct, array_like=True):
    """A decayed count, stored compactly: the key as a 32-bit digest (or the country
    code), the weight in thousandths and the time in whole seconds."""

    key: str | int
    milli: int
    last: int

    @property
    def weight(self) -> float:
        return self.milli / 1000.0


class Place(msgspec.Struct, array_like=True):
    time: float
    latitude: float
    longitude: float
    accuracy_km: float
    country: str | None


class Pending(msgspec.Struct, array_like=True):
    """A flagged sign-in held back from learning until the user says it was them."""

    event_id: str
    time: float
    network: tuple[str, str, str]
    agent: tuple[str, str, str, str, str]
    hour: int
    place: Place | None


class LoginHistory(msgspec.Struct, array_like=True):
    levels: dict[str, list[Count]] = msgspec.field(default_factory=dict)
    total: float = 0.0  # decayed number of learned sign-ins
    updated: float = 0.0
    logins: int = 0  # learned sign-ins, not decayed
    hours: list[int] = msgspec.field(default_factory=list)  # 24 bins, UTC, halved when full
    last_place: Place | None = None
    failures: list[float] = msgspec.field(default_factory=list)
    pending: list[Pending] = msgspec.field(default_factory=list)
    countries: list[str] = msgspec.field(default_factory=list)  # readable, for reasons
    browsers: list[str] = msgspec.field(default_factory=list)


# In a likelihood's ``found``: a level it did not search (its parent was unknown).
UNSEARCHED = Count(key="", milli=0, last=0)


def decay(weight: float, since: float, now: float) -> float:
    if now <= since:
        return weight
    return weight * math.exp(-DECAY_PER_SECOND * (now - since))


@lru_cache(maxsize=200_000)
def compact_key(level: str, key: str) -> str | int:
    if level == "country":
        return key
    return int.from_bytes(hashlib.blake2b(key.encode(), digest_size=4).digest(), "little")


def total_weight(history: LoginHistory, now: float) -> float:
    return decay(history.total, history.updated, now)


def learn(
    history: LoginHistory,
    levels: Iterable[tuple[str, str | int]],
    now: float,
    hour: int,
    place: Place | None,
    country: str | None,
    browser: str | None,
    found: Sequence[Count | None] = (),
) -> None:
    """Add one trusted sign-in to the history (``levels``: level and compact key;
    ``found``: what the likelihood found of each, if it has just looked)."""
    factor = decay(1.0, history.updated, now) if history.updated else 1.0
    history.total = history.total * factor + 1.0
    hours = history.hours or [0] * 24
    hours[hour] += 1
    if hours[hour] > HOUR_CAP:
        # Halving keeps the histogram recent and its counts small (one byte each).
        hours[:] = [h // 2 for h in hours]
    history.hours = hours
    history.updated = max(history.updated, now)
    history.logins += 1
    searched = len(found)
    second = int(now)
    last_at = -1  # counts learned together decay together: one factor per distinct time
    factor = 1.0
    for i, (level, compact) in enumerate(levels):
        hint = found[i] if i < searched else UNSEARCHED
        if hint is None:  # the user has no count of it: a new one
            _append(history.levels.setdefault(level, []), compact, now, CAPACITY[level])
        elif hint is UNSEARCHED:
            _add(history.levels.setdefault(level, []), compact, now, CAPACITY[level])
        else:
            if hint.last != last_at:
                last_at = hint.last
                factor = decay(1.0, last_at, now)
            _bump(hint, factor, second)
    if place is not None:
        history.last_place = place
    if country and country not in history.countries:
        _push(history.countries, country, 6)
    if browser and browser not in history.browsers:
        _push(history.browsers, browser, 6)


def _add(counts: list[Count], key: str | int, now: float, capacity: int) -> None:
    for count in counts:
        if count.key == key:
            _bump(count, decay(1.0, count.last, now), int(now))
            return
    _append(counts, key, now, capacity)


def _bump(count: Count, factor: float, second: int) -> None:
    """One more sign-in on ``count``, after decaying it by ``factor`` up to ``second``."""
    count.milli = int(count.milli * factor + 1000.5)  # rounded
    if second > count.last:
        count.last = second


def _append(counts: list[Count], key: str | int, now: float, capacity: int) -> None:
    counts.append(Count(key=key, milli=1000, last=int(now)))
    if len(counts) > capacity:
        counts.remove(min(counts, key=lambda c: decay(c.weight, c.last, now)))


def _push(items: list[str], value: str, limit: int) -> None:
    items.append(value)
    if len(items) > limit:
        del items[0]
