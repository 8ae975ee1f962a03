"""The simulated traffic is deterministic, well-formed Segment data with realistic shape."""

from __future__ import annotations

import itertools
import statistics
import uuid
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from usertide.demo import GroundTruth, Simulation, SimulationConfig
from usertide.demo.population import BOT_USER_AGENTS, DATACENTER_NETWORKS, network_of_ip
from usertide.demo.simulator import VICTIM_HISTORY

SMALL = SimulationConfig(users=250, days=2.0, seed=11, items=200, takeovers=2, bot_share=0.04)
SESSION_GAP = timedelta(minutes=30)

Event = dict[str, Any]


@pytest.fixture(scope="module")
def simulation() -> Simulation:
    return Simulation(SMALL)


@pytest.fixture(scope="module")
def events(simulation: Simulation) -> list[Event]:
    return list(simulation.events())


def when(event: Event) -> datetime:
    return datetime.fromisoformat(event["timestamp"])


def tracks(events: list[Event], name: str) -> list[Event]:
    return [e for e in events if e["type"] == "track" and e["event"] == name]


def human_sessions(events: list[Event], truth: GroundTruth) -> list[list[Event]]:
    """Visits by people: per browser, split at 30 minutes of inactivity."""
    attackers = {e["anonymousId"] for e in events if e["messageId"] in _takeover_ids(truth)}
    by_browser: dict[str, list[Event]] = defaultdict(list)
    for event in events:
        anonymous_id = event["anonymousId"]
        if anonymous_id not in truth.bot_anonymous_ids and anonymous_id not in attackers:
            by_browser[anonymous_id].append(event)
    sessions: list[list[Event]] = []
    for stream in by_browser.values():
        current = [stream[0]]
        for previous, event in itertools.pairwise(stream):
            if when(event) - when(previous) > SESSION_GAP:
                sessions.append(current)
                current = []
            current.append(event)
        sessions.append(current)
    return sessions


def _takeover_ids(truth: GroundTruth) -> set[str]:
    return {t.message_id for t in truth.takeovers}


def gap_cv(stream: list[Event]) -> float:
    gaps = [(when(b) - when(a)).total_seconds() for a, b in itertools.pairwise(stream)]
    return statistics.pstdev(gaps) / statistics.mean(gaps)


def test_same_seed_same_stream(events: list[Event]) -> None:
    assert list(Simulation(SMALL).events()) == events


def test_repeated_iteration_is_identical(simulation: Simulation, events: list[Event]) -> None:
    assert list(simulation.events())[:500] == events[:500]


def test_other_seed_other_stream(events: list[Event]) -> None:
    other = Simulation(SimulationConfig(users=50, days=1.0, seed=12, items=50))
    first = next(other.events())
    assert first["messageId"] not in {e["messageId"] for e in events}


def test_batches_concatenate_to_the_stream(simulation: Simulation, events: list[Event]) -> None:
    batches = list(simulation.batches(size=97))
    assert all(1 <= len(batch) <= 97 for batch in batches)
    assert [e for batch in batches for e in batch] == events


def test_estimate_is_close(simulation: Simulation, events: list[Event]) -> None:
    assert 0.7 < simulation.estimated_events() / len(events) < 1.3


def test_events_are_in_time_order_within_the_span(events: list[Event]) -> None:
    times = [when(e) for e in events]
    assert times == sorted(times)
    assert times[0] >= SMALL.start
    assert times[-1] < SMALL.start + timedelta(days=SMALL.days, hours=6)


def test_every_event_has_the_segment_shape(events: list[Event]) -> None:
    message_ids = [e["messageId"] for e in events]
    assert len(set(message_ids)) == len(message_ids)
    for event in events:
        assert event["type"] in {"page", "track", "identify"}
        assert uuid.UUID(event["messageId"]).version == 4
        assert event["timestamp"].endswith("Z")
        assert when(event).tzinfo is not None
        assert event.get("userId") or event.get("anonymousId")
        if event["type"] == "track":
            assert event["event"]
            assert isinstance(event["properties"], dict)
        elif event["type"] == "page":
            assert event["name"]
            assert event["properties"]["path"] == event["context"]["page"]["path"]
        else:
            assert event["userId"]
            assert event["traits"]["email"].endswith("@example.com")
        context = event["context"]
        assert context["ip"].count(".") == 3
        assert context["userAgent"]
        assert set(context["page"]) == {"path", "url", "referrer", "title"}
        assert context["library"] == {"name": "usertide-demo", "version": "1"}
        assert context["locale"]


def test_the_labels_stay_out_of_the_events(events: list[Event]) -> None:
    for event in events:
        text = repr(event.get("properties", {})).lower()
        assert "takeover" not in text
        assert "bot" not in text


def test_product_popularity_is_skewed(events: list[Event]) -> None:
    views = Counter(e["properties"]["product_id"] for e in tracks(events, "Product Viewed"))
    top = sum(count for _, count in views.most_common(SMALL.items // 10))
    assert top / sum(views.values()) > 0.4


def test_human_sessions_have_realistic_length_and_dwell(
    simulation: Simulation, events: list[Event]
) -> None:
    sessions = human_sessions(events, simulation.ground_truth)
    page_counts = [sum(e["type"] == "page" for e in session) for session in sessions]
    assert 2 <= statistics.median(page_counts) <= 8
    assert max(page_counts) >= 15  # the long tail
    dwell = []
    for session in sessions:
        pages = [when(e) for e in session if e["type"] == "page"]
        dwell += [(b - a).total_seconds() for a, b in itertools.pairwise(pages)]
    assert 10 <= statistics.median(dwell) <= 60


def test_bots_are_far_more_regular_than_humans(simulation: Simulation, events: list[Event]) -> None:
    truth = simulation.ground_truth
    assert truth.bot_anonymous_ids
    bot_streams: dict[str, list[Event]] = defaultdict(list)
    for event in events:
        if event["anonymousId"] in truth.bot_anonymous_ids:
            bot_streams[event["anonymousId"]].append(event)
    assert set(bot_streams) == truth.bot_anonymous_ids
    datacenter = {n.country for n in DATACENTER_NETWORKS}
    for stream in bot_streams.values():
        assert stream[0]["context"]["userAgent"] in BOT_USER_AGENTS
        network = network_of_ip(stream[0]["context"]["ip"])
        assert network in DATACENTER_NETWORKS
        assert network.country in datacenter
        assert len({e["context"]["page"]["path"] for e in stream}) >= 20
    bot_cv = statistics.median(gap_cv(s) for s in bot_streams.values())
    humans = [s for s in human_sessions(events, truth) if len(s) >= 6]
    human_cv = statistics.median(gap_cv(s) for s in humans)
    assert bot_cv < 0.1
    assert human_cv > 0.5


def test_funnel_narrows_at_every_step(events: list[Event]) -> None:
    steps = ["Product Viewed", "Product Added", "Checkout Started", "Order Completed"]
    counts = [len(tracks(events, step)) for step in steps]
    assert counts[0] > counts[1] > counts[2] > counts[3] > 0
    assert 0.03 < counts[1] / counts[0] < 0.15


def test_signins_come_from_the_users_usual_network(
    simulation: Simulation, events: list[Event]
) -> None:
    takeover_ids = _takeover_ids(simulation.ground_truth)
    prefixes: dict[str, set[str]] = defaultdict(set)
    for login in tracks(events, "login"):
        assert login["userId"]
        if login["properties"]["success"] and login["messageId"] not in takeover_ids:
            prefixes[login["userId"]].add(login["context"]["ip"].rsplit(".", 1)[0])
    assert prefixes
    assert all(len(seen) == 1 for seen in prefixes.values())
    assert any(not login["properties"]["success"] for login in tracks(events, "login"))
    identified = Counter(e["userId"] for e in events if e["type"] == "identify")
    assert identified
    assert max(identified.values()) == 1


def test_takeovers_sign_in_from_abroad(simulation: Simulation, events: list[Event]) -> None:
    truth = simulation.ground_truth
    assert len(truth.takeovers) == SMALL.takeovers
    by_id = {e["messageId"]: e for e in events}
    for takeover in truth.takeovers:
        login = by_id[takeover.message_id]
        assert login["event"] == "login"
        assert login["properties"]["success"] is True
        assert login["userId"] == takeover.user_id
        assert login["context"]["ip"] == takeover.ip
        assert login["context"]["userAgent"] == takeover.user_agent
        assert when(login) == takeover.timestamp
        attacker = network_of_ip(takeover.ip)
        assert attacker is not None
        assert attacker.country == takeover.country
        earlier = [
            e
            for e in tracks(events, "login")
            if e["userId"] == takeover.user_id
            and e["properties"]["success"]
            and when(e) < takeover.timestamp
        ]
        # an established account: the risk model trusts a profile by its history
        assert len(earlier) >= VICTIM_HISTORY
        home = network_of_ip(earlier[0]["context"]["ip"])
        assert home is not None
        assert home.country != takeover.country
        assert earlier[0]["context"]["userAgent"] != takeover.user_agent
        assert takeover.description


def test_returning_users_come_back_on_other_days(events: list[Event]) -> None:
    days: dict[str, set[str]] = defaultdict(set)
    for event in events:
        days[event.get("userId") or event["anonymousId"]].add(event["timestamp"][:10])
    returning = sum(len(seen) >= 2 for seen in days.values())
    assert returning >= SMALL.users // 10


def test_naive_start_is_taken_as_utc() -> None:
    config = SimulationConfig(users=20, days=0.5, items=30, start=datetime(2026, 1, 1))
    first = next(Simulation(config).events())
    assert when(first) >= datetime(2026, 1, 1, tzinfo=UTC)


def test_the_risk_model_flags_every_planted_takeover(
    simulation: Simulation, events: list[Event]
) -> None:
    """What the demo shows, without a server: the simulated stream through the
    collector's normalization and enrichment and the service's engine."""
    from usertide.capture.base import CaptureRequest
    from usertide.capture.segment import normalize_item
    from usertide.engine import Engine
    from usertide.engine.base import Detection
    from usertide.enrich import build_enrichers
    from usertide.risk import LoginRisk, NetworkVelocity
    from usertide.service import build_processors

    engine = Engine(build_processors(NetworkVelocity(), LoginRisk()))
    enrichers = build_enrichers()
    request = CaptureRequest(endpoint="batch", received_at=datetime.now(UTC))
    flagged: dict[str, str] = {}
    for offset, item in enumerate(events, start=1):
        event = normalize_item(item, request, {}, None, None)
        enrichers.enrich(event)
        event.offset = offset
        for output in engine.apply(event):
            if isinstance(output, Detection) and output.detector == "login_risk":
                flagged[output.event_id] = output.level
    for takeover in simulation.ground_truth.takeovers:
        assert flagged.get(takeover.message_id) in ("medium", "high"), takeover.description
    logins = [e for e in tracks(events, "login") if e["properties"]["success"]]
    takeovers = _takeover_ids(simulation.ground_truth)
    false_alarms = [
        e for e in logins if e["messageId"] in flagged and e["messageId"] not in takeovers
    ]
    assert len(false_alarms) <= 0.02 * len(logins)
