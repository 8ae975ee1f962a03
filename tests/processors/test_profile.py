from __future__ import annotations

from factories import event
from usertide.engine import Engine
from usertide.events import Device, Geo
from usertide.processors import Profile
from usertide.processors.profile import MAX_EVENT_NAMES, MAX_SEEN, OTHER, ProfileState


def run(events: list) -> ProfileState:  # type: ignore[type-arg]
    e = Engine([Profile()])
    for ev in events:
        e.apply(ev)
    state = e.lookup("jane")
    assert state is not None
    return state.get(Profile)


def test_counts_first_last_and_traits() -> None:
    p = run(
        [
            event(at=10, name="click"),
            event(at=5, name="buy"),
            event(at=20, type="identify", traits={"plan": "pro", "email": "j@example.com"}),
            event(at=30, properties={"$set_once": {"plan": "free", "signup": "2026"}}),
        ]
    )
    assert p.first_seen < p.last_seen and p.events == 4
    assert p.event_counts == {"click": 2, "buy": 1, "$identify": 1}
    assert p.traits == {"plan": "pro", "email": "j@example.com", "signup": "2026"}


def test_devices_and_locations_are_bounded() -> None:
    events = []
    for i in range(MAX_SEEN + 3):
        ev = event(at=i)
        ev.context.device = Device(browser=f"B{i}", os="OS", device_type="desktop")
        ev.context.geo = Geo(country="US", city=f"City{i}")
        events.append(ev)
    p = run(events)
    assert len(p.devices) == MAX_SEEN and len(p.locations) == MAX_SEEN
    assert p.devices[-1].label.startswith(f"B{MAX_SEEN + 2}")


def test_event_names_are_bounded() -> None:
    p = run([event(at=i, name=f"n{i}") for i in range(MAX_EVENT_NAMES + 10)])
    assert len(p.event_counts) == MAX_EVENT_NAMES
    assert p.event_counts[OTHER] == 11


def test_huge_traits_are_clipped() -> None:
    p = run([event(type="identify", traits={"bio": "x" * 10_000, "blob": {"k": "y" * 1000}})])
    assert len(p.traits["bio"]) == 256 and "blob" not in p.traits
