"""JSON lines importer: Segment-spec lines, PostHog-style lines, malformed lines."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from usertide.importers import JsonLinesImporter, detect_format, open_importer
from usertide.importers.base import ImportFailure, ImportRecord

SEGMENT_TRACK = {
    "type": "track",
    "messageId": "m-1",
    "userId": "u1",
    "event": "Order Completed",
    "properties": {"total": 42.5},
    "timestamp": "2024-05-01T10:00:00.000Z",
}


def write_lines(tmp_path: Path, lines: list[str], name: str = "events.jsonl") -> Path:
    path = tmp_path / name
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_segment_lines_pass_through_and_failures_are_counted(tmp_path: Path) -> None:
    path = write_lines(
        tmp_path,
        [
            json.dumps(SEGMENT_TRACK),
            "",
            "   ",
            '{"type": "page", "anonymousId": "a1", "name": "Home"',  # truncated
            "[1, 2, 3]",
            json.dumps({"type": "identify", "userId": "u1", "traits": {"plan": "pro"}}),
        ],
    )
    items = list(JsonLinesImporter(path).records())
    assert [type(item).__name__ for item in items] == [
        "ImportRecord",
        "ImportFailure",
        "ImportFailure",
        "ImportRecord",
    ]
    track, truncated, array, identify = items
    assert isinstance(track, ImportRecord)
    assert track == ImportRecord(1, SEGMENT_TRACK)
    assert isinstance(truncated, ImportFailure)
    assert (truncated.line, truncated.reason) == (4, "malformed_json")
    assert truncated.raw.startswith('{"type": "page"')
    assert isinstance(array, ImportFailure)
    assert (array.line, array.reason) == (5, "schema_violation")
    assert isinstance(identify, ImportRecord)
    assert identify.line == 6
    assert identify.payload["traits"] == {"plan": "pro"}


def test_missing_message_ids_are_derived_from_the_line(tmp_path: Path) -> None:
    line = json.dumps({"type": "track", "userId": "u1", "event": "Clicked"})
    path = write_lines(tmp_path, [line, line.replace("Clicked", "Scrolled")])

    def ids() -> list[str]:
        return [
            item.payload["messageId"]
            for item in JsonLinesImporter(path).records()
            if isinstance(item, ImportRecord)
        ]

    first = ids()
    assert first == ids()
    assert len(set(first)) == 2


def test_posthog_events_are_converted(tmp_path: Path) -> None:
    pageview = {
        "event": "$pageview",
        "distinct_id": "0190a-device",
        "uuid": "0190a-event-1",
        "timestamp": "2024-05-01T10:00:00+02:00",
        "properties": {
            "$device_id": "0190a-device",
            "$current_url": "https://example.com/pricing",
            "$pathname": "/pricing",
            "$referrer": "$direct",
            "$ip": "203.0.113.9",
            "$raw_user_agent": "Mozilla/5.0 Firefox/133.0",
            "$lib": "web",
            "$browser": "Firefox",
        },
    }
    custom = {
        "event": "signed up",
        "timestamp": 1714557600000,  # unix milliseconds
        "properties": {"distinct_id": 42, "$device_id": "0190a-device", "plan": "pro"},
    }
    path = write_lines(tmp_path, [json.dumps(pageview), json.dumps(custom)])
    page, track = (item.payload for item in JsonLinesImporter(path).records())  # type: ignore[union-attr]

    assert page == {
        "type": "page",
        "anonymousId": "0190a-device",
        "messageId": "0190a-event-1",
        "timestamp": "2024-05-01T08:00:00.000Z",
        "context": {
            "page": {"url": "https://example.com/pricing", "path": "/pricing"},
            "ip": "203.0.113.9",
            "userAgent": "Mozilla/5.0 Firefox/133.0",
            "library": {"name": "web"},
        },
        "properties": {"$device_id": "0190a-device", "$browser": "Firefox"},
    }
    assert track["type"] == "track"
    assert track["event"] == "signed up"
    assert (track["userId"], track["anonymousId"]) == ("42", "0190a-device")
    assert track["timestamp"] == "2024-05-01T10:00:00.000Z"
    assert track["properties"] == {"$device_id": "0190a-device", "plan": "pro"}
    assert track["messageId"]  # derived, since PostHog line had no uuid


def test_posthog_identity_and_identify(tmp_path: Path) -> None:
    anonymous = {
        "event": "clicked",
        "distinct_id": "anon-1",
        "properties": {"$is_identified": False, "$set": {"plan": "free"}},
    }
    identify = {
        "event": "$identify",
        "$distinct_id": "user-7",
        "$set": {"email": "x@example.com"},
        "properties": {"$anon_distinct_id": "anon-1", "$title": "Welcome"},
    }
    path = write_lines(tmp_path, [json.dumps(anonymous), json.dumps(identify)])
    clicked, identified = (
        item.payload for item in JsonLinesImporter(path).records() if isinstance(item, ImportRecord)
    )
    assert clicked["anonymousId"] == "anon-1"
    assert "userId" not in clicked
    assert clicked["properties"]["$set"] == {"plan": "free"}  # kept: only identify has traits
    assert identified["type"] == "identify"
    assert (identified["userId"], identified["anonymousId"]) == ("user-7", "anon-1")
    assert identified["traits"] == {"email": "x@example.com"}
    assert identified["context"] == {"page": {"title": "Welcome"}}


@pytest.mark.parametrize(
    "document",
    [
        {"event": "x", "distinct_id": ["not", "an", "id"]},
        {"event": "", "distinct_id": "u1"},
        {"event": "x", "distinct_id": "u1", "properties": "nope"},
        {"event": "x", "distinct_id": "u1", "timestamp": "last tuesday"},
    ],
)
def test_bad_posthog_events_are_schema_violations(tmp_path: Path, document: object) -> None:
    path = write_lines(tmp_path, [json.dumps(document)])
    (item,) = JsonLinesImporter(path).records()
    assert isinstance(item, ImportFailure)
    assert item.reason == "schema_violation"


def test_invalid_utf8_and_deep_nesting_are_malformed(tmp_path: Path) -> None:
    path = tmp_path / "bad.ndjson"
    path.write_bytes(b'{"type": "track", "event": "\xff"}\n' + b"[" * 5000 + b"\n")
    items = list(JsonLinesImporter(path).records())
    assert [(item.line, item.reason) for item in items if isinstance(item, ImportFailure)] == [
        (1, "malformed_json"),
        (2, "malformed_json"),
    ]


def test_bom_and_crlf_are_tolerated(tmp_path: Path) -> None:
    path = tmp_path / "windows.json"
    path.write_bytes(b"\xef\xbb\xbf" + json.dumps(SEGMENT_TRACK).encode() + b"\r\n")
    (item,) = JsonLinesImporter(path).records()
    assert item == ImportRecord(1, SEGMENT_TRACK)


def test_progress_and_detection(tmp_path: Path) -> None:
    path = write_lines(tmp_path, [json.dumps(SEGMENT_TRACK)] * 20, name="export.txt")
    assert detect_format(path) == "jsonl"  # sniffed from content
    for name in ("a.jsonl", "a.ndjson", "a.json", "a.JSONL.gz"):
        assert detect_format(tmp_path / name) == "jsonl"
    importer = open_importer(path)
    assert isinstance(importer, JsonLinesImporter)
    positions = [importer.position() for _ in importer.records()]
    assert positions[0] < positions[-1] == importer.size_bytes()


def test_unknown_format_is_rejected(tmp_path: Path) -> None:
    path = write_lines(tmp_path, ["just words"], name="notes.txt")
    with pytest.raises(ValueError, match="cannot detect"):
        detect_format(path)
    with pytest.raises(ValueError, match="unknown import format"):
        open_importer(path, "xml")


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(lines=st.lists(st.text(alphabet=st.characters(exclude_categories=["Cs"])), max_size=8))
def test_arbitrary_lines_never_raise(tmp_path: Path, lines: list[str]) -> None:
    text = "\n".join(lines)
    path = tmp_path / "fuzz.jsonl"
    path.write_text(text, encoding="utf-8")
    items = list(JsonLinesImporter(path).records())
    assert all(isinstance(item, ImportRecord | ImportFailure) for item in items)
    assert len(items) <= text.count("\n") + 1  # at most one item per physical line


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    documents=st.lists(
        st.recursive(
            st.none() | st.booleans() | st.integers() | st.text(max_size=5),
            lambda children: (
                st.lists(children, max_size=3)
                | st.dictionaries(
                    st.sampled_from(
                        ["event", "distinct_id", "properties", "timestamp", "uuid", "x"]
                    ),
                    children,
                    max_size=4,
                )
            ),
            max_leaves=8,
        ),
        max_size=5,
    )
)
def test_arbitrary_json_documents_never_raise(tmp_path: Path, documents: list[object]) -> None:
    path = tmp_path / "fuzz.jsonl"
    path.write_text("\n".join(json.dumps(document) for document in documents), encoding="utf-8")
    items = list(JsonLinesImporter(path).records())
    assert len(items) == len(documents)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(content=st.binary(max_size=400))
def test_arbitrary_bytes_never_raise(tmp_path: Path, content: bytes) -> None:
    assume(not content.startswith(b"\x1f\x8b"))  # gzip magic: see test_gzip*
    path = tmp_path / "fuzz.bin"
    path.write_bytes(content)
    importer = JsonLinesImporter(path)
    items = list(importer.records())
    assert all(isinstance(item, ImportRecord | ImportFailure) for item in items)
    assert importer.position() == importer.size_bytes()
