"""``usertide import FILE``: load historical events into the embedded store.

Each record goes through the same normalization and enrichment as the HTTP collector;
records that fail are kept in the failed-events store with their line. The engine
picks the new events up from the log the next time the service starts.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn

from usertide.capture.base import (
    CaptureRequest,
    ParsedBatch,
    drop_unstorable,
    failed_body,
    failed_from,
)
from usertide.capture.errors import ItemError
from usertide.capture.segment import normalize_item
from usertide.config import load_settings
from usertide.enrich import build_enrichers
from usertide.events import Event, FailedEvent, FailureReason
from usertide.importers import ImportFailure, open_importer
from usertide.log import Loader, open_segments
from usertide.store import DuckDBStore, Store

CHUNK = 2_000


def import_file(
    path: Path, store: Store, *, fmt: str | None = None, progress: Progress | None = None
) -> tuple[int, int, int]:
    """Returns (events stored, duplicates skipped, failed records)."""
    settings = load_settings()
    enrichers = build_enrichers(settings.geoip_city_db, settings.geoip_asn_db, settings.ip_policy)
    importer = open_importer(path, fmt)
    task = progress.add_task("import", total=importer.size_bytes()) if progress else None
    stored = duplicates = failures = 0
    events: list[Event] = []
    failed: list[FailedEvent] = []

    def flush() -> None:
        nonlocal stored, duplicates
        appended = store.append_events(events)
        stored += len(appended)
        duplicates += len(events) - len(appended)
        store.append_failed(failed)
        events.clear()
        failed.clear()
        if progress is not None and task is not None:
            progress.update(task, completed=importer.position())

    for record in importer.records():
        received_at = datetime.now(UTC)
        if isinstance(record, ImportFailure):
            failures += 1
            reason = _reason(record.reason)
            failed.append(
                failed_body(
                    reason,
                    f"line {record.line}: {record.message}",
                    record.raw.encode(),
                    received_at,
                    f"import:{path.name}",
                )
            )
        else:
            request = CaptureRequest(
                endpoint="batch", received_at=received_at, max_event_bytes=settings.max_event_bytes
            )
            try:
                event = normalize_item(record.payload, request, {}, None, None)
            except ItemError as exc:
                failures += 1
                failure = failed_from(exc, record.payload, request, f"import:{path.name}", -1)
                failure.message = f"line {record.line}: {exc.message}"
                failed.append(failure)
                continue
            event.source = "import"
            enrichers.enrich(event)
            single = ParsedBatch(events=[event], failed=[], errors=[], write_key=None, single=True)
            drop_unstorable(single, request, f"import:{path.name}")
            events.extend(single.events)
            failed.extend(single.failed)
            failures += len(single.failed)
        if len(events) + len(failed) >= CHUNK:
            flush()
    flush()
    if progress is not None and task is not None:
        progress.update(task, completed=importer.size_bytes())
    return stored, duplicates, failures


def _reason(text: str) -> FailureReason:
    try:
        return FailureReason(text)
    except ValueError:
        return FailureReason.UNPARSEABLE_LINE


def _load_log(directory: Path, store: Store) -> None:
    """Bring the store up to the service's log first (records acknowledged before a
    crash), so imported events take offsets after them."""
    segments = open_segments(directory, store)
    try:
        Loader(store, segments).recover()
    finally:
        segments.close()


def run_import(path: Path, *, data_dir: Path | None = None, fmt: str | None = None) -> int:
    console = Console()
    if not path.is_file():
        console.print(f"[red]no such file: {path}")
        return 2
    settings = load_settings(data_dir=data_dir)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    store = DuckDBStore(settings.db_path)
    try:
        store.migrate()
        _load_log(settings.log_dir, store)
        progress = Progress(
            TextColumn(f"[bold blue]importing {path.name}"),
            BarColumn(),
            DownloadColumn(),
            TimeRemainingColumn(),
            console=console,
        )
        with progress:
            stored, duplicates, failures = import_file(path, store, fmt=fmt, progress=progress)
    except ValueError as exc:  # unknown format or a damaged file; what was read is kept
        console.print(f"[red]cannot import {path}: {exc}")
        return 2
    finally:
        store.close()
    console.print(
        f"{stored:,} events stored, {duplicates:,} already present, "
        f"{failures:,} records kept as failed events (in {settings.db_path})"
    )
    return 0
