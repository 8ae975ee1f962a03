"""Web server access logs (Apache/nginx "combined" and "common" formats).

Every request becomes an event: a ``page`` for a successful GET of a document, otherwise a
``track`` named ``http_request``. Failed requests and asset fetches are kept because they
matter for behaviour analysis (scanners, broken links, bots that never load CSS).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from typing import Any
from urllib.parse import urlsplit

from usertide.importers.base import (
    UNPARSEABLE_LINE,
    Importer,
    ImportFailure,
    ImportRecord,
    failure,
    stable_message_id,
)

REQUEST_EVENT = "http_request"


def _quoted(group: str) -> str:
    """A quoted field as both servers write it: Apache escapes '"' and '\\' with a backslash,
    nginx writes '"' and non-ASCII bytes as \\xHH. Escapes are undone by _unescape()."""
    return rf'"(?P<{group}>(?:[^"\\]|\\.)*)"'


_LOG_LINE = re.compile(
    r"(?P<host>\S+) (?P<ident>\S+) (?P<user>\S+) \[(?P<time>[^\]]+)\] "
    + _quoted("request")
    + r" (?P<status>\d{3}) (?P<size>\d+|-)"
    # "combined" adds referrer and user agent; custom formats often append more fields
    # (request time, X-Forwarded-For…) after them, which we ignore.
    + r"(?: "
    + _quoted("referrer")
    + " "
    + _quoted("agent")
    + r"(?:\s.*)?)?\s*"
)
_LOG_TIME = re.compile(
    r"(?P<day>\d{1,2})/(?P<month>[A-Za-z]{3})/(?P<year>\d{4}):"
    r"(?P<hour>\d{2}):(?P<minute>\d{2}):(?P<second>\d{2}) (?P<offset>[+-]\d{4})"
)
_REQUEST = re.compile(r"(?P<method>[A-Za-z]+) (?P<target>\S+)(?: (?P<protocol>HTTP/[\d.]+))?")
_ESCAPE = re.compile(r"\\(x[0-9A-Fa-f]{2}|.)")
_SIMPLE_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "v": "\v", "b": "\b"}
# Parsed by hand rather than with strptime("%b"), which follows the process locale.
_MONTHS = {
    name: number
    for number, name in enumerate(
        ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"), 1
    )
}
# Requests for these are resources a page loads, not pages a visitor looks at.
_NON_PAGE_EXTENSIONS = frozenset(
    {
        *("css", "js", "mjs", "map", "json", "xml", "txt", "wasm"),
        *("png", "jpg", "jpeg", "gif", "svg", "ico", "webp", "avif", "bmp", "tif", "tiff"),
        *("woff", "woff2", "ttf", "otf", "eot"),
        *("mp4", "webm", "mp3", "ogg", "wav", "m4a", "mov"),
        *("pdf", "zip", "gz", "tgz", "rar", "7z", "exe", "dmg", "apk"),
    }
)


class AccessLogImporter(Importer):
    format = "accesslog"

    def records(self) -> Iterator[ImportRecord | ImportFailure]:
        for number, raw in self._lines():
            text = raw.decode("utf-8", "replace")
            if not text.strip():
                continue
            try:
                payload = parse_log_line(text)
            except ValueError as exc:
                yield failure(number, text, UNPARSEABLE_LINE, str(exc))
                continue
            yield ImportRecord(number, payload)


def is_log_line(text: str) -> bool:
    """Whether a line looks like combined/common log format (used to sniff file formats)."""
    return _LOG_LINE.fullmatch(text) is not None


def parse_log_line(text: str) -> dict[str, Any]:
    """The Segment-spec event for one log line. Raises ValueError when it does not parse."""
    match = _LOG_LINE.fullmatch(text)
    if match is None:
        raise ValueError("not in combined or common log format")
    ip = match["host"]
    user = match["user"]
    status = int(match["status"])
    size = 0 if match["size"] == "-" else int(match["size"])
    request = _unescape(match["request"])
    referrer = _optional(_unescape(match["referrer"] or "-"))
    agent = _optional(_unescape(match["agent"] or "-"))

    properties: dict[str, Any] = {"status": status, "bytes": size}
    page: dict[str, Any] = {}
    request_match = _REQUEST.fullmatch(request)
    method = None
    path = None
    if request_match is None:
        # Malformed requests ("-", TLS handshakes sent to port 80…) are still traffic. Kept as
        # logged: the escaped form stays printable where the decoded one is control bytes.
        properties["request"] = match["request"]
    else:
        method = request_match["method"].upper()
        target = urlsplit(request_match["target"])
        path = target.path or "/"
        properties.update(method=method, path=path)
        if request_match["protocol"]:
            properties["protocol"] = request_match["protocol"]
        page["path"] = path
        if target.query:
            page["search"] = f"?{target.query}"
        if target.scheme and target.netloc:  # absolute-form target, as sent to proxies
            page["url"] = request_match["target"]
    if referrer:
        page["referrer"] = referrer

    is_page_view = method == "GET" and 200 <= status < 400 and _is_document(path or "")
    payload: dict[str, Any] = {"type": "page"}
    if not is_page_view:
        payload = {"type": "track", "event": REQUEST_EVENT}
    if _optional(user):
        payload["userId"] = user
    payload["anonymousId"] = visitor_id(ip, agent)
    payload["messageId"] = stable_message_id(text)
    payload["timestamp"] = parse_log_time(match["time"]).isoformat()
    context: dict[str, Any] = {"ip": ip}
    if agent:
        context["userAgent"] = agent
    if page:
        context["page"] = page
    payload["context"] = context
    payload["properties"] = properties
    return payload


def visitor_id(ip: str, user_agent: str | None) -> str:
    """A stable anonymousId for requests without cookies or login.

    A server log has no client-side id, so (IP, user agent) is the best available stand-in
    for "the same browser": stable across re-imports, distinct for different devices behind
    one NAT in most cases. Hashed so the id does not expose the address it came from.
    """
    digest = hashlib.sha256(f"{ip}\n{user_agent or ''}".encode())
    return digest.hexdigest()[:32]


def parse_log_time(text: str) -> datetime:
    """``10/Oct/2000:13:55:36 -0700`` with its offset preserved."""
    match = _LOG_TIME.fullmatch(text)
    month = _MONTHS.get(match["month"].lower()) if match else None
    if match is None or month is None:
        raise ValueError(f"bad time {text!r}")
    offset = match["offset"]
    sign = -1 if offset[0] == "-" else 1
    delta = timedelta(hours=int(offset[1:3]), minutes=int(offset[3:5]))
    # datetime() raises ValueError for impossible dates (31/Feb) and offsets of a day or more.
    return datetime(
        int(match["year"]),
        month,
        int(match["day"]),
        int(match["hour"]),
        int(match["minute"]),
        int(match["second"]),
        tzinfo=timezone(sign * delta),
    )


def _is_document(path: str) -> bool:
    last_segment = path.rsplit("/", 1)[-1]
    if "." not in last_segment:
        return True
    return last_segment.rsplit(".", 1)[-1].lower() not in _NON_PAGE_EXTENSIONS


def _optional(value: str) -> str | None:
    """Log formats write '-' for a missing value."""
    return None if value in ("-", "") else value


def _unescape(value: str) -> str:
    r"""Undo the servers' escaping: \" and \\ (Apache), \xHH for any byte (both)."""
    if "\\" not in value:
        return value
    chunks: list[bytes] = []
    position = 0
    for escape in _ESCAPE.finditer(value):
        chunks.append(value[position : escape.start()].encode())
        code = escape[1]
        if code[0] == "x" and len(code) == 3:
            chunks.append(bytes([int(code[1:], 16)]))
        else:
            chunks.append(_SIMPLE_ESCAPES.get(code, code).encode())
        position = escape.end()
    chunks.append(value[position:].encode())
    # \xHH sequences are raw bytes, often pieces of UTF-8 characters: decode them together.
    return b"".join(chunks).decode("utf-8", "replace")
