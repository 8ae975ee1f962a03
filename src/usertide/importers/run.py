"""``usertide import FILE``: load historical events into the embedded store.

Each record goes through the same normalization and enrichment as the HTTP collector;
records that fail are kept in the failed-events store with their line. The engine
picks the new events up from the log the next time the service starts.

When ``usertide serve`` runs on the data dir it holds the store, so the records go
through it instead (``importers.remote``), found by its runtime file.
"""

from __future__ import annotations

import shlex
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import psutil
from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn

from usertide import runtime_file
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
from usertide.importers.base import until_damage
from usertide.importers.remote import ImportAborted, RemoteResult, send_file
from usertide.log import Loader, open_segments
from usertide.runtime_file import RuntimeInfo
from usertide.store import DuckDBStore, Store, StoreLocked

CHUNK = 2_000
# Lines that could not be sent, listed after the summary of an import through the server.
_SHOWN_UNSENT = 5


def import_file(
    path: Path,
    store: Store,
    *,
    fmt: str | None = None,
    columns: Sequence[str] | None = None,
    progress: Progress | None = None,
) -> tuple[int, int, int]:
    """Returns (events stored, duplicates skipped, failed records).

    ``columns`` names the columns of a headerless CSV file.
    """
    settings = load_settings()
    enrichers = build_enrichers(settings.geoip_city_db, settings.geoip_asn_db, settings.ip_policy)
    importer = open_importer(path, fmt, columns=columns)
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

    for record in until_damage(importer.records(), flush):
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


def run_import(
    path: Path,
    *,
    data_dir: Path | None = None,
    fmt: str | None = None,
    columns: Sequence[str] | None = None,
) -> int:
    console = Console()
    if not path.is_file():
        console.print(f"[red]no such file: {path}")
        return 2
    settings = load_settings(data_dir=data_dir)
    server = runtime_file.live_server(settings.data_dir)
    if server is not None:
        return _import_through(server, path, settings.data_dir, fmt, columns, console)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    try:
        store = DuckDBStore(settings.db_path)
    except StoreLocked as exc:
        Console(stderr=True).print(_locked(exc, settings.data_dir), markup=False, highlight=False)
        return 1
    try:
        store.migrate()
        _load_log(settings.log_dir, store)
        progress = _progress(path, console)
        with progress:
            stored, duplicates, failures = import_file(
                path, store, fmt=fmt, columns=columns, progress=progress
            )
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


def _progress(path: Path, console: Console) -> Progress:
    return Progress(
        TextColumn(f"[bold blue]importing {path.name}"),
        BarColumn(),
        DownloadColumn(),
        TimeRemainingColumn(),
        console=console,
    )


def _import_through(
    server: RuntimeInfo,
    path: Path,
    data_dir: Path,
    fmt: str | None,
    columns: Sequence[str] | None,
    console: Console,
) -> int:
    console.print(
        f"importing through the running server at {server.url}", markup=False, highlight=False
    )
    progress = _progress(path, console)
    try:
        with progress:
            result = send_file(path, server, data_dir, fmt=fmt, columns=columns, progress=progress)
    except ValueError as exc:  # unknown format or a damaged file; what was sent is kept
        console.print(f"cannot import {path}: {exc}", style="red", markup=False, highlight=False)
        return 2
    except ImportAborted as exc:
        Console(stderr=True).print(
            f"cannot finish the import: {exc}. The server keeps the {exc.accepted:,} events "
            "it accepted; running the same import again is safe, since events it already "
            "holds (same messageId) are skipped.",
            markup=False,
            highlight=False,
        )
        return 1
    console.print(_remote_summary(result), markup=False, highlight=False)
    return 0


def _remote_summary(result: RemoteResult) -> str:
    text = (
        f"{result.accepted:,} events accepted by the server (it skips those it already "
        f"holds), {result.failed:,} records kept there as failed events"
    )
    if not result.unsent:
        return text
    lines = [f"{text}; {len(result.unsent):,} lines were not sent:"]
    lines += [f"  line {line}: {message}" for line, message in result.unsent[:_SHOWN_UNSENT]]
    if len(result.unsent) > _SHOWN_UNSENT:
        lines.append(f"  ... and {len(result.unsent) - _SHOWN_UNSENT:,} more")
    return "\n".join(lines)


def _locked(exc: StoreLocked, data_dir: Path) -> str:
    """The one-paragraph explanation of a store another process holds."""
    holder = "another process"
    if exc.pid is not None:
        holder = f"process {exc.pid} ({_command_line(exc.pid) or exc.program or 'unknown'})"
    return (
        f"cannot import: the store in {data_dir} is in use by {holder}, and no running "
        "usertide server was found there to import through. If that process is another "
        "import, wait for it to finish; if it is `usertide serve`, check that it answers "
        f"GET /healthz and that this user can read {data_dir / runtime_file.FILE} (run the "
        "import as the user the server runs as); otherwise stop it. Then run the import "
        "again."
    )


def _command_line(pid: int) -> str | None:
    try:
        words = psutil.Process(pid).cmdline()
    except (psutil.Error, OSError):
        return None
    text = shlex.join(words)
    return text if len(text) <= 200 else text[:197] + "..."
