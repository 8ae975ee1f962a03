"""The live path against the offline one: a session file replayed through the HTTP API.

The training events go in as ``Product Viewed`` events (one anonymous visitor per
session, the file's session id as the client's session id, the file's times); then each
test session, as ``usertide eval recommend`` prepares it (items unseen in training and
sessions left shorter than two dropped), one event at a time: after each event but the
last, ``GET /v1/recommendations`` asks for the top 20 of the session so far (the raw
ranking: ``exclude_session=false``) and the next item's rank is kept. The service learns
every event as it comes, which is what ``usertide eval recommend --online`` does, so the
two give the same HR@20 (``tests/evaluation/test_recommend_replay.py`` checks it on a
small file; ``benchmarks/bench_recommend.py`` on yoochoose).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import httpx

from usertide.capture.timestamps import parse_time
from usertide.evaluation.recommend_data import Event, Session, prepare_test
from usertide.evaluation.recommend_eval import LIST_LENGTH

BATCH = 500


def wire_time(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).isoformat()


def as_sent(events: Sequence[Event]) -> list[Event]:
    """The events with their times as the service reads them back from the wire (ISO
    8601 to the microsecond): what the offline evaluation must use to be compared with
    the replay exactly (time-aware recommenders weigh sessions by their age)."""
    out = []
    for session_id, item, t in events:
        parsed = parse_time(wire_time(t), "timestamp")
        assert parsed is not None
        out.append((session_id, item, parsed.timestamp()))
    return out


def _event(session_id: str, item: str, t: float, n: int) -> dict[str, Any]:
    return {
        "type": "track",
        "event": "Product Viewed",
        "anonymousId": f"s{session_id}",
        "messageId": f"replay-{session_id}-{n}",
        "timestamp": wire_time(t),
        "context": {"sessionId": session_id},
        "properties": {"product_id": item},
    }


class Replay:
    """Ranks of every prediction point, and how long the requests took."""

    def __init__(self) -> None:
        self.ranks: list[int] = []
        self.seconds: list[float] = []

    def hit_rate(self, k: int = LIST_LENGTH) -> float:
        return sum(1 for r in self.ranks if 0 < r <= k) / max(1, len(self.ranks))

    def mrr(self, k: int = LIST_LENGTH) -> float:
        return sum(1 / r for r in self.ranks if 0 < r <= k) / max(1, len(self.ranks))


def replay(
    client: httpx.Client,
    write: httpx.Auth,
    admin_key: str,
    train: Sequence[Event],
    test: Sequence[Session],
    recommender: str | None = None,
) -> Replay:
    """Send ``train``, then ``test`` event by event, asking after each (see above). The
    events go with the write key; the questions with the admin key (the write key's
    scope is rate-limited per address, for pages)."""
    admin = {"Authorization": f"Bearer {admin_key}"}
    known = {item for _, item, _ in train}
    events = [_event(s, i, t, n) for n, (s, i, t) in enumerate(train)]
    for start in range(0, len(events), BATCH):
        _ok(client.post("/v1/batch", json={"batch": events[start : start + BATCH]}, auth=write))
    out = Replay()
    params: dict[str, Any] = {"n": LIST_LENGTH, "exclude_session": "false"}
    if recommender is not None:
        params["recommender"] = recommender
    for session in prepare_test(test, known).sessions:
        visitor = f"s{session.session_id}"
        pairs = list(zip(session.items, session.times, strict=True))
        for position, (item, t) in enumerate(pairs):
            if position:
                began = time.perf_counter()
                answer = _ok(
                    client.get(
                        "/v1/recommendations",
                        params={**params, "anonymous_id": visitor},
                        headers=admin,
                    )
                ).json()
                out.seconds.append(time.perf_counter() - began)
                listed = [i["item_id"] for i in answer["items"]]
                out.ranks.append(listed.index(item) + 1 if item in listed else 0)
            one = _event(session.session_id, item, t, len(events) + position)
            one["messageId"] = f"replay-test-{session.session_id}-{position}"
            _ok(client.post("/v1/track", json=one, auth=write))
    return out


def _ok(response: httpx.Response) -> httpx.Response:
    if response.status_code != 200:
        raise RuntimeError(f"{response.request.url}: {response.status_code} {response.text}")
    return response
