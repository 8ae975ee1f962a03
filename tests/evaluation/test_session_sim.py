from __future__ import annotations

import itertools
import json
import statistics
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import msgspec
import pytest

from usertide.capture import CaptureRequest, SegmentProtocol
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


def test_deterministic_for_a_seed(sim: Simulated) -> None:
    again = simulate(SessionSimConfig(seed=7, humans=HUMANS, bot_share=SHARES, start=START))
    assert again.events == sim.events and again.truth == sim.truth
    other = simulate(SessionSimConfig(seed=8, humans=200, bot_share=SHARES, start=START))
    assert other.events[0]["messageId"] != sim.events[0]["messageId"]


def test_every_bot_type_has_its_share(sim: Simulated) -> None:
    labels = list(sim.truth.values())
    assert labels.count("human") == HUMANS
    for kind in BOT_TYPES:
        assert labels.count(kind) / len(labels) == pytest.approx(0.03, abs=0.002)
    assert bot_counts(940, {"scraper": 0.06}) == {
        **dict.fromkeys(BOT_TYPES, 0),
        "scraper": 60,
    }
    with pytest.raises(ValueError):
        bot_counts(10, dict.fromkeys(BOT_TYPES, 0.2))


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
    for kind in ("scraper", "fake_browser"):
        assert max(cvs[kind]) < 0.1 < human / 3
    for kind in BOT_TYPES:
        assert cvs[kind] or kind == "credential_stuffing", kind  # it only opens /login


def test_credential_stuffing_fails_many_logins(sim: Simulated) -> None:
    outcomes: list[bool] = []
    for key, events in _by_session(sim).items():
        logins = [e for e in events if e.get("event") == "login"]
        if sim.truth[key] == "credential_stuffing":
            failed = [e for e in logins if e["properties"]["success"] is False]
            assert len(failed) >= 30
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
            assert max(_page_gaps(events)) <= 1500
        elif kind == "fake_browser":
            assert "Chrome/" in agent and "Headless" not in agent
            assert all(p["context"]["page"]["referrer"] == "" for p in pages)
        elif kind == "scraper":
            assert all(p["context"]["page"]["referrer"] == "" for p in pages)
        elif kind == "low_and_slow":
            span = _ms(events[-1]["timestamp"]) - _ms(events[0]["timestamp"])
            assert span > 3_600_000 and len(pages) > 100
        elif kind == "click_fraud":
            assert len({p["context"]["page"]["path"] for p in pages}) <= 15 < len(pages)


def test_main_writes_events_and_truth(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "traffic.jsonl"
    assert main([str(out), "--seed", "3", "--humans", "60"]) == 0
    lines = out.read_text().splitlines()
    truth = json.loads((tmp_path / "traffic.truth.json").read_text())
    assert {json.loads(line)["context"]["sessionId"] for line in lines} == set(truth)
    assert list(truth.values()).count("human") == 60
    assert "events" in capsys.readouterr().out
