"""Conversion propensity end to end on a real server: the tracker marks the sessions
that reach the goal, the model trains from finished sessions, live sessions carry their
probability, and POST /v1/predict/conversion answers for a visitor."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

from livesupport import Live

START = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)


def shoppers(n: int, seed: int, offset_hours: float = 0.0) -> list[dict[str, Any]]:
    """Visitors who browse; those who add to the cart mostly buy (the goal)."""
    rng = random.Random(seed)
    events: list[dict[str, Any]] = []
    for i in range(n):
        anon, sid = f"v{seed}-{i}", f"s{seed}-{i}"
        t = offset_hours * 3600 + rng.uniform(0, 3600)
        keen = rng.random() < 0.3

        steps: list[tuple[str, str | None]] = [("page", None)] * (
            rng.randint(1, 4) + (4 if keen else 0)
        )
        if keen:
            steps.append(("track", "Product Added"))
            if rng.random() < 0.8:
                steps.append(("track", "Order Completed"))
        for kind, name in steps:
            e: dict[str, Any] = {
                "type": kind,
                "anonymousId": anon,
                "timestamp": (START + timedelta(seconds=t)).isoformat(),
                "context": {"sessionId": sid, "page": {"path": f"/p/{rng.randint(1, 50)}"}},
            }
            if name:
                e["event"] = name
            events.append(e)
            t += rng.uniform(5, 60)
    events.sort(key=lambda e: e["timestamp"])
    return events


def send(live: Live, events: list[dict[str, Any]]) -> None:
    for i in range(0, len(events), 500):
        r = live.client.post("/v1/batch", json={"batch": events[i : i + 500]}, headers=live.write)
        assert r.status_code == 200, r.text
    live.settle()
    live.service.runtime.checkpoint()


def test_conversion_model_trains_and_scores_live_sessions(live: Live) -> None:
    r = live.client.post("/v1/predict/conversion", json={"anonymous_id": "x"}, headers=live.admin)
    assert r.status_code == 503
    send(live, shoppers(600, seed=1))
    # sessions an hour later finish the first ones (idle 30 min before the latest activity)
    send(live, shoppers(50, seed=2, offset_hours=3))
    r = live.client.post("/v1/models/conversion/train", headers=live.admin, timeout=60)
    assert r.status_code == 201, r.text
    model = r.json()
    assert model["kind"] == "hist_gradient_boosting" and model["rows"] >= 600
    assert model["features"][-2:] == ["sessions_before", "conversions_before"]

    later = shoppers(200, seed=3, offset_hours=6)
    send(live, later)
    sessions = live.client.get("/v1/sessions?limit=1000", headers=live.admin).json()["sessions"]
    scored = [s for s in sessions if s["session_id"].startswith("s3-")]
    assert scored and all(s["conversion"]["model_version"] == 1 for s in scored)
    buyers = [s["conversion"]["probability"] for s in scored if s["features"]["add_to_cart"]]
    browsers = [s["conversion"]["probability"] for s in scored if not s["features"]["add_to_cart"]]
    assert min(buyers) > max(browsers)  # adding to the cart is what predicts buying
    assert {s["conversion"]["converted"] for s in scored} == {True, False}
    assert all("inputs" not in s["conversion"] for s in scored)

    keen = next(s for s in scored if s["features"]["add_to_cart"])
    r = live.client.post(
        "/v1/predict/conversion", json={"anonymous_id": keen["anonymous_id"]}, headers=live.admin
    )
    body = r.json()
    assert r.status_code == 200 and body["model_version"] == 1
    assert body["goal"]["event"] == "Order Completed"
    assert abs(body["probability"] - keen["conversion"]["probability"]) < 1e-9
    r = live.client.post(
        "/v1/predict/conversion",
        json={"features": {"pages_per_session": 3}, "sessions_before": 1},
        headers=live.admin,
    )
    assert r.status_code == 200 and 0 <= r.json()["probability"] <= 1
    for bad in ({}, {"features": {"nope": 1}}, {"features": {"add_to_cart": "x"}}):
        r = live.client.post("/v1/predict/conversion", json=bad, headers=live.admin)
        assert r.status_code == 400, bad
    r = live.client.post(
        "/v1/predict/conversion", json={"anonymous_id": "nobody"}, headers=live.admin
    )
    assert r.status_code == 404
    assert (
        live.client.post("/v1/predict/conversion", json={}, headers=live.write).status_code == 401
    )
