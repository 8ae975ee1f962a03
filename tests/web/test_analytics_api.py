"""The analytics API over HTTP: trends, funnels and the people of a funnel step."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from livesupport import Live

NOW = datetime.now(UTC).replace(microsecond=0)
RANGE = {
    "from": (NOW - timedelta(days=1)).isoformat(),
    "to": (NOW + timedelta(hours=1)).isoformat(),
}
STEPS = [{"event": "view"}, {"event": "cart"}, {"event": "buy"}]


def _shop(live: Live) -> None:
    items: list[dict[str, Any]] = []
    for i in range(12):
        user = f"user-{i:02d}"
        names = ["view", "cart", "buy"][: 1 + i % 3]
        for k, name in enumerate(names):
            at = NOW - timedelta(hours=2) + timedelta(minutes=i * 5 + k)
            items.append(
                {
                    "type": "track",
                    "event": name,
                    "userId": user,
                    "timestamp": at.isoformat(),
                    "properties": {"plan": "pro" if i < 6 else "free", "revenue": 10 * k},
                }
            )
    r = live.client.post("/v1/batch", json={"batch": items}, headers=live.write)
    assert r.status_code == 200, r.text


@pytest.mark.parametrize("path", ["/v1/trends", "/v1/funnels", "/v1/funnels/users"])
def test_admin_key_is_required(live: Live, path: str) -> None:
    assert live.client.post(path, json={}).status_code == 401
    assert live.client.post(path, json={}, headers=live.write).status_code == 401


def test_funnel_counts_people_and_gives_posteriors(live: Live) -> None:
    _shop(live)  # no settle: the query itself waits for what was acknowledged
    r = live.client.post(
        "/v1/funnels",
        json={"steps": STEPS, "window": "1h", **RANGE, "breakdown": "properties.plan"},
        headers=live.admin,
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert [s["users"] for s in body["steps"]] == [12, 8, 4]
    assert [s["dropped"] for s in body["steps"]] == [0, 4, 4]
    cart = body["steps"][1]["conversion"]
    assert cart["from_previous"] == pytest.approx(8 / 12)
    assert cart["posterior"]["low"] < cart["posterior"]["mean"] < cart["posterior"]["high"]
    assert body["overall"]["users"] == 4
    values = {b["value"]: b for b in body["breakdown"]}
    assert set(values) == {"pro", "free"}
    assert sum(b["probability_best"] for b in body["breakdown"]) == pytest.approx(1.0)


def test_people_who_dropped_are_paginated(live: Live) -> None:
    _shop(live)
    seen: list[str] = []
    cursor = None
    while True:
        r = live.client.post(
            "/v1/funnels/users",
            json={
                "steps": STEPS,
                **RANGE,
                "step": 2,
                "status": "dropped",
                "limit": 3,
                "cursor": cursor,
            },
            headers=live.admin,
        )
        assert r.status_code == 200, r.text
        seen += [u["user_id"] for u in r.json()["users"]]
        cursor = r.json()["next_cursor"]
        if cursor is None:
            break
    assert seen == [f"user-{i:02d}" for i in range(0, 12, 3)]


def test_trend_sums_a_property_per_hour(live: Live) -> None:
    _shop(live)
    r = live.client.post(
        "/v1/trends",
        json={
            "events": ["cart", "buy"],
            "interval": "hour",
            "measure": {"sum": "properties.revenue"},
            **RANGE,
        },
        headers=live.admin,
    )
    assert r.status_code == 200, r.text
    totals = {s["event"]: s["total"] for s in r.json()["series"]}
    assert totals == {"cart": 80, "buy": 80}


@pytest.mark.parametrize(
    ("path", "body", "names"),
    [
        ("/v1/trends", {"events": ["a"], "interval": "year"}, "'interval'"),
        ("/v1/funnels", {"steps": [{"event": "a"}]}, "'steps'"),
        ("/v1/funnels", {"steps": STEPS, "window": "forever"}, "'window'"),
        ("/v1/funnels/users", {"steps": STEPS, "step": 9}, "'step'"),
        ("/v1/funnels/users", {"steps": STEPS, "status": "gone"}, "'status'"),
    ],
)
def test_bad_queries_are_400s_naming_the_field(
    live: Live, path: str, body: dict[str, Any], names: str
) -> None:
    r = live.client.post(path, json={**RANGE, **body}, headers=live.admin)
    assert r.status_code == 400
    assert (
        r.json()["error"]["code"] == "invalid_parameter" and names in r.json()["error"]["message"]
    )
    r = live.client.post(path, content=b"{not json", headers=live.admin)
    assert r.status_code == 400 and r.json()["error"]["code"] == "malformed_json"
