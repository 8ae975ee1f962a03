from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from usertide.capture import CaptureError, CaptureRequest, SegmentProtocol
from usertide.events import FailureReason

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
P = SegmentProtocol()


def req(endpoint: str = "batch", **kw: Any) -> CaptureRequest:
    return CaptureRequest(endpoint=endpoint, received_at=NOW, client_ip="203.0.113.9", **kw)


def test_batch_items_are_normalized_with_batch_context_merged() -> None:
    body = {
        "writeKey": "wk",
        "context": {"locale": "en-US", "library": {"name": "analytics-python", "version": "2"}},
        "batch": [
            {
                "type": "track",
                "event": "Order Completed",
                "userId": "jane",
                "messageId": "m1",
                "properties": {"revenue": 10},
                "context": {"ip": "8.8.8.8", "locale": "de-DE"},
            },
            {
                "type": "page",
                "name": "Home",
                "anonymousId": "a1",
                "properties": {"path": "/", "url": "https://x.test/", "title": "Home"},
            },
            {"type": "identify", "userId": 42, "traits": {"plan": "pro"}},
            {"type": "alias", "previousId": "a1", "userId": "jane"},
            {"type": "group", "userId": "jane", "groupId": "acme"},
        ],
    }
    parsed = P.parse(body, req())
    assert parsed.write_key == "wk" and not parsed.failed
    track, page, identify, alias, group = parsed.events
    assert (track.id, track.name, track.user_id) == ("m1", "Order Completed", "jane")
    assert track.context.ip == "8.8.8.8" and track.context.locale == "de-DE"
    assert track.context.library_name == "analytics-python"
    assert page.context.page_path == "/" and page.context.page_title == "Home"
    assert page.context.ip == "203.0.113.9"  # the connection's address when none is given
    assert identify.user_id == "42" and identify.traits == {"plan": "pro"}
    assert alias.previous_id == "a1" and group.group_id == "acme"
    assert all(e.timestamp == NOW for e in parsed.events)


def test_clock_skew_is_corrected_from_sent_at() -> None:
    client_now = NOW + timedelta(hours=2)  # the device clock runs 2 h fast
    body = {
        "sentAt": client_now.isoformat(),
        "batch": [
            {
                "type": "track",
                "event": "e",
                "userId": "u",
                "timestamp": (client_now - timedelta(seconds=30)).isoformat(),
            }
        ],
    }
    (event,) = P.parse(body, req()).events
    assert event.timestamp == NOW - timedelta(seconds=30)


def test_historical_timestamp_without_sent_at_is_trusted() -> None:
    body = {"type": "track", "event": "e", "userId": "u", "timestamp": "2025-01-02T03:04:05Z"}
    (event,) = P.parse(body, req("track")).events
    assert event.timestamp == datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)


@pytest.mark.parametrize(
    ("item", "reason", "field"),
    [
        ({"type": "track", "userId": "u"}, FailureReason.MISSING_EVENT_NAME, "event"),
        ({"type": "track", "event": "e"}, FailureReason.MISSING_IDENTITY, "userId"),
        ({"type": "nope", "userId": "u"}, FailureReason.UNKNOWN_TYPE, "type"),
        (
            {"type": "track", "event": "e", "userId": "u", "properties": []},
            FailureReason.SCHEMA_VIOLATION,
            "properties",
        ),
        (
            {"type": "track", "event": "e", "userId": "u", "timestamp": "yesterday"},
            FailureReason.INVALID_TIMESTAMP,
            "timestamp",
        ),
        (
            {"type": "track", "event": "e", "userId": "u", "timestamp": "1970-01-01T00:00:00Z"},
            FailureReason.INVALID_TIMESTAMP,
            "timestamp",
        ),
        ({"type": "alias", "userId": "u"}, FailureReason.SCHEMA_VIOLATION, "previousId"),
        (
            {"type": "track", "event": "e", "userId": {"x": 1}},
            FailureReason.SCHEMA_VIOLATION,
            "userId",
        ),
        ("not an object", FailureReason.SCHEMA_VIOLATION, None),
    ],
)
def test_invalid_items_become_failed_events(item: Any, reason: FailureReason, field: str) -> None:
    good = {"type": "track", "event": "ok", "userId": "u"}
    parsed = P.parse({"batch": [good, item]}, req())
    assert len(parsed.events) == 1
    (failure,) = parsed.failed
    assert failure.reason is reason and failure.field == field
    assert parsed.errors[0]["index"] == 1 and parsed.errors[0]["code"] == reason.value
    assert failure.raw  # the payload is kept


def test_oversized_item_is_failed_and_the_rest_kept() -> None:
    big = {"type": "track", "event": "e", "userId": "u", "properties": {"x": "y" * 40_000}}
    small = {"type": "track", "event": "e", "userId": "u"}
    parsed = P.parse({"batch": [small, big]}, req(body_bytes=41_000))
    assert len(parsed.events) == 1
    assert parsed.failed[0].reason is FailureReason.EVENT_TOO_LARGE


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"batch": []}, 400, "empty_batch"),
        ({"batch": {}}, 400, "invalid_batch"),
        ([1, 2], 400, "invalid_body"),
        ({"batch": [{"writeKey": "a"}, {"writeKey": "b"}]}, 401, "conflicting_keys"),
    ],
)
def test_request_level_errors(body: Any, status: int, code: str) -> None:
    with pytest.raises(CaptureError) as info:
        P.parse(body, req())
    assert (info.value.status, info.value.code) == (status, code)


def test_single_endpoint_forces_the_type() -> None:
    parsed = P.parse({"userId": "u", "name": "Docs", "type": "track"}, req("page"))
    assert parsed.single and parsed.events[0].type == "page"
