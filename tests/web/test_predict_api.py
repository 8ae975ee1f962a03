"""Predictions, sessions and the model registry over HTTP, on a real server."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest

from livesupport import Live
from sessiontraffic import traffic


def send(live: Live, events: list[dict[str, Any]]) -> None:
    for i in range(0, len(events), 500):
        r = live.client.post("/v1/batch", json={"batch": events[i : i + 500]}, headers=live.write)
        assert r.status_code == 200, r.text
    live.settle()
    live.service.runtime.checkpoint()  # sessions are written at checkpoints


def train(live: Live) -> dict[str, Any]:
    r = live.client.post("/v1/models/session_anomaly/train", headers=live.admin, timeout=60)
    assert r.status_code == 201, r.text
    body: dict[str, Any] = r.json()
    return body


def test_before_a_model_exists_predictions_say_so(live: Live) -> None:
    r = live.client.post("/predict_behavior", json={"clicks_per_minute": 3}, headers=live.write)
    assert r.status_code == 503 and r.json()["error"]["code"] == "model_unavailable"
    r = live.client.post("/v1/models/session_anomaly/train", headers=live.admin)
    assert r.status_code == 409 and r.json()["error"]["code"] == "not_enough_data"


@pytest.mark.parametrize("path", ["/predict_behavior", "/v1/predict/behavior"])
def test_predictions_need_a_key(live: Live, path: str) -> None:
    assert live.client.post(path, json={}).status_code == 401
    bad = {"Authorization": "Bearer nope"}
    assert live.client.post(path, json={}, headers=bad).status_code == 401


def test_train_predict_sessions_and_roll_back(live: Live) -> None:
    send(live, traffic())
    first = train(live)
    assert first["version"] == 1 and first["active"] and first["kind"] == "isolation_forest"
    assert first["rows"] >= 300 and first["features"][:1] == ["clicks_per_minute"]
    assert first["trained_from"] < first["trained_to"]

    # the original endpoint, with the write key and with the admin key
    normal = {"clicks_per_minute": 2, "pages_per_session": 4}
    for headers in (live.write, live.admin):
        r = live.client.post("/predict_behavior", json=normal, headers=headers)
        assert r.status_code == 200 and r.json() == {"behavior_prediction": "Normal"}
    # the original's two features alone go to the companion model fitted on them
    extreme = {"clicks_per_minute": 180, "pages_per_session": 500}
    r = live.client.post("/predict_behavior", json=extreme, headers=live.write)
    assert r.json() == {"behavior_prediction": "Anomaly"}
    r = live.client.post("/predict_behavior", json={"clicks_per_minute": "x"}, headers=live.write)
    assert r.status_code == 400 and "clicks_per_minute" in r.json()["error"]["message"]

    crawler = {
        "clicks_per_minute": 30, "page_views_per_minute": 30, "session_clicks_per_minute": 30,
        "pages_per_session": 150, "gap_cv": 0.0, "gap_mean_seconds": 2.0,
        "no_referrer_share": 1.0, "automation_agent": 1, "data_centre_network": 1,
        "distinct_pages_ratio": 1.0, "session_duration_seconds": 300,
    }  # fmt: skip
    r = live.client.post("/predict_behavior", json=crawler, headers=live.write)
    assert r.json() == {"behavior_prediction": "Anomaly"}
    r = live.client.post("/v1/predict/behavior", json=crawler, headers=live.admin)
    body = r.json()
    assert r.status_code == 200 and body["label"] == "Anomaly" and body["model_version"] == 1
    assert body["reasons"][0]["code"] == "abnormal_session"
    assert "purchases" in body["imputed"] and "gap_cv" not in body["imputed"]
    r = live.client.post("/v1/predict/behavior", json={"clicks": 1}, headers=live.admin)
    assert r.status_code == 400 and r.json()["error"]["code"] == "unknown_feature"
    r = live.client.post("/v1/predict/behavior", json={"gap_cv": True}, headers=live.admin)
    assert r.status_code == 400 and "'gap_cv'" in r.json()["error"]["message"]

    # sessions scored by v1: new traffic after the model is in force
    send(live, [dict(e, anonymousId="n" + e["anonymousId"], context={
        **e["context"], "sessionId": "n" + e["context"]["sessionId"]},
        timestamp=(datetime.fromisoformat(e["timestamp"]) + timedelta(hours=3)).isoformat())
        for e in traffic(seed=2)])  # fmt: skip
    r = live.client.get("/v1/sessions?order=score&limit=4", headers=live.admin)
    assert r.status_code == 200
    top = r.json()["sessions"]
    assert [s["session_id"] for s in top[:4]] and all(s["anomaly"] for s in top)
    assert {s["session_id"] for s in top} == {"nbs0", "nbs1", "nbs2", "nbs3"}
    bot = top[0]
    assert bot["anonymous_id"].startswith("nb") and bot["user_id"] is None
    assert bot["anomaly"]["label"] == "Anomaly" and bot["anomaly"]["model_version"] == 1
    assert bot["anomaly"]["reasons"][0]["code"] == "abnormal_session"
    assert bot["features"]["automation_agent"] == 1 and bot["events"] == 150
    mine = live.client.get("/v1/sessions?anonymous_id=nb0", headers=live.admin).json()
    assert [s["session_id"] for s in mine["sessions"]] == ["nbs0"]
    anomalies = live.client.get("/v1/sessions?label=Anomaly&limit=1000", headers=live.admin)
    assert {"nbs0", "nbs1"} <= {s["session_id"] for s in anomalies.json()["sessions"]}
    alerts = live.client.get("/v1/alerts", headers=live.admin).json()["alerts"]
    assert any(a["detector"] == "session_anomaly" for a in alerts)

    # pagination covers every session once
    seen: list[str] = []
    cursor = None
    while True:
        url = "/v1/sessions?limit=97" + (f"&cursor={cursor}" if cursor else "")
        page = live.client.get(url, headers=live.admin).json()
        seen += [s["session_id"] for s in page["sessions"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert (
        len(seen)
        == len(set(seen))
        == live.service.store.select("SELECT count(*) FROM sessions", [])[0][0]
    )

    # a second version, then back to the first
    second = train(live)
    assert second["version"] == 2
    listed = live.client.get("/v1/models", headers=live.admin).json()
    assert listed["active"]["session_anomaly"] == 2
    versions = [
        (m["version"], m["active"]) for m in listed["models"] if m["name"] == "session_anomaly"
    ]
    assert versions == [(2, True), (1, False)]
    basic = [m for m in listed["models"] if m["name"] == "session_anomaly_basic"]
    assert [m["version"] for m in basic] == [2, 1]
    assert basic[0]["features"] == ["clicks_per_minute", "pages_per_session"]
    r = live.client.post(
        "/v1/models/session_anomaly/activate", json={"version": 1}, headers=live.admin
    )
    assert r.status_code == 200 and r.json()["active"] and r.json()["version"] == 1
    assert live.service.session_trainer.models.version == 1
    r = live.client.post("/v1/predict/behavior", json=crawler, headers=live.admin)
    assert r.json()["model_version"] == 1


@pytest.mark.parametrize(
    ("body", "status"),
    [({"version": 9}, 404), ({"version": "1"}, 400), ({"version": 0}, 400), ({}, 400)],
)
def test_activate_refuses_what_is_not_stored(live: Live, body: dict[str, Any], status: int) -> None:
    r = live.client.post("/v1/models/session_anomaly/activate", json=body, headers=live.admin)
    assert r.status_code == status, r.text


def test_unknown_models_and_bad_session_filters(live: Live) -> None:
    r = live.client.post("/v1/models/nope/activate", json={"version": 1}, headers=live.admin)
    assert r.status_code == 404 and "session_anomaly" in r.json()["error"]["message"]
    for query in ("order=x", "label=bad", "min_score=2", "min_score=nan", "cursor=zz", "since=x"):
        r = live.client.get(f"/v1/sessions?{query}", headers=live.admin)
        assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_parameter", query
    assert live.client.get("/v1/sessions").status_code == 401
    assert live.client.get("/v1/models").status_code == 401
