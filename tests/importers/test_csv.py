"""CSV importer: header (or given column) mapping, type inference, numbers, timestamps,
failures; the real headerless Taobao sample when the shared data is here."""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from livesupport import Live
from usertide.cli import build_parser
from usertide.importers import CsvImporter, detect_format, open_importer
from usertide.importers.base import ImportFailure, ImportRecord
from usertide.importers.csvfile import parse_number
from usertide.importers.run import run_import
from usertide.store import DuckDBStore


def write(tmp_path: Path, text: str, name: str = "events.csv") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def payloads(path: Path) -> list[dict[str, object]]:
    return [item.payload for item in CsvImporter(path).records() if isinstance(item, ImportRecord)]


def test_columns_map_onto_the_spec(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "event,userId,anonymous_id,ts,message_id,ip,User Agent,url,referrer,title,plan,seats,zip\n"
        "Order Completed,u1,a1,1714557600,m-1,203.0.113.9,Firefox/133,"
        "https://example.com/checkout,https://google.com/,Checkout,pro,3,02134\n",
    )
    (payload,) = payloads(path)
    assert payload == {
        "type": "track",
        "event": "Order Completed",
        "userId": "u1",
        "anonymousId": "a1",
        "messageId": "m-1",
        "timestamp": "2024-05-01T10:00:00.000Z",
        "context": {
            "ip": "203.0.113.9",
            "userAgent": "Firefox/133",
            "page": {
                "url": "https://example.com/checkout",
                "referrer": "https://google.com/",
                "title": "Checkout",
            },
        },
        "properties": {"plan": "pro", "seats": 3, "zip": "02134"},
    }


def test_type_is_inferred_and_identify_columns_become_traits(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "type,name,user_id,path,time,email\n"
        ",,u1,/pricing,2024-05-01T12:00:00+02:00,\n"  # no type, no name, a path: a page view
        ",Clicked,u1,/pricing,1714557600123,\n"  # a name: a track (unix milliseconds)
        "Page,Pricing,u1,/pricing,2024-05-01 10:00:00,\n"  # explicit type, naive time = UTC
        "identify,,u1,,,x@example.com\n",
    )
    view, click, named_page, identify = payloads(path)
    assert view["type"] == "page"
    assert "name" not in view
    assert view["timestamp"] == "2024-05-01T10:00:00.000Z"
    assert view["context"] == {"page": {"path": "/pricing"}}
    assert (click["type"], click["event"]) == ("track", "Clicked")
    assert click["timestamp"] == "2024-05-01T10:00:00.123Z"
    assert (named_page["type"], named_page["name"]) == ("page", "Pricing")
    assert named_page["timestamp"] == "2024-05-01T10:00:00.000Z"
    assert identify["type"] == "identify"
    assert identify["traits"] == {"email": "x@example.com"}
    assert "properties" not in identify


def test_failures_are_reported_with_their_line(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "event,user_id,timestamp\n"
        "A,u1,2024-05-01T10:00:00Z\n"
        "\n"
        "B,u1,not a time\n"
        "C,u1,2024-05-01T10:00:00Z,surplus\n"
        '"D\nspanning lines",u1,\n'
        "E,u1\n",  # short row: missing cells are empty
    )
    items = list(CsvImporter(path).records())
    summary = [
        (item.line, getattr(item, "reason", None) or item.payload.get("event"))  # type: ignore[union-attr]
        for item in items
    ]
    assert summary == [
        (2, "A"),
        (4, "schema_violation"),
        (5, "schema_violation"),
        (6, "D\nspanning lines"),
        (8, "E"),
    ]
    bad_time = items[1]
    assert isinstance(bad_time, ImportFailure)
    assert bad_time.raw == "B,u1,not a time"
    assert "not a time" in bad_time.message


def test_message_ids_are_stable_across_imports(tmp_path: Path) -> None:
    path = write(tmp_path, "event,user_id\nA,u1\nB,u1\n")
    first = [payload["messageId"] for payload in payloads(path)]
    assert first == [payload["messageId"] for payload in payloads(path)]
    assert len(set(first)) == 2


def test_unnamed_columns_keep_their_data(tmp_path: Path) -> None:
    (payload,) = payloads(write(tmp_path, "event,user_id,\nA,u1,extra\n"))
    assert payload["properties"] == {"column_3": "extra"}


def test_oversized_field_is_a_failure_not_a_crash(tmp_path: Path) -> None:
    path = tmp_path / "huge.csv"
    path.write_text("event,user_id,blob\nA,u1," + "x" * 200_000 + "\nB,u1,small\n")
    items = list(CsvImporter(path).records())
    assert [type(item).__name__ for item in items] == ["ImportFailure", "ImportRecord"]
    assert isinstance(items[0], ImportFailure)
    assert (items[0].line, items[0].reason) == (2, "unparseable_line")
    assert "field larger than field limit" in items[0].message


def test_parse_number() -> None:
    assert parse_number("42") == 42
    assert parse_number("-3.5") == -3.5
    assert parse_number("1e3") == 1000.0
    for text in ("007", "nan", "inf", "1,000", "12345678901234567890", "1e999", "0x1f", "3."):
        assert parse_number(text) == text


def test_progress_and_detection(tmp_path: Path) -> None:
    rows = "".join(f"Tick,u{n}\n" for n in range(50))
    path = write(tmp_path, "event,user_id\n" + rows, name="export.dat")
    assert detect_format(path) == "csv"
    importer = open_importer(path)
    assert isinstance(importer, CsvImporter)
    assert importer.size_bytes() == path.stat().st_size
    positions = [importer.position() for _ in importer.records()]
    assert len(positions) == 50
    assert positions == sorted(positions)
    assert positions[-1] == importer.size_bytes()


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(lines=st.lists(st.text(alphabet=st.characters(exclude_categories=["Cs"])), max_size=8))
def test_arbitrary_text_never_raises(tmp_path: Path, lines: list[str]) -> None:
    path = tmp_path / "fuzz.csv"
    path.write_text("\n".join(lines), encoding="utf-8")
    items = list(CsvImporter(path).records())
    assert all(isinstance(item, ImportRecord | ImportFailure) for item in items)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(content=st.binary(max_size=400))
def test_arbitrary_bytes_never_raise(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "fuzz.csv"
    path.write_bytes(b"event,user_id,timestamp,amount\n" + content)
    importer = CsvImporter(path)
    items = list(importer.records())
    assert all(isinstance(item, ImportRecord | ImportFailure) for item in items)
    assert importer.position() == importer.size_bytes()


# -- headerless files with the columns named by the caller (``--columns``) -----------------

TAOBAO_COLUMNS = ["user_id", "item_id", "category", "event", "timestamp"]


def taobao_file() -> Path | None:
    root = Path(os.environ.get("USERTIDE_SHARED_DATA", "/work/shared/data"))
    path = root / "taobao-userbehavior" / "UserBehavior.csv"
    return path if path.is_file() else None


def test_given_columns_read_every_line_as_data(tmp_path: Path) -> None:
    path = write(tmp_path, "1,2268318,2520377,pv,1511544070\n7,007,1.5,buy,1511544070123\n")
    first, second = (
        item.payload
        for item in CsvImporter(path, columns=TAOBAO_COLUMNS).records()
        if isinstance(item, ImportRecord)
    )
    assert {key: value for key, value in first.items() if key != "messageId"} == {
        "type": "track",
        "event": "pv",
        "userId": "1",
        "timestamp": "2017-11-24T17:21:10.000Z",  # unix seconds
        "properties": {"item_id": 2268318, "category": 2520377},
    }
    assert second["timestamp"] == "2017-11-24T17:21:10.123Z"  # unix milliseconds
    assert second["properties"] == {"item_id": "007", "category": 1.5}
    assert first["messageId"] != second["messageId"]


def test_given_columns_use_the_header_aliases_and_name_blank_columns(tmp_path: Path) -> None:
    path = write(tmp_path, "Clicked,u1,/pricing,x\n")
    importer = CsvImporter(path, columns=[" Event Name ", "userId", "path", ""])
    (item,) = importer.records()
    assert isinstance(item, ImportRecord)
    assert item.payload["event"] == "Clicked"
    assert item.payload["userId"] == "u1"
    assert item.payload["context"] == {"page": {"path": "/pricing"}}
    assert item.payload["properties"] == {"column_4": "x"}


def test_given_columns_report_rows_that_are_too_long(tmp_path: Path) -> None:
    path = write(tmp_path, "u1,A\nu1,B,surplus\nu1\n")
    items = list(CsvImporter(path, columns=["user_id", "event"]).records())
    assert [type(item).__name__ for item in items] == [
        "ImportRecord",
        "ImportFailure",
        "ImportRecord",
    ]
    assert isinstance(items[1], ImportFailure)
    assert items[1].line == 2
    assert items[1].message == "row has 3 fields but the columns given are 2"


def test_given_columns_are_checked(tmp_path: Path) -> None:
    path = write(tmp_path, "u1,A\n")
    with pytest.raises(ValueError, match="no column names"):
        CsvImporter(path, columns=[])
    with pytest.raises(ValueError, match="no column names"):
        CsvImporter(path, columns=[" ", ""])
    with pytest.raises(ValueError, match="'event' is named twice"):
        CsvImporter(path, columns=["event", "user_id", " event"])
    with pytest.raises(ValueError, match="csv files, not to 'jsonl'"):
        open_importer(path, "jsonl", columns=["user_id", "event"])


def test_given_columns_imply_csv_whatever_the_extension(tmp_path: Path) -> None:
    path = write(tmp_path, "u1,A\n", name="dump.log")
    importer = open_importer(path, columns=["user_id", "event"])
    assert isinstance(importer, CsvImporter)
    assert importer.columns == ["user_id", "event"]


def test_cli_passes_the_columns_through(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    args = build_parser().parse_args(
        ["import", "UserBehavior.csv", "--format", "csv", "--columns", "user_id, item_id,event"]
    )
    assert args.columns == ["user_id", "item_id", "event"]
    seen: dict[str, object] = {}

    def fake_run_import(path: Path, **options: object) -> int:
        seen.update(options, path=path)
        return 0

    monkeypatch.setattr("usertide.importers.run.run_import", fake_run_import)
    assert args.func(args) == 0
    assert seen == {
        "path": Path("UserBehavior.csv"),
        "data_dir": None,
        "fmt": "csv",
        "columns": ["user_id", "item_id", "event"],
    }
    assert build_parser().parse_args(["import", "f.csv"]).columns is None


def test_given_columns_reach_a_running_server(tmp_path: Path, live: Live) -> None:
    path = write(tmp_path, "1,2268318,2520377,pv,1511544070\n1,2268318,2520377,buy,1511544170\n")
    assert run_import(path, data_dir=live.settings.data_dir, columns=TAOBAO_COLUMNS) == 0
    answer = live.client.get("/v1/events", params={"user_id": "1"}, headers=live.admin)
    events = sorted(answer.raise_for_status().json()["events"], key=lambda e: e["timestamp"])
    assert [(event["name"], event["timestamp"][:19]) for event in events] == [
        ("pv", "2017-11-24T17:21:10"),
        ("buy", "2017-11-24T17:22:50"),
    ]
    assert events[0]["properties"] == {"item_id": 2268318, "category": 2520377}


def test_taobao_user_behavior_imports_completely(tmp_path: Path) -> None:
    source = taobao_file()
    if source is None:
        pytest.skip("the shared Taobao sample is not here (USERTIDE_SHARED_DATA)")
    data = tmp_path / "data"
    assert run_import(source, data_dir=data, fmt="csv", columns=TAOBAO_COLUMNS) == 0
    store = DuckDBStore(data / "usertide.duckdb")
    try:
        events = list(store.read_log_iter(0))
        assert store.count_failed() == 0
    finally:
        store.close()
    assert len(events) == 4_321
    assert {event.type for event in events} == {"track"}
    assert {event.name for event in events} == {"pv", "cart", "fav", "buy"}
    assert all(set(event.properties) == {"item_id", "category"} for event in events)
    assert all(event.user_id for event in events)
    months = Counter((event.timestamp.year, event.timestamp.month) for event in events)
    # The sample covers 25 Nov - 3 Dec 2017; one real row is stamped September 2017.
    assert months == {(2017, 11): 2_710, (2017, 12): 1_610, (2017, 9): 1}
