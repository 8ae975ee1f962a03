"""The broadcaster without a server: who gets what, once, and who is dropped."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Callable
from datetime import UTC, datetime

from usertide.engine.base import Detection
from usertide.events import Event
from usertide.live import Broadcaster, StreamFilter, Subscription

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def event(offset: int, user: str | None = None, anon: str | None = None, name: str = "x") -> Event:
    return Event(
        id=f"e{offset}",
        type="track",
        name=name,
        user_id=user,
        anonymous_id=anon,
        timestamp=NOW,
        received_at=NOW,
        offset=offset,
    )


def detection(user_key: str) -> Detection:
    return Detection(detector="d", user_key=user_key, event_id="e", timestamp=0.0, score=1.0)


def kinds_and_ids(sub: Subscription) -> list[tuple[str, str]]:
    """(kind, the event's id or the finding's user) of each queued message."""
    out = []
    for frame in sub.frames:
        fields = dict(line.split(": ", 1) for line in frame.decode().strip().split("\n"))
        data = json.loads(fields["data"])
        out.append(
            (fields["event"], data["id"] if fields["event"] == "event" else data["user_key"])
        )
    return out


def run(
    publish: Callable[[Broadcaster], None], *filters: StreamFilter, capacity: int = 100
) -> list[Subscription]:
    """Subscribe on a loop, publish from another thread, let the hand-overs land."""

    async def main() -> list[Subscription]:
        b = Broadcaster(capacity=capacity)
        subs = [s for f in filters if (s := b.subscribe(f)) is not None]
        thread = threading.Thread(target=publish, args=(b,))
        thread.start()
        await asyncio.to_thread(thread.join)
        await asyncio.sleep(0)
        return subs

    return asyncio.run(main())


def test_filters_route_events_and_findings_once() -> None:
    def publish(b: Broadcaster) -> None:
        b.on_applied(
            [event(1, "jane", "jane"), event(2, None, "v7"), event(3, "bob", name="buy")],
            [detection("anon:v7"), detection("jane")],
        )

    everyone, jane, visitor, buys = run(
        publish,
        StreamFilter(),
        StreamFilter(user="jane"),
        StreamFilter(user="v7", kinds=frozenset({"event", "detection"})),
        StreamFilter(names=frozenset({"buy"}), kinds=frozenset({"event"})),
    )
    assert [k for k, _ in kinds_and_ids(everyone)] == ["event"] * 3 + ["detection"] * 2
    assert kinds_and_ids(jane) == [("event", "e1"), ("detection", "jane")]  # once, not twice
    assert kinds_and_ids(visitor) == [("event", "e2"), ("detection", "anon:v7")]
    assert kinds_and_ids(buys) == [("event", "e3")]


def test_events_shown_once_and_a_full_queue_drops_the_client() -> None:
    def publish(b: Broadcaster) -> None:
        b.on_applied([event(1), event(2)], [])
        b.on_applied([event(2), event(3)], [])  # taken twice at start: 2 is not shown again

    (sub,) = run(publish, StreamFilter(), capacity=3)
    assert [i for _, i in kinds_and_ids(sub)] == ["e1", "e2", "e3"] and sub.ended is None

    def overflow(b: Broadcaster) -> None:
        b.on_applied([event(i) for i in range(1, 5)], [])

    (sub,) = run(overflow, StreamFilter(), capacity=3)
    assert sub.ended == "dropped" and not sub.frames and sub.stopped.is_set()
