"""The user profile: who this is, what they did, from where and on what."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any, ClassVar

import msgspec

from usertide.engine.base import Output, Processor, UserState
from usertide.events import Event

MAX_EVENT_NAMES = 48
MAX_SEEN = 5
MAX_ANONYMOUS_IDS = 8
MAX_TRAITS = 32
MAX_TRAIT_CHARS = 256
OTHER = "(other)"


class Seen(msgspec.Struct, array_like=True):
    """A device or location, with when and how often it was seen."""

    label: str
    first: float
    last: float
    count: int


class ProfileState(msgspec.Struct, array_like=True):
    user_id: str | None = None
    anonymous_ids: list[str] = msgspec.field(default_factory=list)
    first_seen: float = 0.0
    last_seen: float = 0.0
    events: int = 0
    event_counts: dict[str, int] = msgspec.field(default_factory=dict)
    devices: list[Seen] = msgspec.field(default_factory=list)
    locations: list[Seen] = msgspec.field(default_factory=list)
    traits: dict[str, Any] = msgspec.field(default_factory=dict)


class Profile(Processor[ProfileState]):
    name: ClassVar[str] = "profile"
    state_type: ClassVar[type[msgspec.Struct]] = ProfileState

    def initial(self) -> ProfileState:
        return ProfileState()

    def process(self, event: Event, state: ProfileState, user: UserState) -> Sequence[Output]:
        t = event.timestamp.timestamp()
        if event.user_id and state.user_id is None:
            state.user_id = event.user_id
        if event.anonymous_id and event.anonymous_id not in state.anonymous_ids:
            _push_bounded(state.anonymous_ids, event.anonymous_id, MAX_ANONYMOUS_IDS)
        if not state.first_seen or t < state.first_seen:
            state.first_seen = t
        if t > state.last_seen:
            state.last_seen = t
        state.events += 1
        _count(state.event_counts, event_label(event))
        device = event.context.device
        if device is not None and (device.browser or device.os):
            _see(state.devices, _device_label(device.browser, device.os, device.device_type), t)
        geo = event.context.geo
        if geo is not None and geo.country:
            _see(state.locations, _place_label(geo.city, geo.region, geo.country), t)
        if event.traits:
            _set_traits(state.traits, event.traits, overwrite=True)
        set_once = event.properties.get("$set_once")
        if isinstance(set_once, dict):
            _set_traits(state.traits, set_once, overwrite=False)
        return ()

    def merge(self, into: ProfileState, other: ProfileState) -> ProfileState:
        merged = msgspec.structs.replace(into)
        merged.user_id = into.user_id or other.user_id
        for anon in other.anonymous_ids:
            if anon not in merged.anonymous_ids:
                _push_bounded(merged.anonymous_ids, anon, MAX_ANONYMOUS_IDS)
        firsts = [x for x in (into.first_seen, other.first_seen) if x]
        merged.first_seen = min(firsts) if firsts else 0.0
        merged.last_seen = max(into.last_seen, other.last_seen)
        merged.events = into.events + other.events
        merged.event_counts = dict(into.event_counts)
        for name, n in other.event_counts.items():
            _count(merged.event_counts, name, n)
        merged.devices = list(into.devices)
        for seen in other.devices:
            _see(merged.devices, seen.label, seen.last, seen.count, seen.first)
        merged.locations = list(into.locations)
        for seen in other.locations:
            _see(merged.locations, seen.label, seen.last, seen.count, seen.first)
        merged.traits = dict(other.traits)
        merged.traits.update(into.traits)
        return merged

    def view(self, state: ProfileState) -> dict[str, Any]:
        return {
            "user_id": state.user_id,
            "anonymous_ids": list(state.anonymous_ids),
            "first_seen": iso_time(state.first_seen),
            "last_seen": iso_time(state.last_seen),
            "events": state.events,
            "event_counts": dict(state.event_counts),
            "devices": [_seen_view(s) for s in state.devices],
            "locations": [_seen_view(s) for s in state.locations],
            "traits": dict(state.traits),
        }


def iso_time(t: float) -> str | None:
    return datetime.fromtimestamp(t, UTC).isoformat().replace("+00:00", "Z") if t else None


def _seen_view(seen: Seen) -> dict[str, Any]:
    return {
        "label": seen.label,
        "first_seen": iso_time(seen.first),
        "last_seen": iso_time(seen.last),
        "count": seen.count,
    }


def event_label(event: Event) -> str:
    if event.type == "track" and event.name:
        return event.name
    return f"${event.type}"


def _push_bounded(items: list[str], value: str, limit: int) -> None:
    items.append(value)
    if len(items) > limit:
        del items[0]


def _count(counts: dict[str, int], name: str, n: int = 1) -> None:
    if name in counts or len(counts) < MAX_EVENT_NAMES - 1:
        counts[name] = counts.get(name, 0) + n
    else:
        counts[OTHER] = counts.get(OTHER, 0) + n


@lru_cache(maxsize=10_000)
def _device_label(browser: str | None, os: str | None, device_type: str | None) -> str:
    return f"{browser or '?'} on {os or '?'} ({device_type or '?'})"


@lru_cache(maxsize=50_000)
def _place_label(city: str | None, region: str | None, country: str) -> str:
    return ", ".join(x for x in (city, region, country) if x)


def _see(seen: list[Seen], label: str, t: float, n: int = 1, first: float | None = None) -> None:
    earliest = first if first is not None else t
    for item in seen:
        if item.label == label:
            if t > item.last:
                item.last = t
            if earliest < item.first:
                item.first = earliest
            item.count += n
            return
    seen.append(Seen(label=label, first=earliest, last=t, count=n))
    if len(seen) > MAX_SEEN:
        # Forget the one seen least recently.
        seen.remove(min(seen, key=lambda s: s.last))


def _set_traits(traits: dict[str, Any], incoming: dict[str, Any], *, overwrite: bool) -> None:
    for key, value in incoming.items():
        if not isinstance(key, str):
            continue
        if not overwrite and key in traits:
            continue
        if key not in traits and len(traits) >= MAX_TRAITS:
            continue
        if isinstance(value, str) and len(value) > MAX_TRAIT_CHARS:
            value = value[:MAX_TRAIT_CHARS]
        elif isinstance(value, dict | list):
            encoded = msgspec.json.encode(value)
            if len(encoded) > MAX_TRAIT_CHARS:
                continue
        traits[key] = value
