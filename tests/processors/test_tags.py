from __future__ import annotations

from pathlib import Path
from typing import Any

import msgspec
import pytest

from factories import event
from usertide.engine import Engine
from usertide.events import Device, Event
from usertide.processors import Sessionizer
from usertide.processors.tags import MAX_CATEGORY_CHARS, MAX_INTERESTS, TagRules, UserTags

H = 3600.0
DAY = 86_400.0


def run(events: list[Event], rules: TagRules | None = None, key: str = "jane") -> dict[str, Any]:
    engine = Engine([Sessionizer(), UserTags(rules)])
    for ev in events:
        engine.apply(ev)
    state = engine.lookup(key)
    assert state is not None
    view: dict[str, Any] = engine.view(state)["tags"]
    return view


def visits(days: list[float], per_visit: int = 2, **kw: Any) -> list[Event]:
    """``per_visit`` events a minute apart at each of ``days`` (one session each)."""
    return [event(at=d * DAY + i * 60, **kw) for d in days for i in range(per_visit)]


def rfm(view: dict[str, Any]) -> dict[str, Any]:
    segment: dict[str, Any] = view["segments"]["rfm"]
    return segment


def on(device_type: str, at: float) -> Event:
    ev = event(at=at)
    ev.context.device = Device(browser="Safari", os="iOS", device_type=device_type)
    return ev


# -- RFM segments ---------------------------------------------------------------------
def test_a_first_visit_is_new_with_its_numbers() -> None:
    view = run(visits([0, 2]))
    seg = rfm(view)
    assert seg["segment"] == "new" and view["tags"][0] == "new"
    assert seg["sessions"] == 2 and seg["purchases"] == 0 and seg["revenue"] == 0
    assert seg["recency_days"] == pytest.approx(2 - 60 / DAY, abs=1e-3)
    assert seg["first_seen"] == "2026-11-01T12:00:00Z"
    assert seg["as_of"] == "2026-11-03T12:01:00Z"
    assert "first seen 2.0 days ago" in seg["reason"]
    assert view["reasons"]["new"] == seg["reason"]


def test_many_sessions_or_purchases_are_loyal_even_when_young() -> None:
    assert rfm(run(visits([i / 4 for i in range(10)])))["segment"] == "loyal"
    bought = [event(at=i * H, name="Order Completed") for i in range(3)]
    seg = rfm(run(bought))
    assert seg["segment"] == "loyal" and seg["purchases"] == 3
    assert "3 purchases" in seg["reason"]


def test_an_older_user_with_few_visits_is_active() -> None:
    seg = rfm(run(visits([0, 10, 20])))
    assert seg["segment"] == "active" and seg["sessions"] == 3
    assert seg["recency_days"] == pytest.approx(10, abs=0.01)


@pytest.mark.parametrize(("gap", "segment"), [(30, "at_risk"), (90, "lapsed")])
def test_a_visit_after_a_long_silence(gap: float, segment: str) -> None:
    view = run(visits([0, 1, gap], per_visit=3))
    seg = rfm(view)
    # The segment holds for the whole visit, not only its first event.
    assert seg["segment"] == segment and segment in view["tags"]
    assert f"back after {gap - 1:.0f} days away" in seg["reason"]
    # The next visit comes after a short gap: no longer a return from silence.
    assert rfm(run(visits([0, 1, gap, gap + 1], per_visit=3)))["segment"] == "active"


def test_thresholds_come_from_the_rules() -> None:
    rules = msgspec.convert({"at_risk_days": 5, "lapsed_days": 8}, TagRules)
    assert rfm(run(visits([0, 6]), rules))["segment"] == "at_risk"
    assert rfm(run(visits([0, 9]), rules))["segment"] == "lapsed"
    with pytest.raises(ValueError):
        TagRules(interest_half_life_days=0)
    with pytest.raises(ValueError):
        TagRules(night_end_hour=25)


# -- behaviour tags -------------------------------------------------------------------
def test_mobile_first_needs_most_typed_events_from_mobile() -> None:
    mostly = [on("mobile", i) for i in range(3)] + [on("tablet", 3), on("desktop", 4)]
    view = run(mostly)
    assert "mobile-first" in view["tags"]
    assert view["reasons"]["mobile-first"] == "4 of 5 events (80%) from mobile devices"
    # events without a device type do not count either way
    view = run([on("mobile", i) for i in range(2)] + [on("desktop", i + 2) for i in range(3)])
    assert "mobile-first" not in view["tags"]
    assert "mobile-first" not in run([on("mobile", i) for i in range(4)])["tags"]  # too few


def test_night_owl_in_utc_when_no_timezone_is_known() -> None:
    # T0 is 12:00 UTC: +13 h is 01:00, +15 h 03:00.
    nights = [event(at=13 * H + i * 60) for i in range(4)]
    days = [event(at=i * 60) for i in range(6)]
    view = run(nights + days)
    assert "night-owl" in view["tags"]
    assert view["reasons"]["night-owl"] == "4 of 10 events (40%) between 0 and 5 h local time"
    assert "night-owl" not in run(nights[:2] + days + days)["tags"]


def test_night_owl_uses_the_users_time_zone() -> None:
    def at(t: float, timezone: str) -> Event:
        ev = event(at=t)
        ev.context.timezone = timezone
        return ev

    # 16:00 UTC is 01:00 in Tokyo; 01:00 UTC is the evening before in New York.
    tokyo = [at(4 * H + i * 60, "Asia/Tokyo") for i in range(10)]
    assert "night-owl" in run(tokyo)["tags"]
    new_york = [at(13 * H + i * 60, "America/New_York") for i in range(10)]
    assert "night-owl" not in run(new_york)["tags"]
    # An unknown or malicious zone name counts in UTC.
    for name in ("Mars/Olympus", "../../etc/passwd", "/etc/localtime"):
        assert "night-owl" in run([at(13 * H + i * 60, name) for i in range(10)])["tags"]


def test_night_hours_may_wrap_past_midnight() -> None:
    assert TagRules(night_start_hour=22, night_end_hour=2).night_hours() == {22, 23, 0, 1}
    late = [event(at=11 * H + i * 60) for i in range(10)]  # 23:00 UTC
    assert "night-owl" not in run(late)["tags"]
    assert "night-owl" in run(late, TagRules(night_start_hour=22, night_end_hour=2))["tags"]


def test_big_spender_adds_the_revenue_of_purchase_events() -> None:
    events = [
        event(at=0, name="Order Completed", properties={"revenue": 300, "total": 999}),
        event(at=60, name="purchase", properties={"total": "250.5"}),
        event(at=120, name="buy", properties={"price": 10}),
        event(at=180, name="buy", properties={"revenue": True}),  # not an amount
        event(at=240, name="buy", properties={"revenue": -50}),
        event(at=300, name="Product Viewed", properties={"revenue": 10_000}),  # not bought
    ]
    view = run(events)
    assert "big-spender" in view["tags"]
    assert rfm(view)["revenue"] == 560.5 and rfm(view)["purchases"] == 5
    assert view["reasons"]["big-spender"] == "spent 560.50 in 5 purchases (≥ 500)"
    assert "big-spender" not in run(events[1:])["tags"]


def test_interests_are_the_top_categories_by_decayed_views() -> None:
    def view_of(category: str, at: float) -> Event:
        return event(type="page", at=at, properties={"category": category})

    events = [view_of("Garden", i * 60) for i in range(8)]  # 120 days ago: 8/16
    now = 120 * DAY
    events += [view_of("Shoes", now + i) for i in range(4)]
    events += [view_of(" HATS ", now + 10 + i) for i in range(3)]
    events += [event(at=now + 20, name="Product Viewed", properties={"category": "Bags"})]
    events += [event(at=now + 30, name="Product Viewed", properties={"category": "Bags"})]
    events += [event(at=now + 40, name="click", properties={"category": "Toys"})]  # not a view
    events += [view_of("Toys", now + 50)]  # once: below the weight shown
    view = run(events)
    interests = [t for t in view["tags"] if t.startswith("interest:")]
    assert interests == ["interest:shoes", "interest:hats", "interest:bags"]
    assert view["reasons"]["interest:shoes"].startswith("viewed shoes often (weight 4.0")
    # the same, with fewer shown
    assert [t for t in run(events, TagRules(interests_shown=1))["tags"] if ":" in t] == [
        "interest:shoes"
    ]


def test_interest_weights_survive_long_histories() -> None:
    # Rescaling keeps the weights finite over a century of views.
    events = [
        event(type="page", at=d * DAY, properties={"category": "shoes"})
        for d in range(0, 36500, 10)
    ]
    view = run(events)
    assert "interest:shoes" in view["tags"]
    weight = float(view["reasons"]["interest:shoes"].split("weight ")[1].split(",")[0])
    assert 2 < weight < 20


# -- determinism, merge, state --------------------------------------------------------
def test_tags_depend_on_event_time_only() -> None:
    def history(shift: float) -> list[Event]:
        out = visits([0, 3, 40], per_visit=4)
        out += [event(at=13 * H, name="Order Completed", properties={"revenue": 400})]
        out += [on("mobile", 40 * DAY + 300 + i) for i in range(6)]
        for ev in out:
            ev.timestamp = ev.timestamp.replace(year=ev.timestamp.year + int(shift))
        return out

    a, b, later = run(history(0)), run(history(0)), run(history(3))
    assert a == b
    assert a["tags"] == later["tags"] == ["at_risk", "mobile-first"]
    assert {k: v for k, v in rfm(a).items() if k not in ("first_seen", "as_of")} == {
        k: v for k, v in rfm(later).items() if k not in ("first_seen", "as_of")
    }


def test_state_survives_encoding() -> None:
    engine = Engine([Sessionizer(), UserTags()])
    for ev in visits([0, 1, 2]) + [on("mobile", i) for i in range(5)]:
        engine.apply(ev)
    state = engine.lookup("jane")
    assert state is not None
    again = engine.codec.decode("jane", engine.codec.encode(state))
    assert engine.view(again) == engine.view(state)


def test_an_anonymous_visitors_activity_is_merged_on_identify() -> None:
    anonymous = [
        event(user_id=None, anonymous_id="a1", type="page", at=i * 60, properties={"category": "x"})
        for i in range(3)
    ]
    anonymous += [on("mobile", 200 + i) for i in range(5)]
    for ev in anonymous[3:]:
        ev.user_id, ev.anonymous_id = None, "a1"
    known = [
        event(at=-DAY + i, name="Order Completed", properties={"revenue": 600}) for i in range(2)
    ]
    identify = event(anonymous_id="a1", type="identify", at=400)
    view = run([*known, *anonymous, identify])
    seg = rfm(view)
    assert seg["purchases"] == 2 and seg["revenue"] == 1200
    assert seg["sessions"] == 2  # the user's visit the day before, and the visitor's
    assert seg["first_seen"] == "2026-10-31T12:00:00Z"
    assert {"mobile-first", "big-spender", "interest:x"} <= set(view["tags"])


def test_merge_adds_counts_and_rescales_interests() -> None:
    tags = UserTags()
    engine = Engine([Sessionizer(), tags])
    for ev in [event(type="page", at=0, properties={"category": "a"})] * 1:
        engine.apply(ev)
    for ev in [
        event(user_id="bob", type="page", at=30 * DAY + i, properties={"category": "a"})
        for i in range(2)
    ]:
        engine.apply(ev)
    jane, bob = engine.lookup("jane"), engine.lookup("bob")
    assert jane is not None and bob is not None
    merged = tags.merge(jane.get(UserTags), bob.get(UserTags))
    assert merged.events == 3 and merged.sessions == 2 and merged.last == bob.get(UserTags).last
    # one view a half-life before the last two: 0.5 + 2
    assert tags.interests(merged) == [("a", 2.5)]
    assert tags.interests(tags.merge(bob.get(UserTags), jane.get(UserTags))) == [("a", 2.5)]


def test_state_stays_small() -> None:
    rules = TagRules()
    engine = Engine([Sessionizer(), UserTags(rules)])
    events = visits([0, 1, 2, 5, 9], per_visit=20)
    events += [
        event(type="page", at=10 * DAY + i, properties={"category": f"{i:02d}" + "x" * 100})
        for i in range(3 * MAX_INTERESTS)
    ]
    events += [event(at=11 * DAY, name="Order Completed", properties={"revenue": 1234.56})]
    for ev in events:
        engine.apply(ev)
    state = engine.lookup("jane")
    assert state is not None
    slot = state.get(UserTags)
    assert len(slot.interests) == MAX_INTERESTS
    assert all(len(c) == MAX_CATEGORY_CHARS for c in slot.interests)
    assert len(msgspec.msgpack.encode(slot)) <= 400
    # a typical user: a couple of categories
    small = Engine([Sessionizer(), UserTags(rules)])
    for ev in [*visits([0, 1]), event(type="page", at=DAY, properties={"category": "shoes"})]:
        small.apply(ev)
    typical = small.lookup("jane")
    assert typical is not None
    assert len(msgspec.msgpack.encode(typical.get(UserTags))) <= 120


def test_rules_come_from_a_json_file_with_defaults_for_the_rest(tmp_path: Path) -> None:
    from usertide.config import load_settings
    from usertide.processors.tags import TagRules, load_rules
    from usertide.service import Service

    path = tmp_path / "rules.json"
    path.write_text('{"big_spender_revenue": 50, "lapsed_days": 90}')
    rules = load_rules(path)
    assert rules.big_spender_revenue == 50 and rules.lapsed_days == 90
    assert rules.at_risk_days == TagRules().at_risk_days
    settings = load_settings({"USERTIDE_TAG_RULES": str(path)}, data_dir=tmp_path / "data")
    service = Service.create(settings)
    try:
        tags = next(p for p in service.runtime.engine.processors if isinstance(p, UserTags))
        assert tags.rules.big_spender_revenue == 50
    finally:
        service.store.close()
        service.segments.close()
    path.write_text('{"lapsed_days": "soon"}')
    with pytest.raises(ValueError, match="cannot be used"):
        load_rules(path)
