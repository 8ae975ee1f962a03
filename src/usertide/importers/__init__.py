"""File importers: JSON lines, CSV and web server access logs, as Segment-spec events."""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from pathlib import Path

from usertide.importers.accesslog import AccessLogImporter, is_log_line
from usertide.importers.base import CorruptFileError, Importer, ImportFailure, ImportRecord
from usertide.importers.csvfile import CsvImporter
from usertide.importers.jsonl import JsonLinesImporter

IMPORTERS: dict[str, type[Importer]] = {
    importer.format: importer for importer in (JsonLinesImporter, CsvImporter, AccessLogImporter)
}
FORMATS = tuple(IMPORTERS)

_FORMAT_BY_EXTENSION = {
    ".jsonl": JsonLinesImporter.format,
    ".ndjson": JsonLinesImporter.format,
    ".json": JsonLinesImporter.format,
    ".csv": CsvImporter.format,
    ".log": AccessLogImporter.format,
}
# Enough to hold the first line of any sane file; sniffing must not read a whole log.
_SNIFF_BYTES = 64 * 1024


def detect_format(path: Path | str) -> str:
    """The importer format for a file: by extension (ignoring ``.gz``), else by content.

    Raises ValueError when neither tells (e.g. an empty file with an unknown extension).
    """
    path = Path(path)
    suffixes = [suffix.lower() for suffix in path.suffixes]
    if suffixes and suffixes[-1] == ".gz":
        suffixes.pop()
    if suffixes and suffixes[-1] in _FORMAT_BY_EXTENSION:
        return _FORMAT_BY_EXTENSION[suffixes[-1]]
    line = _first_nonblank_line(path)
    if line is None:
        raise ValueError(f"cannot detect the format of {path}: no content")
    if line.startswith("{"):
        return JsonLinesImporter.format
    if is_log_line(line):
        return AccessLogImporter.format
    if "," in line:
        return CsvImporter.format
    raise ValueError(f"cannot detect the format of {path}; pass one of {', '.join(FORMATS)}")


def open_importer(
    path: Path | str, fmt: str | None = None, *, columns: Sequence[str] | None = None
) -> Importer:
    """An importer for ``path``, of format ``fmt`` or the detected one.

    ``columns`` names the columns of a headerless CSV file (so it implies ``csv``).
    """
    path = Path(path)
    if columns is not None:
        if fmt not in (None, CsvImporter.format):
            raise ValueError(f"column names apply to csv files, not to {fmt!r}")
        return CsvImporter(path, columns)
    fmt = fmt or detect_format(path)
    try:
        importer_class = IMPORTERS[fmt]
    except KeyError:
        raise ValueError(f"unknown import format {fmt!r}; expected one of {FORMATS}") from None
    return importer_class(path)


def _first_nonblank_line(path: Path) -> str | None:
    with path.open("rb") as disk:
        head = disk.read(_SNIFF_BYTES)
    if head.startswith(b"\x1f\x8b"):
        # A bare decompressor returns what it can from a partial stream, where GzipFile
        # would raise because the head we read is (usually) not the whole file.
        try:
            head = zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(head, _SNIFF_BYTES)
        except zlib.error as exc:
            raise CorruptFileError(f"{path}: compressed data is damaged: {exc}") from exc
    text = head.decode("utf-8", "replace").removeprefix("\ufeff")
    for line in text.splitlines():
        if line.strip():
            return line.strip()
    return None


__all__ = [
    "FORMATS",
    "IMPORTERS",
    "AccessLogImporter",
    "CorruptFileError",
    "CsvImporter",
    "ImportFailure",
    "ImportRecord",
    "Importer",
    "JsonLinesImporter",
    "detect_format",
    "open_importer",
]
