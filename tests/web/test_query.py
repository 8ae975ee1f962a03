"""Query API: users, events, erasure, auth, health and metrics."""

from __future__ import annotations

from urllib.parse import quote

import pytest

from livesupport import Live


def send(live: Live, items: list[dict]) -> None:  # type: ignore[type-arg]
    r = live.client.post("/v1/batch", json={"batch": items}, headers=live.write)
    assert r.status_code == 200, r.text
    live.settle()


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/v1/users/jane"),
        ("DELETE", "/v1/users/jane"),
        ("GET", "/v1/events"),
        ("GET", "/v1/failed-events"),
        ("GET", "/metrics"),
    ],
)
def test_admin_key_is_required(live: Live, method: str, path: str) -> None:
    r = live.client.request(method, path)
    assert r.status_code == 401 and r.json()["error"]["code"] == "unauthorized"
    r = live.client.request(method, path, headers={"Authorization": "Bearer wrong"})
    assert r.status_code == 401
    r = live.client.request(method, path, headers=live.write)  # a write key is not enough
    assert r.status_code == 401


def test_user_profile_with_merged_anonymous_activity(live: Live) -> None:
    send(
        live,
        [
            {
                "type": "page",
                "anonymousId": "a1",
                "properties": {"path": "/"},
                "timestamp": "2026-11-20T10:00:00Z",
            },
            {
                "type": "identify",
                "anonymousId": "a1",
                "userId": "jane",
                "traits": {"email": "jane@example.com"},
                "timestamp": "2026-11-20T10:01:00Z",
            },
            {
                "type": "track",
                "event": "buy",
                "userId": "jane",
                "timestamp": "2026-11-20T10:02:00Z",
            },
        ],
    )
    r = live.client.get("/v1/users/jane", headers=live.admin)
    assert r.status_code == 200
    body = r.json()
    assert body["user_id"] == "jane"
    assert body["profile"]["events"] == 3
    assert body["profile"]["traits"] == {"email": "jane@example.com"}
    assert body["session"]["session_events"] == 3
    assert body["session"]["session_duration_seconds"] == 120
    assert body["features"]["gap_mean_seconds"] == 60
    # the anonymous id resolves to the same user
    assert live.client.get("/v1/users/a1", headers=live.admin).json()["user_id"] == "jane"
    events = live.client.get("/v1/events?user_id=jane", headers=live.admin).json()["events"]
    assert len(events) == 3
    assert live.client.get("/v1/users/nobody", headers=live.admin).status_code == 404


def test_events_filters_and_pagination(live: Live) -> None:
    send(
        live,
        [
            {
                "type": "track",
                "event": "e" if i % 2 else "f",
                "userId": f"u{i % 3}",
                "timestamp": f"2026-11-20T10:00:{i:02d}Z",
            }
            for i in range(30)
        ],
    )
    seen: list[str] = []
    cursor = None
    while True:
        url = "/v1/events?limit=7" + (f"&cursor={cursor}" if cursor else "")
        page = live.client.get(url, headers=live.admin).json()
        seen += [e["id"] for e in page["events"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert len(seen) == 30 and len(set(seen)) == 30
    r = live.client.get("/v1/events?name=e&user_id=u1", headers=live.admin).json()
    assert r["events"] and all(e["name"] == "e" and e["user_id"] == "u1" for e in r["events"])
    since = "/v1/events?since=2026-11-20T10:00:20Z&until=2026-11-20T10:00:25Z"
    assert len(live.client.get(since, headers=live.admin).json()["events"]) == 5
    r = live.client.get("/v1/events?limit=abc", headers=live.admin)
    assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_parameter"
    r = live.client.get("/v1/events?since=never", headers=live.admin)
    assert r.status_code == 400


def test_delete_user_erases_everything(live: Live) -> None:
    send(
        live,
        [
            {"type": "page", "anonymousId": "a1"},
            {"type": "identify", "anonymousId": "a1", "userId": "jane"},
            {"type": "track", "event": "x", "userId": "bob"},
        ],
    )
    live.client.post("/v1/track", json={"userId": "jane"}, headers=live.write)  # a failed one
    live.service.runtime.checkpoint()
    r = live.client.delete("/v1/users/jane", headers=live.admin)
    assert r.status_code == 200
    erased = r.json()["erased"]
    assert erased["events"] == 2 and erased["failed_events"] == 1 and erased["states"] == 1
    assert live.client.get("/v1/users/jane", headers=live.admin).status_code == 404
    assert live.client.get("/v1/users/a1", headers=live.admin).status_code == 404
    assert live.client.get("/v1/events?user_id=jane", headers=live.admin).json()["events"] == []
    assert live.client.get("/v1/users/bob", headers=live.admin).status_code == 200
    live.service.runtime.checkpoint()
    assert live.service.store.get_profile("jane") is None


def test_health_and_metrics(live: Live) -> None:
    assert live.client.get("/healthz").json() == {"status": "ok"}
    send(live, [{"type": "track", "event": "x", "userId": "bob"}])
    health = live.client.get("/healthz", headers=live.admin).json()
    assert health["engine"]["lag_events"] == 0 and health["log"]["offset"] == 1
    text = live.client.get("/metrics", headers=live.admin).text
    assert 'usertide_events_received_total{source="segment"} 1.0' in text
    assert "usertide_engine_lag_seconds_bucket" in text
    assert "usertide_request_seconds_bucket" in text


def test_openapi_and_snippet_are_served(live: Live) -> None:
    spec = live.client.get("/openapi.json").json()
    assert spec["openapi"].startswith("3.") and "/v1/batch" in spec["paths"]
    js = live.client.get("/usertide.js")
    assert js.status_code == 200 and "javascript" in js.headers["content-type"]


def test_a_user_id_with_a_slash_has_a_profile(live: Live) -> None:
    user = "u<script>alert(1)</script>/x"
    send(live, [{"type": "track", "event": "click", "userId": user}])
    r = live.client.get(f"/v1/users/{quote(user, safe='')}", headers=live.admin)
    assert r.status_code == 200, r.text
    assert r.json()["user_id"] == user


@pytest.mark.parametrize(
    "path",
    [
        "/v1/events?limit={}",
        "/v1/failed-events?limit={}",
        "/v1/users?limit={}",
        "/v1/alerts?limit={}",
        "/v1/overview?minutes={}",
        "/v1/stream?limit={}",
    ],
)
@pytest.mark.parametrize("raw", ["²", "١٢", "abc", "-1", "0", "99999999999999999999999"])
def test_whole_number_parameters_refuse_what_int_cannot_take(
    live: Live, path: str, raw: str
) -> None:
    # str.isdigit() accepts superscripts and other scripts' digits; int() refuses some of
    # them, which once surfaced as a 500 (found by the schema fuzzer).
    r = live.client.get(path.format(quote(raw)), headers=live.admin)
    assert r.status_code == 400, (path, raw, r.text)
    assert r.json()["error"]["code"] == "invalid_parameter"


@pytest.mark.parametrize("raw", ["²", "١٢", "abc", "-1", "99999999999999999999999"])
def test_event_cursor_refuses_what_int_cannot_take(live: Live, raw: str) -> None:
    r = live.client.get(f"/v1/events?cursor={quote(raw)}", headers=live.admin)
    assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_parameter"
