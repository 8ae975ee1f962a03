"""The collector's HTTP semantics against a real server."""

from __future__ import annotations

import gzip
from typing import Any

import msgspec
import pytest

from livesupport import WRITE_KEY, Live


def track(**kw: Any) -> dict[str, Any]:
    return {"type": "track", "event": "click", "userId": "jane", **kw}


def test_batch_is_stored_and_readable(live: Live) -> None:
    body = {"batch": [track(messageId=f"m{i}") for i in range(5)]}
    r = live.client.post("/v1/batch", json=body, headers=live.write)
    assert r.status_code == 200
    assert r.json() == {"success": True, "accepted": 5, "failed": 0}
    assert live.store.count_events() == 5


def test_write_key_in_body_and_dedup_by_message_id(live: Live) -> None:
    body = {"writeKey": WRITE_KEY, "batch": [track(messageId="same"), track(messageId="same")]}
    assert live.client.post("/v1/batch", json=body).status_code == 200
    assert live.client.post("/v1/batch", json=body).status_code == 200
    assert live.store.count_events() == 1


def test_single_track_endpoint(live: Live) -> None:
    r = live.client.post("/v1/track", json=track(), headers=live.write)
    assert r.status_code == 200 and r.json() == {"success": True}


def test_posthog_capture_and_gzip(live: Live) -> None:
    event = {
        "api_key": WRITE_KEY,
        "event": "$pageview",
        "distinct_id": "jane",
        "properties": {"$current_url": "https://x.test/"},
    }
    assert live.client.post("/capture", json=event).json() == {"status": 1}
    batch = msgspec.json.encode({"api_key": WRITE_KEY, "batch": [event, event]})
    r = live.client.post(
        "/batch",
        content=gzip.compress(batch),
        headers={"Content-Encoding": "gzip", "Content-Type": "application/json"},
    )
    assert r.status_code == 200 and r.json()["status"] == 1
    r = live.client.post(
        "/e/?compression=gzip-js",
        content=gzip.compress(batch),
        headers={"Content-Type": "text/plain"},
    )
    assert r.status_code == 200
    assert live.store.count_events() == 5


def test_partial_batch_keeps_valid_and_failed(live: Live) -> None:
    body = {"batch": [track(), {"type": "track", "userId": "jane"}]}
    r = live.client.post("/v1/batch", json=body, headers=live.write)
    assert r.status_code == 200
    data = r.json()
    assert (data["accepted"], data["failed"]) == (1, 1)
    assert data["errors"][0]["code"] == "missing_event_name"
    failed = live.client.get("/v1/failed-events", headers=live.admin).json()
    assert failed["total"] == 1 and failed["failed_events"][0]["field"] == "event"


def assert_error(r: Any, status: int, code: str) -> dict[str, Any]:
    assert r.status_code == status, r.text
    body: dict[str, Any] = r.json()
    assert body["error"]["code"] == code and body["error"]["message"]
    return body


def test_invalid_single_event_is_400_and_kept(live: Live) -> None:
    r = live.client.post("/v1/track", json={"userId": "jane"}, headers=live.write)
    body = assert_error(r, 400, "missing_event_name")
    assert "'event'" in body["error"]["message"]
    assert live.store.count_failed() == 1


def test_malformed_json_is_400_and_kept(live: Live) -> None:
    r = live.client.post("/v1/batch", content=b'{"batch": [', headers=live.write)
    assert_error(r, 400, "malformed_json")
    (kept,) = live.store.query_failed()
    assert kept.reason.value == "malformed_json" and kept.raw == '{"batch": ['


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"batch": []}, "empty_batch"),
        ({"batch": "x"}, "invalid_batch"),
        ({"batch": [{"type": "track", "event": "e"}]}, "missing_identity"),
    ],
)
def test_bad_batches_are_400(live: Live, body: Any, code: str) -> None:
    assert_error(live.client.post("/v1/batch", json=body, headers=live.write), 400, code)


def test_keys(live: Live) -> None:
    body = {"batch": [track()]}
    assert_error(live.client.post("/v1/batch", json=body), 401, "invalid_write_key")
    bad = {**body, "writeKey": "nope"}
    assert_error(live.client.post("/v1/batch", json=bad), 401, "invalid_write_key")
    mixed = {"writeKey": WRITE_KEY, "batch": [track(writeKey="other")]}
    assert_error(live.client.post("/v1/batch", json=mixed), 401, "conflicting_keys")
    assert live.store.count_events() == 0


def test_size_limits(live: Live) -> None:
    big = "x" * (501 * 1024)
    r = live.client.post(
        "/v1/batch", json={"batch": [track(properties={"x": big})]}, headers=live.write
    )
    assert_error(r, 413, "payload_too_large")
    items = [track(properties={"x": "y" * 33_000}), track()]
    r = live.client.post("/v1/batch", json={"batch": items}, headers=live.write)
    assert r.status_code == 200 and r.json()["failed"] == 1
    bomb = gzip.compress(b"[" + b" " * 5_000_000 + b"]")
    r = live.client.post("/batch", content=bomb, headers={"Content-Encoding": "gzip"})
    assert_error(r, 413, "payload_too_large")


def test_content_type(live: Live) -> None:
    r = live.client.post(
        "/v1/batch", content=b"<xml/>", headers={**live.write, "Content-Type": "application/xml"}
    )
    assert_error(r, 415, "unsupported_media_type")


@pytest.mark.parametrize("live", [{"rate_limit_rps": 1.0, "rate_limit_burst": 2.0}], indirect=True)
def test_rate_limit(live: Live) -> None:
    codes = [live.client.post("/v1/track", json=track(), headers=live.write) for _ in range(4)]
    assert [r.status_code for r in codes[:2]] == [200, 200]
    limited = codes[-1]
    assert_error(limited, 429, "rate_limited")
    assert int(limited.headers["Retry-After"]) >= 1


@pytest.mark.parametrize("live", [{"max_pending_events": 0}], indirect=True)
def test_503_when_the_log_cannot_take_writes(live: Live) -> None:
    r = live.client.post("/v1/track", json=track(), headers=live.write)
    assert_error(r, 503, "unavailable")
    assert r.headers["Retry-After"] == "1"


def test_enrichment_and_ip_truncation(live: Live) -> None:
    ua = "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0"
    body = {"batch": [track(context={"ip": "77.88.8.8", "userAgent": ua})]}
    assert live.client.post("/v1/batch", json=body, headers=live.write).status_code == 200
    (event,) = live.store.read_log(0, 10)
    assert event.context.ip == "77.88.8.0"
    assert event.context.geo is not None and event.context.geo.country == "RU"
    assert event.context.device is not None and event.context.device.browser == "Firefox"


def test_integers_beyond_64_bits_fail_alone(live: Live) -> None:
    body = {"batch": [track(properties={"n": 2**70}), track(messageId="fine")]}
    r = live.client.post("/v1/batch", json=body, headers=live.write)
    assert r.status_code == 200 and (r.json()["accepted"], r.json()["failed"]) == (1, 1)
    (kept,) = live.store.query_failed()
    assert str(2**70) in kept.raw


def test_stored_body_includes_enrichment_on_the_fast_path(live: Live) -> None:
    ua = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/131.0.0.0"
    body = {
        "batch": [
            track(context={"ip": "8.8.8.8", "userAgent": ua}, messageId=f"m{i}") for i in range(3)
        ]
    }
    assert live.client.post("/v1/batch", json=body, headers=live.write).status_code == 200
    for event in live.store.read_log(0, 10):
        assert event.context.device is not None and event.context.device.browser == "Chrome"
        assert event.context.ip == "8.8.8.0"


def test_cross_origin_posts_get_the_cors_headers(live: Live) -> None:
    """Ingestion skips the framework (the fast path) yet answers like the CORS
    middleware: browsers on the site's own origin can read the answer."""
    site = {"Origin": "https://shop.test", **live.write}
    ok = live.client.post("/v1/track", json=track(), headers=site)
    assert ok.status_code == 200
    assert ok.headers["access-control-allow-origin"] == "*"
    assert ok.headers["access-control-expose-headers"] == "Retry-After"
    bad = live.client.post("/v1/track", content=b"x", headers={**site, "Content-Type": "a/b"})
    assert_error(bad, 415, "unsupported_media_type")
    assert bad.headers["access-control-allow-origin"] == "*"
    same = live.client.post("/v1/track", json=track(), headers=live.write)
    assert "access-control-allow-origin" not in same.headers
    assert same.headers["vary"] == "Origin"
    preflight = live.client.options(
        "/v1/batch",
        headers={"Origin": "https://shop.test", "Access-Control-Request-Method": "POST"},
    )
    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-origin"] == "*"
    # Other methods and paths still reach the framework's routes and errors.
    assert live.client.get("/v1/track").status_code == 405


def test_forwarded_for_is_ignored_unless_trusted(live: Live) -> None:
    forged = {"X-Forwarded-For": "77.88.8.8", **live.write}
    assert live.client.post("/v1/track", json=track(), headers=forged).status_code == 200
    (event,) = live.store.read_log(0, 10)
    assert event.context.geo is None  # the loopback client's own address, not the header


def test_a_client_leaving_mid_body_is_not_an_error(live: Live) -> None:
    import socket
    from urllib.parse import urlsplit

    url = urlsplit(live.url)
    with socket.create_connection((url.hostname, url.port)) as sock:
        sock.sendall(
            b"POST /v1/track HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: 500\r\n\r\n" + b'{"type": "track", "event": "cl'
        )
    # The server carries on; nothing half-sent was stored.
    r = live.client.post("/v1/track", json=track(), headers=live.write)
    assert r.status_code == 200
    assert live.store.count_events() == 1
