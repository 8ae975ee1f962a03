from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from usertide.capture import CaptureError, CaptureRequest, PostHogProtocol
from usertide.events import FailureReason

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
P = PostHogProtocol()


def req(**kw: Any) -> CaptureRequest:
    return CaptureRequest(endpoint="capture", received_at=NOW, client_ip="203.0.113.9", **kw)


def test_single_event_with_set_and_page_fields() -> None:
    body = {
        "api_key": "phc",
        "event": "$pageview",
        "distinct_id": "jane",
        "uuid": "0190a5b4-0000-7000-8000-000000000001",
        "properties": {
            "$current_url": "https://x.test/a?b=1",
            "$pathname": "/a",
            "$ip": "8.8.8.8",
            "$session_id": "s1",
            "$set": {"plan": "pro"},
            "$set_once": {"first": "x"},
            "$raw_user_agent": "Mozilla/5.0 Test",
        },
    }
    parsed = P.parse(body, req())
    assert parsed.single and parsed.write_key == "phc"
    (e,) = parsed.events
    assert (e.type, e.name, e.user_id, e.id) == ("page", None, "jane", body["uuid"])
    assert e.context.page_path == "/a" and e.context.ip == "8.8.8.8"
    assert e.context.user_agent == "Mozilla/5.0 Test" and e.session_id == "s1"
    assert e.traits == {"plan": "pro"} and e.properties["$set_once"] == {"first": "x"}


def test_batch_envelope_and_token_in_properties() -> None:
    body = {
        "batch": [
            {"event": "signed up", "properties": {"distinct_id": "u1", "token": "phc"}},
            {
                "event": "$identify",
                "distinct_id": "u2",
                "properties": {"$anon_distinct_id": "anon-9", "token": "phc"},
            },
        ],
        "sent_at": NOW.isoformat(),
    }
    parsed = P.parse(body, req())
    assert parsed.write_key == "phc" and not parsed.single
    signup, identify = parsed.events
    assert signup.name == "signed up" and signup.user_id == "u1"
    assert identify.type == "identify" and identify.anonymous_id == "anon-9"


def test_anonymous_js_visitor_is_kept_anonymous() -> None:
    body = [
        {
            "event": "$autocapture",
            "distinct_id": "0190-anon",
            "properties": {"$is_identified": False, "token": "phc"},
        }
    ]
    (e,) = P.parse(body, req()).events
    assert e.user_id is None and e.anonymous_id == "0190-anon"


def test_offset_sets_the_time() -> None:
    body = {"event": "e", "distinct_id": "u", "api_key": "k", "offset": 1500}
    (e,) = P.parse(body, req()).events
    assert e.timestamp == NOW - timedelta(milliseconds=1500)


def test_missing_fields_become_failed_events() -> None:
    body = [{"event": "e", "api_key": "k"}, {"distinct_id": "u", "api_key": "k"}]
    parsed = P.parse(body, req())
    assert [f.reason for f in parsed.failed] == [
        FailureReason.MISSING_IDENTITY,
        FailureReason.MISSING_EVENT_NAME,
    ]


def test_conflicting_keys_and_empty_batches_are_rejected() -> None:
    with pytest.raises(CaptureError) as info:
        P.parse(
            [
                {"event": "e", "distinct_id": "u", "api_key": "a"},
                {"event": "e", "distinct_id": "u", "api_key": "b"},
            ],
            req(),
        )
    assert info.value.status == 401
    with pytest.raises(CaptureError) as info:
        P.parse([], req())
    assert info.value.code == "empty_batch"


def test_device_id_as_distinct_id_is_anonymous() -> None:
    body = {
        "event": "e",
        "distinct_id": "dev-1",
        "api_key": "k",
        "properties": {"$device_id": "dev-1"},
    }
    (e,) = P.parse(body, req()).events
    assert e.user_id is None and e.anonymous_id == "dev-1"
