"""What the browser SDKs send, byte for byte, against a real server.

The bodies are the ones posthog-js 1.449 and analytics-next 1.84 build (see
``tests/web/test_sdk_browser.py`` for the SDKs themselves in Chromium): gzip without
any header or parameter, the page-leave beacon's ``data=<base64>`` form, Segment's
one-letter paths with ``text/plain`` JSON, and the original design's ``/submit``.
"""

from __future__ import annotations

import base64
import gzip
import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from livesupport import ADMIN_KEY, WRITE_KEY, make_settings
from usertide.server import BackgroundServer

pytestmark = pytest.mark.slow

ORIGIN = "https://shop.test"
ADMIN = {"Authorization": f"Bearer {ADMIN_KEY}"}
BASIC = {"Authorization": "Basic " + base64.b64encode(f"{WRITE_KEY}:".encode()).decode()}
PLAIN = {"Content-Type": "text/plain;charset=UTF-8"}
FORM = {"Content-Type": "application/x-www-form-urlencoded"}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BackgroundServer]:
    data = Path(tmp_path_factory.mktemp("sdk")) / "data"
    srv = BackgroundServer(make_settings(data, submit_origins=f"{ORIGIN}, https://other.test/"))
    srv.start()
    yield srv
    srv.stop()


@pytest.fixture
def client(server: BackgroundServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=10) as http:
        yield http


def uid() -> str:
    return f"u-{uuid.uuid4().hex[:10]}"


def events(client: httpx.Client, **query: str) -> list[dict[str, Any]]:
    r = client.get("/v1/events", params=query, headers=ADMIN)
    assert r.status_code == 200, r.text
    found: list[dict[str, Any]] = r.json()["events"]
    return found


def failed_with(client: httpx.Client, marker: str) -> list[dict[str, Any]]:
    r = client.get("/v1/failed-events", params={"limit": 1000}, headers=ADMIN)
    assert r.status_code == 200, r.text
    return [f for f in r.json()["failed_events"] if marker in f["raw"] or marker in f["message"]]


def posthog_batch(distinct_id: str, *names: str) -> bytes:
    items = [
        {
            "uuid": str(uuid.uuid4()),
            "event": name,
            "properties": {
                "distinct_id": distinct_id,
                "token": WRITE_KEY,
                "$current_url": "https://shop.test/p/1",
                "$lib": "web",
                "price": 9.5,
            },
            "timestamp": "2026-12-01T10:00:00.000Z",
        }
        for name in names
    ]
    return json.dumps(items).encode()


def test_posthog_gzip_found_by_its_bytes(client: httpx.Client) -> None:
    """posthog-js's first $pageview: gzip, text/plain, no Content-Encoding, no parameter."""
    who = uid()
    body = gzip.compress(posthog_batch(who, "$pageview"), mtime=0)
    r = client.post("/e/?ip=0&_=1764583200000&ver=1.449.2", content=body, headers=PLAIN)
    assert (r.status_code, r.json()["status"]) == (200, 1)
    (stored,) = events(client, user_id=who)
    assert stored["type"] == "page" and stored["properties"]["price"] == 9.5


def test_posthog_page_leave_beacon(client: httpx.Client) -> None:
    """sendBeacon: ``compression=base64``, form-encoded ``data=<base64 of the batch>``."""
    who = uid()
    packed = base64.b64encode(posthog_batch(who, "$pageleave", "Added to cart")).decode()
    r = client.post(
        "/e/?ip=0&_=1&ver=1.449.2&compression=base64",
        content=f"data={quote(packed, safe='')}",
        headers=FORM,
    )
    assert r.status_code == 200, r.text
    stored = events(client, user_id=who)
    assert sorted(e["name"] for e in stored) == ["$pageleave", "Added to cart"]


@pytest.mark.parametrize(
    "path", ["/e/?compression=gzip-js", "/i/v0/e/?compression=gzip-js", "/batch/"]
)
def test_posthog_gzip_js_on_every_capture_path(client: httpx.Client, path: str) -> None:
    who = uid()
    body = gzip.compress(posthog_batch(who, "clicked"))
    assert client.post(path, content=body, headers=PLAIN).status_code == 200
    assert [e["name"] for e in events(client, user_id=who)] == ["clicked"]


def segment_call(kind: str, who: str, **extra: Any) -> dict[str, Any]:
    return {
        "type": kind,
        "userId": who,
        "messageId": f"ajs-next-{uuid.uuid4().hex}",
        "timestamp": "2026-12-01T10:00:00.000Z",
        "context": {"page": {"url": "https://shop.test/", "path": "/"}, "library": {}},
        "writeKey": WRITE_KEY,
        "sentAt": "2026-12-01T10:00:00.050Z",
        **extra,
    }


@pytest.mark.parametrize(
    ("path", "kind", "extra"),
    [
        ("/v1/t", "track", {"event": "Order Completed", "properties": {"revenue": 42}}),
        ("/v1/p", "page", {"name": "Home", "properties": {"path": "/"}}),
        ("/v1/i", "identify", {"traits": {"email": "jane@example.com"}}),
        ("/v1/s", "screen", {"name": "Cart"}),
        ("/v1/g", "group", {"groupId": "acme", "traits": {"plan": "pro"}}),
        ("/v1/a", "alias", {"previousId": "anon-1"}),
    ],
)
def test_segment_one_letter_paths(
    client: httpx.Client, path: str, kind: str, extra: dict[str, Any]
) -> None:
    """analytics.js: text/plain JSON with ``writeKey`` in the body and Basic auth."""
    who = uid()
    r = client.post(
        path,
        content=json.dumps(segment_call(kind, who, **extra)),
        headers={**PLAIN, **BASIC, "Origin": ORIGIN},
    )
    assert (r.status_code, r.json()) == (200, {"success": True})
    assert r.headers["access-control-allow-origin"] == "*"
    (stored,) = events(client, user_id=who)
    assert stored["type"] == kind


def test_segment_batching_path(client: httpx.Client) -> None:
    who = uid()
    batch = [segment_call("track", who, event=f"e{i}") for i in range(3)]
    body = {"writeKey": WRITE_KEY, "batch": batch, "sentAt": "2026-12-01T10:00:01Z"}
    r = client.post("/v1/b", content=json.dumps(body), headers=PLAIN)
    assert r.json() == {"success": True, "accepted": 3, "failed": 0}
    assert sorted(e["name"] for e in events(client, user_id=who)) == ["e0", "e1", "e2"]


def test_segment_paths_keep_the_limits_and_errors(client: httpx.Client) -> None:
    who = uid()
    keyless = {k: v for k, v in segment_call("track", who, event="x").items() if k != "writeKey"}
    r = client.post("/v1/t", content=json.dumps(keyless), headers=PLAIN)
    assert (r.status_code, r.json()["error"]["code"]) == (401, "invalid_write_key")
    r = client.post("/v1/t", content=b"x" * 600_000, headers=PLAIN)
    assert (r.status_code, r.json()["error"]["code"]) == (413, "payload_too_large")
    nameless = segment_call("track", who)
    r = client.post("/v1/t", content=json.dumps(nameless), headers=PLAIN)
    assert (r.status_code, r.json()["error"]["code"]) == (400, "missing_event_name")
    assert failed_with(client, who)


def test_cors_preflight_for_basic_auth(client: httpx.Client) -> None:
    r = client.options(
        "/v1/t",
        headers={
            "Origin": ORIGIN,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization,content-type,x-retry-count",
        },
    )
    assert r.status_code == 200
    assert "authorization" in r.headers["access-control-allow-headers"].lower()


@pytest.mark.parametrize(
    ("template", "code"),
    [
        pytest.param("data=%%%not-base64%%%&x=MARKER", "invalid_base64", id="bad-base64-in-form"),
        pytest.param("data=BASE64(hello, not json MARKER)", "malformed_json", id="data-not-json"),
        pytest.param("nothing=here&x=MARKER", "invalid_form", id="form-without-data"),
    ],
)
def test_malformed_beacons_are_400_and_kept(client: httpx.Client, template: str, code: str) -> None:
    marker = uid()
    content = template.replace("MARKER", marker)
    if "BASE64(" in content:
        inner = content[content.index("(") + 1 : -1]
        content = "data=" + quote(base64.b64encode(inner.encode()).decode(), safe="")
    r = client.post("/e/?compression=base64", content=content, headers=FORM)
    assert (r.status_code, r.json()["error"]["code"]) == (400, code)
    assert r.json()["error"]["message"]
    (kept,) = failed_with(client, marker)
    assert kept["reason"] == ("malformed_json" if code == "malformed_json" else "invalid_encoding")


def test_truncated_gzip_is_400_and_kept(client: httpx.Client) -> None:
    who = uid()
    body = gzip.compress(posthog_batch(who, "$pageview"))[:-12]
    r = client.post("/e/", content=body, headers=PLAIN)
    assert (r.status_code, r.json()["error"]["code"]) == (400, "invalid_compression")
    assert "truncated" in r.json()["error"]["message"]
    r = client.get("/v1/failed-events", params={"reason": "invalid_encoding"}, headers=ADMIN)
    raws = [f["raw"] for f in r.json()["failed_events"]]
    assert any(raw.startswith("base64:") and base64.b64decode(raw[7:]) == body for raw in raws)


def test_flags_and_remote_config_never_stop_capture(client: httpx.Client) -> None:
    for path in ("/flags/?v=2&config=true", "/decide/?v=3"):
        r = client.post(path, content=gzip.compress(b'{"token":"t"}'), headers=PLAIN)
        body = r.json()
        assert r.status_code == 200
        assert body["featureFlags"] == {} and body["errorsWhileComputingFlags"] is False
    config = client.get(f"/array/{WRITE_KEY}/config").json()
    assert config["token"] == WRITE_KEY and config["sessionRecording"] is False
    assert "gzip-js" in config["supportedCompression"]
    script = client.get('/array/<script>"x\u2028/config.js')
    assert script.headers["content-type"].startswith("application/javascript")
    assert "<" not in script.text and "_POSTHOG_REMOTE_CONFIG" in script.text


def test_segment_settings_point_back_here(client: httpx.Client, server: BackgroundServer) -> None:
    r = client.get(f"/v1/projects/{WRITE_KEY}/settings", headers={"Origin": ORIGIN})
    io = r.json()["integrations"]["Segment.io"]
    assert io["apiHost"] == server.url.split("://", 1)[1] + "/v1"
    assert (io["protocol"], io["apiKey"]) == ("http", WRITE_KEY)
    assert r.headers["access-control-allow-origin"] == "*"
    metrics = client.post("/v1/m", content=b'{"series":[]}', headers=PLAIN)
    assert metrics.status_code == 200


def flat(who: str, **extra: Any) -> dict[str, Any]:
    return {
        "user_id": who,
        "event": "click",
        "timestamp": "2024-10-05T12:00:00Z",
        "url": "https://shop.test/products/7?ref=mail",
        **extra,
    }


def test_submit_as_the_original_design(client: httpx.Client) -> None:
    who = uid()
    r = client.post("/submit", json=flat(who, button="buy"), headers=BASIC)
    assert (r.status_code, r.json()) == (200, {"status": "success"})
    r = client.post("/submit", json=flat(who, event="page_view", writeKey=WRITE_KEY))
    assert r.json() == {"status": "success"}
    click, page = sorted(events(client, user_id=who), key=lambda e: e["type"] != "track")
    assert click["name"] == "click" and click["properties"] == {"button": "buy"}
    assert click["context"]["page_url"] == "https://shop.test/products/7?ref=mail"
    assert click["context"]["page_path"] == "/products/7"
    assert click["timestamp"].startswith("2024-10-05T12:00:00")
    assert page["type"] == "page"


def test_submit_needs_a_key_unless_the_origin_is_allowed(client: httpx.Client) -> None:
    who = uid()
    r = client.post("/submit", json=flat(who))
    assert (r.status_code, r.json()["error"]["code"]) == (401, "invalid_write_key")
    r = client.post("/submit", json=flat(who), headers={"Origin": "https://evil.test"})
    assert r.status_code == 401
    for origin in (ORIGIN, "https://other.test"):
        r = client.post("/submit", json=flat(who, event=origin), headers={"Origin": origin})
        assert r.json() == {"status": "success"}
    assert len(events(client, user_id=who)) == 2
    r = client.post("/submit", json=flat(who), headers={"Origin": ORIGIN, **BASIC, "X-Extra": "1"})
    assert r.status_code == 200


def test_submit_errors_name_the_problem_and_are_kept(client: httpx.Client) -> None:
    who = uid()
    cases = [
        ({"event": "click", "writeKey": WRITE_KEY, "marker": who}, "missing_identity"),
        ({"user_id": who, "writeKey": WRITE_KEY}, "missing_event_name"),
        (flat(who, timestamp="yesterday", writeKey=WRITE_KEY), "invalid_timestamp"),
    ]
    for body, code in cases:
        r = client.post("/submit", json=body)
        assert (r.status_code, r.json()["error"]["code"]) == (400, code)
    assert len(failed_with(client, who)) == 3
    many = [flat(who, event="a"), flat(who, event=""), flat(who, event="b")]
    r = client.post("/submit", json=many, headers=BASIC)
    assert r.json()["status"] == "success"
    assert (r.json()["accepted"], r.json()["failed"]) == (2, 1)
