"""Traffic anomalies: per-minute rates per series against a robust seasonal baseline."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
import numpy as np
import pytest

from usertide.alerts.rules import AlertRule
from usertide.anomaly.traffic import (
    TRAFFIC_DETECTORS,
    CountryTraffic,
    PathTraffic,
    SeriesState,
    SourceTraffic,
    TrafficConfig,
    TrafficRate,
    traffic_processors,
)
from usertide.engine import Detection, Engine, Processor, UserState
from usertide.engine.core import keyed_key, model_event
from usertide.events import Context, Event, Geo
from usertide.processors import Sessionizer

T0 = datetime(2026, 11, 2, tzinfo=UTC)  # a Monday, 00:00 UTC
PATHS = ("/", "/pricing", "/docs")
REFERRERS = (None, "https://www.google.com/search?q=usertide", "https://news.ycombinator.com/")
_contexts: dict[tuple[str | None, str | None, str | None], Context] = {}

Rates = Callable[[int], dict[str, float]]  # minute -> expected events per country


def context(country: str | None, path: str | None, referrer: str | None) -> Context:
    key = (country, path, referrer)
    if key not in _contexts:
        geo = Geo(country=country) if country else None
        _contexts[key] = Context(page_path=path, page_referrer=referrer, geo=geo)
    return _contexts[key]


def page(
    at: float,
    country: str | None = "DE",
    *,
    path: str | None = "/",
    referrer: str | None = None,
    id: str | None = None,
    received: float | None = None,
) -> Event:
    return Event(
        id=id or f"p{at:.3f}-{country}",
        type="page",
        anonymous_id="visitor",
        timestamp=T0 + timedelta(seconds=at),
        received_at=T0 + timedelta(seconds=at if received is None else received),
        context=context(country, path, referrer),
    )


def track(name: str, at: float, id: str | None = None, **kw: Any) -> Event:
    return Event(
        id=id or f"t{at:.3f}-{name}",
        type="track",
        name=name,
        user_id="jane",
        timestamp=T0 + timedelta(seconds=at),
        received_at=T0 + timedelta(seconds=at),
        **kw,
    )


def poisson_pages(rates: Rates, minutes: range, seed: int = 1) -> list[Event]:
    """Page views at random times with Poisson counts a minute, in arrival order: each is
    delivered a few seconds late (exponential delays), as batching clients do."""
    rng = np.random.default_rng(seed)
    timed: list[tuple[float, float, str, int, int]] = []
    for minute in minutes:
        for country, rate in rates(minute).items():
            for _ in range(int(rng.poisson(rate))):
                at = minute * 60 + float(rng.random()) * 60
                delay = float(rng.exponential(3.0))
                timed.append((at + delay, at, country, int(rng.integers(3)), int(rng.integers(3))))
    timed.sort()
    return [
        page(at, country, path=PATHS[p], referrer=REFERRERS[r], id=f"p{i}", received=arrival)
        for i, (arrival, at, country, p, r) in enumerate(timed)
    ]


def steady(de: float = 20.0, fr: float = 15.0, us: float = 10.0) -> Rates:
    return lambda minute: {"DE": de, "FR": fr, "US": us}


def daily(mean: float, amplitude: float = 0.7) -> Rates:
    """A day's cycle, busiest in the afternoon; DE half of the traffic."""

    def rates(minute: int) -> dict[str, float]:
        level = mean * (1 + amplitude * math.sin(2 * math.pi * (minute / 1440 - 0.35)))
        return {"DE": level * 0.5, "FR": level * 0.3, "US": level * 0.2}

    return rates


def every(n: int, minutes: range, make: Callable[[float, int], Event]) -> list[Event]:
    """``n`` events evenly spread over each minute (exact counts)."""
    return [make(m * 60 + (i + 0.5) * 60 / n, i) for m in minutes for i in range(n)]


class Driver:
    """The traffic processors driven directly, one state per (processor, series)."""

    def __init__(self, config: TrafficConfig | None = None) -> None:
        self.config = config
        self.processors: list[Processor[Any]] = traffic_processors(config)
        self.states: dict[tuple[str, str], UserState] = {}

    def feed(self, events: Iterable[Event]) -> list[Detection]:
        out: list[Detection] = []
        for event in events:
            for processor in self.processors:
                key = processor.key(event)
                if key is None:
                    continue
                state = self.states.get((processor.name, key))
                if state is None:
                    slots = {processor.name: processor.initial()}
                    state = self.states[processor.name, key] = UserState(key, slots)
                for output in processor.process(event, state.slots[processor.name], state):
                    assert isinstance(output, Detection)
                    out.append(output)
        return out

    def state(self, processor: str, key: str) -> SeriesState:
        slot = self.states[processor, key].slots[processor]
        assert isinstance(slot, SeriesState)
        return slot

    def view(self, processor: str, key: str) -> dict[str, Any]:
        one = next(p for p in self.processors if p.name == processor)
        return one.view(self.state(processor, key))

    def checkpointed(self) -> Driver:
        """A driver whose states went through msgpack, as through a checkpoint."""
        copy = Driver(self.config)
        for (name, key), state in self.states.items():
            data = msgspec.msgpack.encode(state.slots[name])
            copy.states[name, key] = UserState(
                key, {name: msgspec.msgpack.decode(data, type=SeriesState)}
            )
        return copy


def series(detections: list[Detection]) -> list[tuple[str, str, str]]:
    return [(d.user_key, d.reasons[0].code, d.data["minute"][11:16]) for d in detections]


def minute_of(event: Event) -> int:
    return int((event.timestamp - T0).total_seconds() // 60)


# -- series ------------------------------------------------------------------------------
def test_series_keys_name_the_event_and_segment() -> None:
    event, country, path, source = traffic_processors()
    assert [p.key_kind for p in (event, country, path, source)] == ["traffic"] * 4
    view = page(0, "DE", path="/pricing", referrer="https://www.google.com/search?q=x")
    assert [p.key(view) for p in (event, country, path, source)] == [
        "$pageview",
        "$pageview|country=DE",
        "$pageview|path=/pricing",
        "$pageview|source=google.com",
    ]
    assert source.key(page(0, referrer=None)) == "$pageview|source=direct"
    assert source.key(page(0, referrer="$direct")) == "$pageview|source=direct"  # PostHog's
    signup = track("signup", 0)
    assert event.key(signup) == "signup"
    assert country.key(signup) is None  # no country
    assert path.key(signup) is None and source.key(signup) is None  # no page: not web
    screen = Event(id="s", type="screen", timestamp=T0, received_at=T0)
    assert event.key(screen) == "$screen"
    assert event.key(Event(id="i", type="identify", timestamp=T0, received_at=T0)) == "$identify"
    assert event.key(model_event("risk", 2, T0)) is None  # the engine's own events
    assert event.key(track("$login_feedback", 0, source="feedback")) is None
    assert event.key(Event(id="x", type="track", timestamp=T0, received_at=T0)) is None
    assert path.key(page(0, path="/" + "a" * 500)) == "$pageview|path=/" + "a" * 199


def test_traffic_detectors_make_alerts_under_their_own_rule() -> None:
    # Each dimension is its own detector, so two series closed by the same event make two
    # alerts (an alert's id is its detector and event).
    assert TRAFFIC_DETECTORS == (
        "traffic_event",
        "traffic_country",
        "traffic_path",
        "traffic_source",
    )
    rule = AlertRule(name="traffic", detectors=TRAFFIC_DETECTORS, notify_user=False)
    assert rule.matches("traffic_country", "high", ("traffic_spike",))
    assert [type(p) for p in traffic_processors(TrafficConfig(dimensions=("country",)))] == [
        CountryTraffic
    ]


def test_config_is_checked() -> None:
    with pytest.raises(ValueError, match="dimensions"):
        TrafficConfig(dimensions=("city",))
    with pytest.raises(ValueError, match="grace"):
        TrafficConfig(grace_seconds=60)
    with pytest.raises(ValueError, match="z_threshold"):
        TrafficConfig(z_threshold=8, medium_z=6)


# -- no false alarms -----------------------------------------------------------------------
def test_steady_traffic_with_a_daily_cycle_raises_no_alerts() -> None:
    # Three days at 9-51 page views a minute with random delivery delays: every series
    # (3 countries, 3 paths, 3 sources, down to 1 a minute at night) is scored from its
    # second hour on, the day's profile learned after a day; no minute is taken for an
    # anomaly even with a minimum change of 3 events instead of 20, so the robust z alone
    # holds them (the default only adds that condition).
    events = poisson_pages(daily(30.0), range(3 * 1440), seed=7)
    driver = Driver(TrafficConfig(min_delta=3))
    assert driver.feed(events) == []
    assert len(driver.states) == 10
    view = driver.view("traffic_country", "$pageview|country=DE")
    assert view["history_minutes"] > 3 * 1440 - 5
    assert view["seasonal_hours_learned"] == 24
    assert view["expected"] == pytest.approx(daily(30.0)(3 * 1440)["DE"], rel=0.3)


def test_a_daily_step_alerts_on_the_first_day_only() -> None:
    # Traffic jumps 6x at 08:00 and falls back at 18:00 every day. The first day it is a
    # surprise; once the profile holds that day, the seasonal adjustment expects it.
    def office(minute: int) -> dict[str, float]:
        level = 60.0 if 480 <= minute % 1440 < 1080 else 10.0
        return {"DE": level}

    detections = Driver(TrafficConfig(dimensions=("event",))).feed(
        poisson_pages(office, range(3 * 1440), seed=3)
    )
    days = {d.data["minute"][:10] for d in detections}
    assert days == {"2026-11-02"}
    assert {d.reasons[0].code for d in detections} == {"traffic_spike", "traffic_drop"}


# -- spikes --------------------------------------------------------------------------------
def test_a_spike_in_one_country_is_detected_for_that_country_the_minute_after() -> None:
    spike = 180  # 03:00, after three quiet hours
    normal = steady()

    def rates(minute: int) -> dict[str, float]:
        r = normal(minute)
        return {**r, "DE": r["DE"] * 10} if minute == spike else r

    events = poisson_pages(rates, range(spike + 30), seed=11)
    by_id = {e.id: e for e in events}
    detections = Driver().feed(events)
    keys = {d.user_key for d in detections}
    assert "traffic:$pageview|country=DE" in keys
    assert not any("country=FR" in k or "country=US" in k for k in keys)
    de = next(d for d in detections if d.user_key == "traffic:$pageview|country=DE")
    assert de.detector == "traffic_country"
    assert de.reasons[0].code == "traffic_spike"
    assert de.timestamp == (T0 + timedelta(minutes=spike)).timestamp()
    assert de.level == "high"
    assert de.data["count"] > 150
    assert de.data["expected"] == pytest.approx(20, rel=0.25)
    # Reported by an event within the minute after the spike (after its grace seconds).
    closing = by_id[de.event_id]
    assert minute_of(closing) == spike + 1
    assert all(d.timestamp == de.timestamp for d in detections)  # nothing else
    assert 0.5 < de.score <= 1


def test_warm_up_no_alerts_before_enough_history() -> None:
    config = TrafficConfig(dimensions=("event",), warmup_minutes=60)
    flat = every(20, range(30), lambda at, i: track("click", at))
    spike = every(200, range(30, 31), lambda at, i: track("click", at))
    after = every(20, range(31, 100), lambda at, i: track("click", at))
    assert Driver(config).feed([*flat, *spike, *after]) == []  # 30 minutes in: warming up

    late_spike = every(200, range(80, 81), lambda at, i: track("click", at))
    events = [
        *every(20, range(80), lambda at, i: track("click", at)),
        *late_spike,
        *every(20, range(81, 100), lambda at, i: track("click", at)),
    ]
    detections = Driver(config).feed(events)
    assert series(detections) == [("traffic:click", "traffic_spike", "01:20")]


def test_one_detection_per_episode_and_again_after_calm() -> None:
    def rates(minute: int) -> dict[str, float]:
        spiking = 120 <= minute < 130 or 200 <= minute < 205
        return {"DE": 200.0 if spiking else 20.0}

    detections = Driver(TrafficConfig(dimensions=("country",))).feed(
        poisson_pages(rates, range(260), seed=5)
    )
    assert series(detections) == [
        ("traffic:$pageview|country=DE", "traffic_spike", "02:00"),
        ("traffic:$pageview|country=DE", "traffic_spike", "03:20"),
    ]


def test_an_episode_that_worsens_is_reported_again_at_its_higher_level() -> None:
    # 2.5x first (low), then 10x (high): an alert rule for "medium" still hears of it.
    def at(at: float, i: int) -> Event:
        return track("click", at)

    events = [
        *every(40, range(120), at),
        *every(100, range(120, 123), at),
        *every(400, range(123, 126), at),
        *every(40, range(126, 160), at),
    ]
    detections = Driver(TrafficConfig(dimensions=("event",))).feed(events)
    assert [(d.level, d.data["minute"][11:16]) for d in detections] == [
        ("low", "02:00"),
        ("high", "02:03"),
    ]


# -- drops ---------------------------------------------------------------------------------
def test_a_drop_to_zero_is_detected_when_the_next_event_arrives() -> None:
    # Event time only: while "signup" is silent nothing arrives to close its minutes, so
    # the silence is seen (and scored as one stretch) at its next event.
    before = every(30, range(120), lambda at, i: track("signup", at))
    resumed = every(30, range(135, 150), lambda at, i: track("signup", at))
    driver = Driver()
    assert driver.feed(before) == []
    detections = driver.feed(resumed)
    assert len(detections) == 1
    drop = detections[0]
    assert drop.user_key == "traffic:signup"
    assert drop.reasons[0].code == "traffic_drop"
    assert drop.event_id == resumed[0].id
    assert drop.data["minute"][11:16] == "02:00"
    assert drop.data["count"] == 0
    assert drop.data["minutes"] == 14  # 02:00-02:13; 02:14 was still in its grace
    assert drop.level == "high"


def test_a_partial_drop_is_detected_at_the_minute_close() -> None:
    events = [
        *every(60, range(120), lambda at, i: track("search", at)),
        *every(5, range(120, 125), lambda at, i: track("search", at)),
    ]
    detections = Driver().feed(events)
    assert series(detections) == [("traffic:search", "traffic_drop", "02:00")]
    assert detections[0].data["count"] == 5


def test_small_series_do_not_alert() -> None:
    # 1 -> 3 a minute is tripled but is 2 events: under the minimum change.
    events = [
        *every(1, range(120), lambda at, i: track("export", at)),
        *every(3, range(120, 130), lambda at, i: track("export", at)),
    ]
    assert Driver().feed(events) == []


# -- time ----------------------------------------------------------------------------------
def test_late_events_are_counted_apart_and_future_clocks_ignored() -> None:
    driver = Driver(TrafficConfig(dimensions=("event",)))
    driver.feed(every(10, range(3), lambda at, i: track("click", at)))
    state = driver.state("traffic_event", "click")
    base = int(T0.timestamp()) // 60
    assert (state.minute - base, state.count) == (2, 10)
    driver.feed([track("click", 121)])  # in the open minute
    driver.feed([track("click", 185)])  # minute 3 within the grace: minute 2 stays open
    driver.feed([track("click", 125)])
    assert (state.minute - base, state.count, state.next_count) == (2, 12, 1)
    driver.feed([track("click", 195)])  # past the grace: minute 2 closes
    driver.feed([track("click", 130)])
    assert (state.minute - base, state.count, state.late) == (3, 2, 1)
    assert state.recent == [10, 10, 12]
    # A clock a day ahead of the server's would close a day of minutes at once.
    wrong = Event(
        id="w",
        type="track",
        name="click",
        timestamp=T0 + timedelta(days=1),
        received_at=T0 + timedelta(seconds=200),
    )
    driver.feed([wrong])
    assert (state.minute - base, state.ahead) == (3, 1)


def test_the_ring_holds_the_last_hour_of_minutes_in_order() -> None:
    rng = np.random.default_rng(4)
    counts = [int(c) if rng.random() < 0.6 else 0 for c in rng.poisson(3, size=400)]
    events = [track("click", m * 60 + 20 + i * 0.1) for m, c in enumerate(counts) for i in range(c)]
    driver = Driver(TrafficConfig(dimensions=("event",), grace_seconds=0))
    driver.feed([*events, track("click", 401 * 60)])
    state = driver.state("traffic_event", "click")
    first = next(m for m, c in enumerate(counts) if c)
    closed = [*counts[first:], 0]  # minute 400 closed empty by the last event
    assert state.recent[state.pos :] + state.recent[: state.pos] == closed[-60:]
    assert state.total == sum(closed[-60:]) and state.age == len(closed)


def test_a_quiet_series_keeps_a_small_state() -> None:
    driver = Driver(TrafficConfig(dimensions=("path",)))
    driver.feed([page(i * 600.0, path="/rare") for i in range(50)])  # one every 10 min
    state = driver.state("traffic_path", "$pageview|path=/rare")
    assert state.season == []  # never busy enough to need a profile
    assert len(msgspec.msgpack.encode(state)) < 120


def test_a_quiet_series_sleeps_wakes_when_busy_and_then_alerts() -> None:
    config = TrafficConfig(dimensions=("event",))
    driver = Driver(config)
    driver.feed(every(1, range(0, 600, 7), lambda at, i: track("export", at)))  # 1 in 7 min
    state = driver.state("traffic_event", "export")
    assert state.asleep and state.recent == [] and state.season == []
    view = driver.view("traffic_event", "export")
    assert view["asleep"] and 0.05 < view["rate_per_minute"] < 0.3
    assert len(msgspec.msgpack.encode(state)) < 60
    # 30 a minute from 10:00: awake within the first minute, then counting minutes again.
    driver.feed(every(30, range(600, 602), lambda at, i: track("export", at)))
    assert not state.asleep and state.age >= 600
    assert driver.feed(every(30, range(602, 700), lambda at, i: track("export", at))) == []
    spike = driver.feed(every(300, range(700, 701), lambda at, i: track("export", at)))
    spike += driver.feed(every(30, range(701, 703), lambda at, i: track("export", at)))
    assert series(spike) == [("traffic:export", "traffic_spike", "11:40")]


def test_series_with_a_profile_or_an_episode_do_not_sleep() -> None:
    # Busy for two hours (a profile is learned), then one event in 20 minutes for hours.
    driver = Driver(TrafficConfig(dimensions=("event",)))
    driver.feed(every(30, range(120), lambda at, i: track("search", at)))
    driver.feed(every(1, range(120, 600, 20), lambda at, i: track("search", at)))
    state = driver.state("traffic_event", "search")
    assert state.season and not state.asleep
    with pytest.raises(ValueError, match="sleep_below"):
        TrafficConfig(sleep_below=2.0, wake_at=1.0)


def test_a_long_silence_keeps_the_state_small() -> None:
    driver = Driver(TrafficConfig(dimensions=("event",)))
    driver.feed(every(30, range(300), lambda at, i: track("click", at)))
    driver.feed(every(30, range(20_000, 20_003), lambda at, i: track("click", at)))
    state = driver.state("traffic_event", "click")
    assert len(state.recent) == 60 and len(state.season) == 24
    assert len(msgspec.msgpack.encode(state)) < 400


# -- replay ----------------------------------------------------------------------------------
def eventful() -> list[Event]:
    """Five hours with a spike in FR at 03:00 and DE silent 04:00-04:09."""
    normal = steady()

    def rates(minute: int) -> dict[str, float]:
        r = dict(normal(minute))
        if minute == 180:
            r["FR"] *= 8
        if 240 <= minute < 250:
            del r["DE"]
        return r

    return poisson_pages(rates, range(300), seed=2)


def test_the_same_stream_gives_the_same_detections() -> None:
    events = eventful()
    first, second = Driver().feed(events), Driver().feed(events)
    assert len(first) >= 2
    assert msgspec.to_builtins(first) == msgspec.to_builtins(second)
    assert ("traffic:$pageview|country=DE", "traffic_drop", "04:00") in series(first)


def test_states_through_a_checkpoint_give_the_same_detections() -> None:
    events = eventful()
    whole = Driver().feed(events)
    for cut in (len(events) // 3, 2 * len(events) // 3):
        driver = Driver()
        before = driver.feed(events[:cut])
        after = driver.checkpointed().feed(events[cut:])
        assert msgspec.to_builtins(before + after) == msgspec.to_builtins(whole)


def test_through_the_engine_with_a_restart() -> None:
    events = eventful()
    for offset, event in enumerate(events, start=1):
        event.offset = offset
    processors = [*traffic_processors(), Sessionizer()]
    engine = Engine(processors)
    expected = [o for e in events for o in engine.apply(e) if isinstance(o, Detection)]
    assert ("traffic:$pageview|country=FR", "traffic_spike", "03:00") in series(expected)

    cut = len(events) // 2
    first = Engine(processors)
    got = [o for e in events[:cut] for o in first.apply(e) if isinstance(o, Detection)]
    commit = first.take_commit()
    second = Engine(processors)
    second.restore(commit.offset, list(commit.states.items()), commit.aliases)
    got += [o for e in events for o in second.apply(e) if isinstance(o, Detection)]
    assert msgspec.to_builtins(got) == msgspec.to_builtins(expected)

    key = keyed_key("traffic_country", "$pageview|country=DE")
    state = second.lookup(key)
    assert state is not None
    view = second.view(state)["traffic_country"]
    assert view["minute"] == "2026-11-02T04:59:00+00:00"
    assert view["expected"] == pytest.approx(20, rel=0.3)


# -- reasons ---------------------------------------------------------------------------------
def test_reasons_read_as_sentences() -> None:
    events = [
        *every(20, range(120), lambda at, i: page(at, "DE", id=f"a{at}")),
        *every(200, range(120, 121), lambda at, i: page(at, "DE", id=f"b{at}")),
        *every(20, range(121, 200), lambda at, i: page(at, "DE", id=f"c{at}")),
    ]
    driver = Driver(TrafficConfig(dimensions=("country",)))
    (spike,) = driver.feed(events)
    assert spike.reasons[0].message == (
        "200 page views (country DE) in the minute from 02:00 UTC, "
        "10.0× the usual 20 (robust z 19.3)"
    )
    assert spike.reasons[0].data == spike.data
    assert spike.data == {
        "series": "traffic:$pageview|country=DE",
        "dimension": "country",
        "event": "$pageview",
        "value": "DE",
        "minute": "2026-11-02T02:00:00+00:00",
        "minutes": 1,
        "count": 200,
        "expected": 20.0,
        "expected_per_minute": 20.0,
        "z": 19.28,
        "seasonal_ratio": 1.0,
    }
    (silence,) = driver.feed(every(20, range(212, 215), lambda at, i: page(at, "DE")))
    assert silence.reasons[0].message == (
        "no page views (country DE) in the 11 minutes from 03:20 UTC, "
        "usually 20 a minute (robust z -28.5)"
    )
    (drop,) = Driver(TrafficConfig(dimensions=("event",))).feed(
        [
            *every(50, range(120), lambda at, i: track("signup", at)),
            *every(4, range(120, 122), lambda at, i: track("signup", at)),
        ]
    )
    assert drop.reasons[0].message == (
        '4 "signup" events in the minute from 02:00 UTC, 8% of the usual 50 (robust z -10.0)'
    )


def test_view_shows_the_open_minute_and_its_expectation() -> None:
    driver = Driver(TrafficConfig(dimensions=("event",)))
    driver.feed(every(20, range(90), lambda at, i: track("click", at)))
    driver.feed([track("click", 90 * 60 + 5)])
    assert driver.view("traffic_event", "click") == {
        "minute": "2026-11-02T01:29:00+00:00",
        "count": 20,
        "expected": 20.0,
        "history_minutes": 89,
        "warming_up": False,
        "late": 0,
        "ahead": 0,
        "episode": None,
        "seasonal_hours_learned": 1,  # 00:00-00:59, seen whole
        "asleep": False,
        "rate_per_minute": None,
    }
    assert isinstance(TrafficRate().initial(), SeriesState)
    assert PathTraffic().merge(SeriesState(count=3), SeriesState()).count == 3
    assert SourceTraffic.dimension == "source"


@pytest.mark.parametrize("shortcut", ["quiet_path", "near_path"])
def test_the_shortcuts_change_no_state_and_no_detection(
    monkeypatch: pytest.MonkeyPatch, shortcut: str
) -> None:
    """The quiet path (unscorable minutes only recorded) and the near path (minutes near
    the level skip the spread) are optimisations only: with one off, every series ends
    in the same state with the same detections. The stream mixes busy
    series with a spike and a silence, rare pages and rare events, silences of hours and
    of more than a day, and series that turn busy and quiet again."""
    rng = np.random.default_rng(5)
    events = eventful()
    rare = [
        page(float(at), "SE", path=f"/item/{rng.integers(40)}", id=f"rare{i}")
        for i, at in enumerate(np.sort(rng.uniform(0, 5 * 3600, 400)))
    ]
    burst = [  # a series that wakes up for two hours, sleeps for a day and comes back
        track("signup", at)
        for at in (
            *(float(t) for t in np.arange(7200, 14_400, 4.0)),
            *(float(t) for t in np.sort(rng.uniform(14_400, 18_000, 30))),
            *(float(t) for t in np.arange(110_000, 113_600, 3.0)),
        )
    ]
    stream = sorted([*events, *rare, *burst], key=lambda e: e.timestamp)

    def run() -> tuple[Any, Any]:
        driver = Driver()
        detections = driver.feed(stream)
        states = {k: msgspec.structs.asdict(s.slots[k[0]]) for k, s in driver.states.items()}
        return msgspec.to_builtins(detections), states

    fast = run()
    monkeypatch.setattr(TrafficRate, shortcut, False)
    full = run()
    assert fast[0] == full[0] and len(full[0]) >= 2
    assert fast[1] == full[1]
    assert any(s["season"] for s in full[1].values())  # a profile was learned somewhere
