"""Access log importer: nginx/Apache combined and common format lines."""

from __future__ import annotations

import gzip
from pathlib import Path

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from usertide.importers import AccessLogImporter, detect_format, open_importer
from usertide.importers.accesslog import parse_log_line, parse_log_time, visitor_id
from usertide.importers.base import ImportFailure, ImportRecord

FIREFOX = "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0"
NGINX_LOG = "\n".join(
    [
        # IPv6 client, document GET with a query string and a referrer
        f'2001:db8:85a3::8a2e:370:7334 - - [10/Oct/2024:13:55:36 -0700] "GET /pricing?plan=pro '
        f'HTTP/1.1" 200 2326 "https://www.google.com/" "{FIREFOX}"',
        # same visitor fetching an asset: a request, not a page view
        f'2001:db8:85a3::8a2e:370:7334 - - [10/Oct/2024:13:55:37 -0700] "GET /static/app.css '
        f'HTTP/1.1" 304 - "https://example.com/pricing" "{FIREFOX}"',
        # authenticated user (%u), POST, nginx's \x22 escape inside the user agent
        '203.0.113.9 - alice [10/Oct/2024:20:56:01 +0000] "POST /api/cart HTTP/2.0" 201 87 "-" '
        r'"Bot \x22quoted\x22 caf\xC3\xA9/1.0"',
        "",
        "this is not a log line at all",
        # Apache's backslash escape, and extra fields appended by a custom log_format
        r'198.51.100.23 - - [10/Oct/2024:20:57:00 +0000] "GET /docs/ HTTP/1.1" 200 512 "-" '
        r'"Agent \"with quotes\"" 0.004 "10.0.0.1"',
        # common format (no referrer / user agent), garbage request from a scanner
        r'192.0.2.44 - - [10/Oct/2024:20:58:00 +0000] "\x16\x03\x01\x02" 400 157',
        # a 404 for a page is a request, not a page view
        '192.0.2.44 - - [10/Oct/2024:20:58:01 +0000] "GET /wp-login.php HTTP/1.1" 404 0 "-" "-"',
        "",
    ]
)


def write(tmp_path: Path, text: str, name: str = "access.log") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_parses_real_looking_nginx_log(tmp_path: Path) -> None:
    importer = AccessLogImporter(write(tmp_path, NGINX_LOG))
    items = list(importer.records())
    records = [item for item in items if isinstance(item, ImportRecord)]
    failures = [item for item in items if isinstance(item, ImportFailure)]

    assert [record.line for record in records] == [1, 2, 3, 6, 7, 8]
    assert failures == [
        ImportFailure(5, "this is not a log line at all", "unparseable_line", failures[0].message)
    ]

    page, asset, post, docs, scanner, not_found = (record.payload for record in records)
    assert page["type"] == "page"
    assert page["timestamp"] == "2024-10-10T13:55:36-07:00"
    assert page["context"] == {
        "ip": "2001:db8:85a3::8a2e:370:7334",
        "userAgent": FIREFOX,
        "page": {"path": "/pricing", "search": "?plan=pro", "referrer": "https://www.google.com/"},
    }
    assert page["properties"] == {
        "method": "GET",
        "path": "/pricing",
        "status": 200,
        "bytes": 2326,
        "protocol": "HTTP/1.1",
    }
    assert "userId" not in page
    assert page["anonymousId"] == visitor_id("2001:db8:85a3::8a2e:370:7334", FIREFOX)

    assert (asset["type"], asset["event"]) == ("track", "http_request")
    assert asset["properties"]["bytes"] == 0  # "-" means no body
    assert asset["anonymousId"] == page["anonymousId"]  # same ip + user agent

    assert (post["type"], post["event"], post["userId"]) == ("track", "http_request", "alice")
    assert post["context"]["userAgent"] == 'Bot "quoted" café/1.0'
    assert "referrer" not in post["context"].get("page", {})

    assert docs["type"] == "page"
    assert docs["context"]["userAgent"] == 'Agent "with quotes"'

    assert scanner["type"] == "track"
    assert scanner["properties"] == {"status": 400, "bytes": 157, "request": r"\x16\x03\x01\x02"}
    assert "userAgent" not in scanner["context"]

    assert not_found["type"] == "track"
    assert not_found["properties"]["status"] == 404


def test_message_ids_are_stable_across_imports(tmp_path: Path) -> None:
    path = write(tmp_path, NGINX_LOG)

    def ids() -> list[str]:
        return [
            item.payload["messageId"]
            for item in AccessLogImporter(path).records()
            if isinstance(item, ImportRecord)
        ]

    first = ids()
    assert first == ids()
    assert len(set(first)) == len(first)
    # CRLF line endings do not change the ids either.
    crlf = write(tmp_path, NGINX_LOG.replace("\n", "\r\n"), "crlf.log")
    assert first == [
        item.payload["messageId"]
        for item in AccessLogImporter(crlf).records()
        if isinstance(item, ImportRecord)
    ]


def test_visitor_id_is_a_32_char_hex_digest() -> None:
    visitor = visitor_id("203.0.113.9", FIREFOX)
    assert len(visitor) == 32
    int(visitor, 16)
    assert visitor != visitor_id("203.0.113.9", "curl/8.5.0")
    assert visitor != visitor_id("203.0.113.10", FIREFOX)


def test_time_keeps_its_offset_and_rejects_impossible_dates() -> None:
    assert parse_log_time("01/Mar/2024:00:00:00 +0530").isoformat() == "2024-03-01T00:00:00+05:30"
    for bad in ("31/Feb/2024:00:00:00 +0000", "01/Foo/2024:00:00:00 +0000", "yesterday"):
        try:
            parse_log_time(bad)
        except ValueError:
            continue
        raise AssertionError(f"{bad!r} parsed")


def test_impossible_date_is_a_failure_not_a_crash(tmp_path: Path) -> None:
    line = '192.0.2.1 - - [31/Feb/2024:00:00:00 +0000] "GET / HTTP/1.1" 200 1 "-" "-"'
    (item,) = AccessLogImporter(write(tmp_path, line)).records()
    assert isinstance(item, ImportFailure)
    assert item.reason == "unparseable_line"


def test_progress_reaches_file_size(tmp_path: Path) -> None:
    path = write(tmp_path, NGINX_LOG)
    importer = AccessLogImporter(path)
    assert importer.position() == 0
    assert importer.size_bytes() == path.stat().st_size
    positions = [importer.position() for _ in importer.records()]
    assert positions == sorted(positions)
    assert 0 < positions[0] < importer.size_bytes()
    assert importer.position() == importer.size_bytes()


def test_gzipped_rotated_log_is_read_and_detected(tmp_path: Path) -> None:
    path = tmp_path / "access.log.2.gz"
    path.write_bytes(gzip.compress(NGINX_LOG.encode()))
    assert detect_format(path) == "accesslog"  # by extension under .gz
    rotated = tmp_path / "access.log.1"
    rotated.write_bytes(gzip.compress(NGINX_LOG.encode()))
    assert detect_format(rotated) == "accesslog"  # by content
    importer = open_importer(path)
    assert isinstance(importer, AccessLogImporter)
    items = list(importer.records())
    assert sum(isinstance(item, ImportRecord) for item in items) == 6
    assert importer.position() == importer.size_bytes()


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(lines=st.lists(st.text(alphabet=st.characters(exclude_categories=["Cs"])), max_size=8))
def test_arbitrary_lines_never_raise(tmp_path: Path, lines: list[str]) -> None:
    path = tmp_path / "fuzz.log"
    path.write_text("\n".join(lines), encoding="utf-8")
    items = list(AccessLogImporter(path).records())
    assert all(isinstance(item, ImportRecord | ImportFailure) for item in items)
    assert all(
        item.reason == "unparseable_line" for item in items if isinstance(item, ImportFailure)
    )


_field = st.text(alphabet=st.characters(exclude_categories=["Cs"]), max_size=12)


@settings(max_examples=80, deadline=None)
@given(
    host=_field,
    user=_field,
    time=st.one_of(_field, st.just("10/Oct/2024:13:55:36 -0700")),
    request=_field,
    status=st.one_of(st.integers(0, 999).map(str), _field),
    size=st.one_of(st.integers(0, 10**6).map(str), st.just("-")),
    referrer=_field,
    agent=_field,
)
def test_log_shaped_lines_with_arbitrary_fields_never_raise(
    host: str, user: str, time: str, request: str, status: str, size: str, referrer: str, agent: str
) -> None:
    line = f'{host} - {user} [{time}] "{request}" {status} {size} "{referrer}" "{agent}"'
    try:
        payload = parse_log_line(line)
    except ValueError:
        return
    assert payload["type"] in ("page", "track")
    assert len(payload["anonymousId"]) == 32


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(content=st.binary(max_size=400))
def test_arbitrary_bytes_never_raise(tmp_path: Path, content: bytes) -> None:
    assume(not content.startswith(b"\x1f\x8b"))  # gzip magic: see test_gzip*
    path = tmp_path / "fuzz.bin"
    path.write_bytes(content)
    importer = AccessLogImporter(path)
    items = list(importer.records())
    assert all(isinstance(item, ImportRecord | ImportFailure) for item in items)
    assert importer.position() == importer.size_bytes()
