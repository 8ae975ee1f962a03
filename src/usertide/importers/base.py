"""The importer contract and the helpers every file format shares.

An importer turns a file into Segment-spec event dicts, one :class:`ImportRecord` per event
or one :class:`ImportFailure` per line it could not read. Importers check syntax and map
columns; the ingest path that receives the records applies the same validation as the HTTP
collector (identity, event name, size…), so those rules live in one place.
"""

from __future__ import annotations

import gzip
import io
import math
import uuid
import zlib
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar, NamedTuple

from usertide.events.failed import FailureReason, clip_raw

MALFORMED_JSON = FailureReason.MALFORMED_JSON.value
UNPARSEABLE_LINE = FailureReason.UNPARSEABLE_LINE.value
SCHEMA_VIOLATION = FailureReason.SCHEMA_VIOLATION.value

_GZIP_MAGIC = b"\x1f\x8b"
_UTF8_BOM = b"\xef\xbb\xbf"
# Fixed so derived message ids are the same on every machine and every run.
_IMPORT_NAMESPACE = uuid.UUID("6f1d2c3a-8b4e-5f60-9a7b-1c2d3e4f5a6b")


class ImportRecord(NamedTuple):
    line: int  # 1-based line where the event starts
    payload: dict[str, Any]  # a Segment-spec event dict


class ImportFailure(NamedTuple):
    line: int
    raw: str  # the offending input, clipped like server-side failed events
    reason: str  # "malformed_json" | "unparseable_line" | "schema_violation"
    message: str


class Importer(ABC):
    format: ClassVar[str]

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._position = 0

    @abstractmethod
    def records(self) -> Iterator[ImportRecord | ImportFailure]:
        """Yield one record or failure per event-bearing line, in file order."""

    def size_bytes(self) -> int:
        """Size of the file on disk (compressed size for ``.gz`` files)."""
        return self.path.stat().st_size

    def position(self) -> int:
        """Bytes of the file on disk consumed so far; reaches :meth:`size_bytes` at the end."""
        return self._position

    def _lines(self) -> Iterator[tuple[int, bytes]]:
        """Physical lines numbered from 1, without line terminator or UTF-8 BOM.

        Gzip files (rotated web server logs usually are) are decompressed transparently;
        progress is then measured in compressed bytes, matching :meth:`size_bytes`.
        Raises :class:`CorruptFileError` if compressed data ends early or is damaged, after
        yielding every line before the damage.
        """
        self._position = 0
        number = 0
        with self.path.open("rb") as disk:
            compressed = disk.read(2) == _GZIP_MAGIC
            disk.seek(0)
            stream: io.BufferedIOBase = gzip.GzipFile(fileobj=disk) if compressed else disk
            try:
                for number, line in enumerate(stream, 1):
                    self._position = disk.tell() if compressed else self._position + len(line)
                    if number == 1 and line.startswith(_UTF8_BOM):
                        line = line[len(_UTF8_BOM) :]
                    yield number, line.rstrip(b"\r\n")
            except (EOFError, gzip.BadGzipFile, zlib.error) as exc:
                # A whole-file problem, not a bad line: typically a log still being rotated.
                raise CorruptFileError(
                    f"{self.path}: compressed data is damaged after line {number}: {exc}"
                ) from exc
            self._position = disk.tell()


class CorruptFileError(ValueError):
    """The file cannot be read to the end (damaged or truncated gzip data)."""


def until_damage(
    records: Iterator[ImportRecord | ImportFailure], flush: Callable[[], None]
) -> Iterator[ImportRecord | ImportFailure]:
    """``records``, calling ``flush`` before a :class:`CorruptFileError` goes on, so what
    was read before the damage is kept."""
    try:
        yield from records
    except CorruptFileError:
        flush()
        raise


def failure(line: int, raw: str | bytes, reason: str, message: str) -> ImportFailure:
    return ImportFailure(line, clip_raw(raw), reason, message)


def stable_message_id(raw_line: str) -> str:
    """A UUID derived from the line's text: re-importing the same file yields the same ids,
    so the server's messageId de-duplication makes imports idempotent."""
    return str(uuid.uuid5(_IMPORT_NAMESPACE, raw_line))


def iso_utc(moment: datetime) -> str:
    """ISO-8601 in UTC with millisecond precision and a ``Z`` suffix (Segment's style)."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_timestamp(value: object) -> str:
    """Normalise an ISO-8601 string or a unix time (s, ms or µs) to an ISO-8601 UTC string.

    Naive ISO times are taken as UTC. Raises ValueError for anything else.
    """
    if isinstance(value, bool):
        raise ValueError(f"not a timestamp: {value!r}")
    if isinstance(value, int | float):
        return _from_epoch(float(value))
    if not isinstance(value, str):
        raise ValueError(f"not a timestamp: {value!r}")
    text = value.strip()
    try:
        return _from_epoch(float(text))
    except ValueError:
        pass
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"not an ISO-8601 or unix timestamp: {value!r}") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return iso_utc(moment)


def _from_epoch(seconds: float) -> str:
    if not math.isfinite(seconds):
        raise ValueError(f"not a timestamp: {seconds!r}")
    # Unix seconds pass 1e11 only in the year 5138, so larger numbers are ms (or µs past 1e14).
    magnitude = abs(seconds)
    if magnitude >= 1e14:
        seconds /= 1e6
    elif magnitude >= 1e11:
        seconds /= 1e3
    try:
        return iso_utc(datetime.fromtimestamp(seconds, UTC))
    except (OverflowError, OSError, ValueError):
        raise ValueError(f"unix timestamp out of range: {seconds!r}") from None
