"""The typed fast path gives exactly the events the generic path gives, or defers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
from hypothesis import given, settings
from hypothesis import strategies as st

from usertide.capture import CaptureRequest, SegmentProtocol
from usertide.capture.segment_typed import parse_typed
from usertide.demo import Simulation, SimulationConfig

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
P = SegmentProtocol()


def both(body: dict[str, Any], **kw: Any) -> tuple[Any, Any]:
    raw = msgspec.json.encode(body)
    request = CaptureRequest(
        endpoint="batch", received_at=NOW, client_ip="203.0.113.1", body_bytes=len(raw), **kw
    )
    return parse_typed(raw, request), P.parse(msgspec.json.decode(raw), request)


def test_simulated_traffic_takes_the_fast_path_identically() -> None:
    sim = Simulation(SimulationConfig(users=40, days=0.5, start=NOW - timedelta(days=1)))
    for batch in sim.batches(50):
        fast, generic = both({"batch": batch, "sentAt": NOW.isoformat()})
        assert fast is not None
        assert fast.events == generic.events


texts = st.text(max_size=6)
maybe = st.none() | texts
items = st.fixed_dictionaries(
    {
        "type": st.sampled_from(["track", "page", "screen", "identify", "alias", "group"]),
        "messageId": st.uuids().map(str),
    },
    optional={
        "event": maybe,
        "name": maybe,
        "userId": maybe | st.just("  "),
        "anonymousId": maybe,
        "previousId": maybe,
        "groupId": maybe,
        "timestamp": st.datetimes(
            min_value=datetime(2020, 1, 1), max_value=datetime(2026, 11, 1)
        ).map(lambda d: d.isoformat() + "Z"),
        "properties": st.dictionaries(
            st.sampled_from(["url", "path", "title", "session_id", "x"]),
            st.none() | texts | st.integers(),
            max_size=3,
        ),
        "traits": st.dictionaries(texts, texts, max_size=2),
        "context": st.fixed_dictionaries(
            {},
            optional={
                "ip": maybe,
                "userAgent": maybe,
                "locale": maybe,
                "sessionId": maybe,
                "page": st.fixed_dictionaries(
                    {}, optional={"url": maybe, "path": maybe, "title": maybe}
                ),
                "library": st.fixed_dictionaries({}, optional={"name": maybe}),
                "traits": st.dictionaries(texts, texts, max_size=2),
            },
        ),
    },
)


@settings(max_examples=300)
@given(st.lists(items, min_size=1, max_size=4))
def test_fast_path_matches_or_defers(batch: list[dict[str, Any]]) -> None:
    fast, generic = both({"batch": batch})
    if fast is not None:
        assert not generic.failed
        assert fast.events == generic.events


def test_oversized_items_defer_to_the_generic_path() -> None:
    batch = [{"type": "track", "event": "e", "userId": "u", "properties": {"x": "y" * 40_000}}]
    fast, generic = both({"batch": batch})
    assert fast is None and len(generic.failed) == 1
