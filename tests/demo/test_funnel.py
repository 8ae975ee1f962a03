"""The demo shop's funnel equals plain Python over the simulator's own events."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from livesupport import Live
from usertide.demo.funnel import STEPS, shop_funnel
from usertide.demo.simulator import Simulation, SimulationConfig


def _reference(events: list[dict[str, Any]], window_s: float) -> list[int]:
    """Per person (a user, or the user an anonymous id was seen with, or the visitor),
    from each view the earliest next step after it, within the window."""
    alias: dict[str, str] = {}
    for e in events:
        if e.get("userId") and e.get("anonymousId"):
            alias.setdefault(e["anonymousId"], e["userId"])
    by: dict[str, list[tuple[datetime, int, str]]] = {}
    for i, e in enumerate(events):
        if e.get("type") != "track":
            continue
        person = e.get("userId") or alias.get(e.get("anonymousId", ""), "anon:" + e["anonymousId"])
        when = datetime.fromisoformat(e["timestamp"].replace("Z", "+00:00"))
        by.setdefault(person, []).append((when, i, e["event"]))
    reached = [0] * len(STEPS)
    for rows in by.values():
        rows.sort()
        best = 0
        for a, first in enumerate(rows):
            if first[2] != STEPS[0]:
                continue
            depth, at = 1, a
            while depth < len(STEPS):
                nxt = next((x for x in range(at + 1, len(rows)) if rows[x][2] == STEPS[depth]), -1)
                if nxt < 0 or (rows[nxt][0] - first[0]).total_seconds() > window_s:
                    break
                depth, at = depth + 1, nxt
            best = max(best, depth)
        for k in range(best):
            reached[k] += 1
    return reached


def test_the_shop_funnel_matches_plain_python(live: Live) -> None:
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(days=2)
    sim = Simulation(SimulationConfig(users=150, days=2, seed=3, start=start))
    events = list(sim.events())
    for i in range(0, len(events), 500):  # in stream order: the log's order is the stream's
        r = live.client.post("/v1/batch", json={"batch": events[i : i + 500]}, headers=live.write)
        assert r.status_code == 200, r.text
    live.settle()
    live.service.runtime.checkpoint()  # the aliases table holds the merges
    report = shop_funnel(
        live.store, start - timedelta(days=1), datetime.now(UTC) + timedelta(hours=1)
    )
    users = [s["users"] for s in report["steps"]]
    assert users == _reference(events, 86400)
    assert users[-1] > 0, "the simulated shop sells something"
    # and an hourly trend of the order totals, against the same events
    trend = live.client.post(
        "/v1/trends",
        json={
            "events": ["Order Completed"],
            "measure": {"sum": "properties.total"},
            "interval": "hour",
            "from": (start - timedelta(days=1)).isoformat(),
            "to": (datetime.now(UTC) + timedelta(hours=1)).isoformat(),
        },
        headers=live.admin,
    ).json()["series"][0]
    revenue: dict[str, float] = {}
    for e in events:
        if e.get("event") == "Order Completed":
            hour = e["timestamp"][:13] + ":00:00Z"
            revenue[hour] = revenue.get(hour, 0.0) + e["properties"]["total"]
    got = {t: v for t, v in trend["points"] if v}
    assert got.keys() == revenue.keys()
    for hour, value in revenue.items():
        assert got[hour] == pytest.approx(value)
