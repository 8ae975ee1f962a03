"""CSV: known columns map onto the Segment spec, the rest become properties.

Column names come from the file's header row or, for headerless exports (Taobao's
UserBehavior.csv and many data dumps), from a list given by the caller.
"""

from __future__ import annotations

import csv
import math
import re
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from usertide.importers.base import (
    SCHEMA_VIOLATION,
    UNPARSEABLE_LINE,
    Importer,
    ImportFailure,
    ImportRecord,
    failure,
    parse_timestamp,
    stable_message_id,
)

# Header spellings accepted for each field, compared after _normalise_header().
_FIELD_ALIASES: dict[str, tuple[str, ...]] = {
    "type": ("type",),
    "event": ("event", "name", "eventname"),
    "user_id": ("userid",),
    "anonymous_id": ("anonymousid",),
    "timestamp": ("timestamp", "time", "ts"),
    "message_id": ("messageid", "id"),
    "ip": ("ip",),
    "user_agent": ("useragent",),
    "url": ("url",),
    "path": ("path",),
    "referrer": ("referrer", "referer"),
    "title": ("title",),
}
_FIELD_BY_HEADER = {alias: field for field, aliases in _FIELD_ALIASES.items() for alias in aliases}
_PAGE_FIELDS = ("url", "path", "referrer", "title")  # same names in context.page

# Decimal numbers as people write them. Leading zeros ("007", zip codes) stay text, and so
# do "nan"/"inf", which float() would otherwise accept. Integers over 18 digits stay text too:
# they are identifiers, and as numbers they would overflow int64 or be rounded downstream.
_INTEGER = re.compile(r"-?(?:0|[1-9]\d{0,17})")
_DECIMAL = re.compile(r"-?(?:0|[1-9]\d*)(?:\.\d+|(?:\.\d+)?[eE][+-]?\d+)")


class CsvImporter(Importer):
    format = "csv"

    def __init__(self, path: Path, columns: Sequence[str] | None = None) -> None:
        """``columns``: the names of a headerless file's columns; every line is then data.

        Raises ValueError for an empty list or a name given twice (one of the two
        columns' cells would silently be lost).
        """
        super().__init__(path)
        self.columns = None if columns is None else _given_names(columns)

    def records(self) -> Iterator[ImportRecord | ImportFailure]:
        consumed: list[str] = []  # physical lines of the record being read, for failures
        line_count = 0

        def text_lines() -> Iterator[str]:
            nonlocal line_count
            for number, raw in self._lines():
                line_count = number
                text = raw.decode("utf-8", "replace")
                consumed.append(text)
                yield text + "\n"

        reader = csv.reader(text_lines())
        header: list[str] | None = None if self.columns is None else list(self.columns)
        while True:
            consumed.clear()
            start_line = line_count + 1
            try:
                row = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                yield failure(start_line, "\n".join(consumed), UNPARSEABLE_LINE, str(exc))
                continue
            if not any(cell.strip() for cell in row):
                continue
            raw = "\n".join(consumed)
            if header is None:
                header = _header_names(row)
                continue
            if len(row) > len(header):
                named = "the header has" if self.columns is None else "the columns given are"
                message = f"row has {len(row)} fields but {named} {len(header)}"
                yield failure(start_line, raw, SCHEMA_VIOLATION, message)
                continue
            try:
                payload = row_to_event(header, row)
            except ValueError as exc:
                yield failure(start_line, raw, SCHEMA_VIOLATION, str(exc))
                continue
            payload.setdefault("messageId", stable_message_id(raw))
            yield ImportRecord(start_line, payload)


def _normalise_header(name: str) -> str:
    return re.sub(r"[\s_\-]", "", name).lower()


def _header_names(row: list[str]) -> list[str]:
    # Unnamed columns still carry data; give them a name rather than dropping it silently.
    return [name.strip() or f"column_{index}" for index, name in enumerate(row, 1)]


def _given_names(columns: Sequence[str]) -> list[str]:
    names = [name.strip() for name in columns]
    if not names or not any(names):
        raise ValueError("no column names given")
    names = _header_names(names)
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise ValueError(f"column {name!r} is named twice")
        seen.add(name)
    return names


def row_to_event(header: list[str], row: list[str]) -> dict[str, Any]:
    """The Segment-spec dict for one data row. Raises ValueError for a bad timestamp."""
    known: dict[str, str] = {}
    extra: dict[str, Any] = {}
    # Short rows are common in hand-edited files: missing trailing cells read as empty.
    for column, cell in zip(header, row, strict=False):
        value = cell.strip()
        if not value:
            continue
        field = _FIELD_BY_HEADER.get(_normalise_header(column))
        if field is None:
            extra[column] = parse_number(value)
        else:
            known.setdefault(field, value)

    name = known.get("event")
    event_type = known.get("type", "").lower()
    if not event_type:
        is_page_view = name is None and ("url" in known or "path" in known)
        event_type = "page" if is_page_view else "track"

    payload: dict[str, Any] = {"type": event_type}
    if name is not None:
        payload["name" if event_type in ("page", "screen") else "event"] = name
    if "user_id" in known:
        payload["userId"] = known["user_id"]
    if "anonymous_id" in known:
        payload["anonymousId"] = known["anonymous_id"]
    if "message_id" in known:
        payload["messageId"] = known["message_id"]
    if "timestamp" in known:
        payload["timestamp"] = parse_timestamp(known["timestamp"])

    context: dict[str, Any] = {}
    if "ip" in known:
        context["ip"] = known["ip"]
    if "user_agent" in known:
        context["userAgent"] = known["user_agent"]
    page = {field: known[field] for field in _PAGE_FIELDS if field in known}
    if page:
        context["page"] = page
    if context:
        payload["context"] = context
    # identify (and group) describe the user rather than an action: extra columns are traits.
    payload["traits" if event_type in ("identify", "group") else "properties"] = extra
    return payload


def parse_number(text: str) -> int | float | str:
    if _INTEGER.fullmatch(text):
        return int(text)
    if _DECIMAL.fullmatch(text):
        number = float(text)
        if math.isfinite(number):
            return number
    return text
