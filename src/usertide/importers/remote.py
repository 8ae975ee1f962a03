"""Importing through the running service: the file's records go to its ``POST /v1/batch``.

``usertide import`` takes this path when ``usertide serve`` runs on the data dir (the
server holds the store; see ``usertide.runtime_file``). The server validates, enriches and
stores the events as it does any batch, and its engine takes them at once. Batches stay
at half the server's body limit; every record keeps its ``messageId``, so a batch sent
again after a lost answer (or a second import of the same file) is stored once.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import httpx
import msgspec
from rich.progress import Progress

from usertide import runtime_file
from usertide.importers import ImportFailure, open_importer
from usertide.importers.base import until_damage
from usertide.runtime_file import RuntimeInfo

_OVERHEAD = len(b'{"batch":[]}')
# How long one batch may keep failing (connection refused, 503, 429) before giving up:
# long enough for the server to restart.
GIVE_UP_AFTER = 60.0
_FIRST_DELAY = 0.2
_MAX_DELAY = 5.0
_MAX_RETRY_AFTER = 30.0
_TIMEOUT = httpx.Timeout(60.0, connect=5.0)


class Unsent(NamedTuple):
    line: int
    message: str


@dataclass
class RemoteResult:
    accepted: int = 0  # events the server took (those it already held are skipped there)
    failed: int = 0  # records the server refused and kept as failed events
    unsent: list[Unsent] = field(default_factory=list)  # lines not sent: unreadable, too big


class ImportAborted(Exception):
    """The server stopped taking the import; the message says why."""

    accepted = 0  # events the server had accepted before


class BatchSender:
    """Sends batches to the server, retrying until it answers or :data:`GIVE_UP_AFTER`."""

    def __init__(
        self,
        info: RuntimeInfo,
        data_dir: Path,
        client: httpx.Client,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.info = info
        self.data_dir = data_dir
        self.client = client
        self.sleep = sleep

    def send(self, items: list[bytes]) -> tuple[int, int]:
        """(accepted, failed) for one batch of encoded Segment events."""
        body = b'{"batch":[' + b",".join(items) + b"]}"
        delay = _FIRST_DELAY
        deadline = time.monotonic() + GIVE_UP_AFTER
        looked_again = False
        while True:
            wait = delay
            try:
                answer = self.client.post(
                    f"{self.info.url}/v1/batch", content=body, headers=self._headers()
                )
            except httpx.TransportError as exc:
                problem = f"cannot reach it ({exc or type(exc).__name__})"
                self._follow_restart()
            else:
                document = _json(answer)
                counts = _counts(answer.status_code, document)
                if counts is not None:
                    return counts
                status = answer.status_code
                problem = f"it answers {status}: {_message(document)}"
                if status == 401:
                    # A restarted server has a new token (and a stopped one none).
                    if not looked_again and self._follow_restart():
                        looked_again = True
                        continue
                    raise ImportAborted(
                        f"the server at {self.info.url} no longer takes this import's token "
                        "(it stopped or restarted)"
                    )
                if status != 429 and status < 500:
                    raise ImportAborted(f"the server at {self.info.url} refused a batch: {problem}")
                wait = _retry_after(answer) or delay
            if time.monotonic() + wait > deadline:
                raise ImportAborted(
                    f"gave up on the server at {self.info.url} after {GIVE_UP_AFTER:.0f} s: "
                    f"{problem}"
                )
            self.sleep(wait)
            delay = min(delay * 2, _MAX_DELAY)

    def _headers(self) -> dict[str, str]:
        return {
            "Authorization": runtime_file.authorization(self.info.token),
            "Content-Type": "application/json",
        }

    def _follow_restart(self) -> bool:
        """Switch to the server now running on the data dir if it is a new one."""
        info = runtime_file.live_server(self.data_dir)
        if info is None or info.token == self.info.token:
            return False
        self.info = info
        return True


def send_file(
    path: Path,
    info: RuntimeInfo,
    data_dir: Path,
    *,
    fmt: str | None = None,
    columns: Sequence[str] | None = None,
    progress: Progress | None = None,
) -> RemoteResult:
    """Send every record of ``path`` to the server described by ``info``."""
    importer = open_importer(path, fmt, columns=columns)
    task = progress.add_task("import", total=importer.size_bytes()) if progress else None
    result = RemoteResult()
    target = max(1, info.max_batch_bytes // 2)
    batch: list[bytes] = []
    size = _OVERHEAD
    # No User-Agent: the server would give it to events that name none (it does not give
    # them the client address of an import, see usertide.server). trust_env=False: no
    # proxy from the environment gets the token.
    with httpx.Client(timeout=_TIMEOUT, trust_env=False) as client:
        del client.headers["User-Agent"]
        sender = BatchSender(info, data_dir, client)

        def flush() -> None:
            nonlocal size
            if batch:
                accepted, failed = sender.send(batch)
                result.accepted += accepted
                result.failed += failed
                batch.clear()
                size = _OVERHEAD
            if progress is not None and task is not None:
                progress.update(task, completed=importer.position())

        try:
            for record in until_damage(importer.records(), flush):
                if isinstance(record, ImportFailure):
                    result.unsent.append(Unsent(record.line, record.message))
                    continue
                item = _encode(record.payload)
                problem = _unsendable(item, sender.info.max_batch_bytes)
                if problem or item is None:
                    result.unsent.append(Unsent(record.line, problem))
                    continue
                if batch and size + len(item) + 1 > target:
                    flush()
                batch.append(item)
                size += len(item) + 1
            flush()
        except ImportAborted as exc:
            exc.accepted = result.accepted
            raise
    if progress is not None and task is not None:
        progress.update(task, completed=importer.size_bytes())
    return result


def _encode(payload: dict[str, Any]) -> bytes | None:
    # A writeKey inside an exported event would conflict with the import token; the
    # direct import ignores it too.
    payload.pop("writeKey", None)
    try:
        return msgspec.json.encode(payload)
    except (msgspec.EncodeError, OverflowError, TypeError):
        return None


def _unsendable(item: bytes | None, max_batch_bytes: int) -> str:
    if item is None:
        return "the event cannot be encoded as JSON"
    if _OVERHEAD + len(item) > max_batch_bytes:
        return f"the event is larger than the server's {max_batch_bytes:,}-byte batch limit"
    return ""


def _json(answer: httpx.Response) -> Any:
    try:
        return answer.json()
    except ValueError:
        return None


def _counts(status: int, document: Any) -> tuple[int, int] | None:
    """(accepted, failed) from the answer to a batch the server took: 200, or 400 when
    every event in it failed (and was kept as a failed event)."""
    if status not in (200, 400) or not isinstance(document, dict):
        return None
    accepted, failed = document.get("accepted"), document.get("failed")
    if not isinstance(accepted, int) or not isinstance(failed, int):
        return None
    return accepted, failed


def _message(document: Any) -> str:
    error = document.get("error") if isinstance(document, dict) else None
    if isinstance(error, dict) and isinstance(error.get("message"), str):
        return str(error["message"])
    return "no error message"


def _retry_after(answer: httpx.Response) -> float | None:
    try:
        seconds = float(answer.headers.get("Retry-After", ""))
    except ValueError:
        return None
    return min(max(seconds, 0.0), _MAX_RETRY_AFTER)
