from __future__ import annotations

import itertools
import json
import statistics
from collections import Counter, defaultdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import msgspec
import pytest

from usertide.capture import CaptureRequest, SegmentProtocol
from usertide.demo.population import (
    ATTACKER_NETWORKS,
    DATACENTER_NETWORKS,
    HOME_NETWORKS,
    network_of_ip,
)
from usertide.evaluation.session_sim import (
    BOT_TYPES,
    SessionSimConfig,
    Simulated,
    bot_counts,
    default_data_path,
    main,
    read_sessions,
    simulate,
)

DATA = default_data_path()
pytestmark = pytest.mark.skipif(
    not DATA.exists(), reason="the shared yoochoose sample is not here (USERTIDE_SHARED_DATA)"
)
HUMANS = 1500
# A bigger share than the default so that every type has enough sessions to measure.
SHARES = dict.fromkeys(BOT_TYPES, 0.03)
START = datetime(2025, 3, 3, tzinfo=UTC)


@pytest.fixture(scope="module")
def sim() -> Simulated:
    return simulate(SessionSimConfig(seed=7, humans=HUMANS, bot_share=SHARES, start=START))


def _by_session(sim: Simulated) -> dict[str, list[dict[str, Any]]]:
    sessions: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for event in sim.events:
        sessions[event["context"]["sessionId"]].append(event)
    return sessions


def _ms(stamp: str) -> int:
    return round(datetime.fromisoformat(stamp).timestamp() * 1000)


def _page_gaps(events: list[dict[str, Any]]) -> list[int]:
    times = [_ms(e["timestamp"]) for e in events if e["type"] == "page"]
    return [b - a for a, b in itertools.pairwise(times)]


def _cv(gaps: list[int]) -> float:
    return statistics.pstdev(gaps) / statistics.mean(gaps)


def _rate(events: list[dict[str, Any]]) -> float:
    """Events per minute over the session, a session under a minute counting as one (as
    the service's session_clicks_per_minute)."""
    span = _ms(events[-1]["timestamp"]) - _ms(events[0]["timestamp"])
    return len(events) / max(span / 60_000, 1.0)


def _pages(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [e for e in events if e["type"] == "page"]


def test_deterministic_for_a_seed(sim: Simulated) -> None:
    again = simulate(SessionSimConfig(seed=7, humans=HUMANS, bot_share=SHARES, start=START))
    assert again.events == sim.events and again.truth == sim.truth
    assert again.evasive == sim.evasive
    other = simulate(SessionSimConfig(seed=8, humans=200, bot_share=SHARES, start=START))
    assert other.events[0]["messageId"] != sim.events[0]["messageId"]


def test_every_bot_type_has_its_share(sim: Simulated) -> None:
    labels = list(sim.truth.values())
    assert labels.count("human") == HUMANS
    for kind in BOT_TYPES:
        assert labels.count(kind) / len(labels) == pytest.approx(0.03, abs=0.002)
        evasive = sum(sim.truth[k] == kind for k in sim.evasive)
        if kind == "low_and_slow":
            assert evasive == 0  # evasive low-and-slow would be a human by construction
        else:
            assert evasive == round(labels.count(kind) / 2)
    assert sim.evasive <= {k for k, label in sim.truth.items() if label != "human"}
    assert bot_counts(940, {"scraper": 0.06}) == {
        **dict.fromkeys(BOT_TYPES, 0),
        "scraper": 60,
    }
    with pytest.raises(ValueError):
        bot_counts(10, dict.fromkeys(BOT_TYPES, 0.2))
    with pytest.raises(ValueError):
        simulate(SessionSimConfig(humans=20, evasive_share={"scraper": 1.5}))


def test_evasive_share_decides_how_many_sessions_are_evasive() -> None:
    none = dict.fromkeys(BOT_TYPES, 0.0)
    plain = simulate(SessionSimConfig(humans=300, bot_share=SHARES, evasive_share=none))
    assert plain.evasive == set()
    every = simulate(
        SessionSimConfig(humans=300, bot_share=SHARES, evasive_share=dict.fromkeys(BOT_TYPES, 1))
    )
    assert every.evasive == {k for k, label in every.truth.items() if label != "human"}


def test_events_are_time_ordered_and_every_session_labelled(sim: Simulated) -> None:
    times = [_ms(e["timestamp"]) for e in sim.events]
    assert times == sorted(times) and times[0] == _ms("2025-03-03T00:00:00.000Z")
    assert set(_by_session(sim)) == set(sim.truth)
    assert len({e["messageId"] for e in sim.events}) == len(sim.events)


def test_humans_keep_yoochoose_order_and_gaps(sim: Simulated) -> None:
    clicks = read_sessions(DATA)[:HUMANS]
    expected = sorted(
        (
            [item for item, _ in s],
            [round((b - a) * 1000) for (_, a), (_, b) in itertools.pairwise(s)],
        )
        for s in clicks
    )
    humans = [e for k, e in _by_session(sim).items() if sim.truth[k] == "human"]
    actual = sorted(
        (
            [e["properties"]["path"].removeprefix("/p/") for e in events if e["type"] == "page"],
            _page_gaps(events),
        )
        for events in humans
    )
    assert len(actual) == len(expected)
    for (items, gaps), (want_items, want_gaps) in zip(actual, expected, strict=True):
        assert items == want_items
        assert all(abs(g - w) <= 1 for g, w in zip(gaps, want_gaps, strict=True))
    # Returning visitors: fewer visitors than sessions, but most sessions are new ones.
    visitors = {events[0]["anonymousId"] for events in humans}
    assert 0.75 * HUMANS < len(visitors) < HUMANS


def test_events_parse_without_failures(sim: Simulated) -> None:
    protocol = SegmentProtocol()
    encoder = msgspec.json.Encoder()
    request = CaptureRequest(endpoint="batch", received_at=datetime.now(UTC))
    parsed = 0
    for offset in range(0, len(sim.events), 500):
        body = encoder.encode({"batch": sim.events[offset : offset + 500]})
        batch = protocol.parse_bytes(body, request)
        assert batch is not None, "the simulated events take the typed fast path"
        assert batch.failed == [] and batch.errors == []
        parsed += len(batch.events)
    assert parsed == len(sim.events)
    first = protocol.parse_bytes(encoder.encode({"batch": sim.events[:1]}), request)
    assert first is not None and first.events[0].session_id is not None


def test_scraper_gaps_are_regular(sim: Simulated) -> None:
    sessions = _by_session(sim)
    cvs: dict[str, list[float]] = defaultdict(list)
    for key, events in sessions.items():
        gaps = _page_gaps(events)
        if len(gaps) >= 3 and statistics.mean(gaps) > 0:
            cvs[sim.truth[key]].append(_cv(gaps))
    human = statistics.median(cvs["human"])
    for kind in ("scraper", "fake_browser"):  # evasive ones too: slower, as regular
        assert max(cvs[kind]) < 0.1 < human / 3
    for kind in BOT_TYPES:
        assert cvs[kind], kind


def test_credential_stuffing_fails_many_logins(sim: Simulated) -> None:
    outcomes: list[bool] = []
    for key, events in _by_session(sim).items():
        logins = [e for e in events if e.get("event") == "login"]
        if sim.truth[key] == "credential_stuffing":
            failed = [e for e in logins if e["properties"]["success"] is False]
            pages = _pages(events)
            if key in sim.evasive:  # a few attempts per session, two sign-in page views
                assert 2 <= len(logins) <= 10 and len(failed) >= len(logins) - 2
                assert len(pages) == 2
            else:
                assert len(failed) >= 30 and 2 <= len(pages) <= 20
            assert {p["context"]["page"]["path"] for p in pages} == {"/login"}
            outcomes.extend(e["properties"]["success"] for e in logins)
            assert len({e["context"]["ip"] for e in events}) == 1
        else:
            assert not logins
    assert sum(outcomes) < 0.05 * len(outcomes)  # a stolen list rarely matches here


def test_bot_signatures(sim: Simulated) -> None:
    sessions = _by_session(sim)
    for key, events in sessions.items():
        kind, agent = sim.truth[key], events[0]["context"]["userAgent"]
        pages = [e for e in events if e["type"] == "page"]
        if kind == "headless":
            assert "Headless" in agent or "PhantomJS" in agent
            assert max(_page_gaps(events)) <= (20_000 if key in sim.evasive else 1500)
        elif kind == "fake_browser":
            assert "Chrome/" in agent and "Headless" not in agent
            assert all(p["context"]["page"]["referrer"] == "" for p in pages)
        elif kind == "scraper":
            assert all(p["context"]["page"]["referrer"] == "" for p in pages)
        elif kind == "low_and_slow":
            span = _ms(events[-1]["timestamp"]) - _ms(events[0]["timestamp"])
            assert span > 3_600_000 and len(pages) > 100
        elif kind == "click_fraud":
            distinct = len({p["context"]["page"]["path"] for p in pages})
            assert distinct <= 15 and (key in sim.evasive or distinct < len(pages))
            ads = [e for e in events if e.get("event") == "Ad Clicked"]
            assert len(ads) == len(pages)
            assert all("googleadservices" in p["context"]["page"]["referrer"] for p in pages)


def test_evasive_sessions_look_human_by_volume(sim: Simulated) -> None:
    sessions = _by_session(sim)
    humans = [events for key, events in sessions.items() if sim.truth[key] == "human"]
    human_pages = [len(_pages(events)) for events in humans]
    most_rate = max(_rate(events) for events in humans)
    visitors = Counter(events[0]["anonymousId"] for events in sessions.values())
    for key in sim.evasive:
        events = sessions[key]
        assert min(human_pages) <= len(_pages(events)) <= max(human_pages), sim.truth[key]
        assert _rate(events) <= most_rate, sim.truth[key]
        # A new session id and visitor every part: no visitor id spans two sessions.
        assert visitors[events[0]["anonymousId"]] == 1
        assert len({e["anonymousId"] for e in events}) == 1


def test_evasive_bots_keep_their_signature(sim: Simulated) -> None:
    sessions = _by_session(sim)
    networks = {
        "scraper": DATACENTER_NETWORKS,
        "fake_browser": DATACENTER_NETWORKS,
        "credential_stuffing": DATACENTER_NETWORKS,
        "headless": DATACENTER_NETWORKS,
        "click_fraud": ATTACKER_NETWORKS,
        "low_and_slow": HOME_NETWORKS,
    }
    addresses: dict[str, set[str]] = defaultdict(set)
    for key, events in sessions.items():
        kind = sim.truth[key]
        if kind == "human":
            continue
        assert network_of_ip(events[0]["context"]["ip"]) in networks[kind], kind
        if key not in sim.evasive:
            continue
        addresses[kind].add(events[0]["context"]["ip"])
        agent = events[0]["context"]["userAgent"]
        if kind in ("scraper", "fake_browser", "credential_stuffing"):
            assert all(e["event"] != "Product Viewed" for e in events if e["type"] == "track")
        if kind == "scraper":
            assert any(name in agent for name in ("python-requests", "Scrapy", "Bot/1.0"))
        if kind == "fake_browser":
            assert "Chrome/" in agent and "Headless" not in agent
    for kind, seen in addresses.items():  # the address rotates with the session
        assert len(seen) > 0.8 * sum(sim.truth[k] == kind for k in sim.evasive), kind


def test_main_writes_events_and_truth(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "traffic.jsonl"
    assert main([str(out), "--seed", "3", "--humans", "60"]) == 0
    lines = out.read_text().splitlines()
    truth = json.loads((tmp_path / "traffic.truth.json").read_text())
    assert {json.loads(line)["context"]["sessionId"] for line in lines} == set(truth)
    assert list(truth.values()).count("human") == 60
    assert "events" in capsys.readouterr().out
