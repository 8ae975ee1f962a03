"""Group commit: concurrent requests share one durable append to the log.

Requests hand their events to :meth:`GroupCommitter.append` and wait. One writer
thread takes everything pending, appends it in a single store commit, then wakes every
waiter. A request is answered only after its events are durable, and the cost of a
commit is shared by all the requests that arrived while the previous one ran.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence

from usertide.events import Event, FailedEvent
from usertide.metrics import Metrics
from usertide.store.base import Store

log = logging.getLogger(__name__)

OnCommit = Callable[[list[Event], float], None]


class LogUnavailable(Exception):
    """The log cannot take writes now (overloaded, failing, or shutting down)."""


class _Pending:
    __slots__ = ("events", "failed", "future", "loop")

    def __init__(
        self,
        events: Sequence[Event],
        failed: Sequence[FailedEvent],
        future: asyncio.Future[int],
        loop: asyncio.AbstractEventLoop,
    ) -> None:
        self.events = events
        self.failed = failed
        self.future = future
        self.loop = loop


class GroupCommitter:
    def __init__(
        self,
        store: Store,
        *,
        on_commit: OnCommit | None = None,
        metrics: Metrics | None = None,
        max_pending_events: int = 200_000,
        max_commit_events: int = 20_000,
    ) -> None:
        self.store = store
        self.on_commit = on_commit
        self.metrics = metrics or Metrics()
        self.max_pending_events = max_pending_events
        self.max_commit_events = max_commit_events
        self._pending: deque[_Pending] = deque()
        self._pending_events = 0
        self._cond = threading.Condition()
        # Serializes commits (writer thread and direct imports) without holding the
        # queue's lock, so requests can keep enqueueing while a commit runs.
        self._commit_lock = threading.Lock()
        self._stopping = False
        self._thread: threading.Thread | None = None
        self.healthy = True
        self.last_offset = 0

    def start(self) -> None:
        self.last_offset = self.store.last_offset()
        self._thread = threading.Thread(target=self._run, name="usertide-log", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    async def append(self, events: Sequence[Event], failed: Sequence[FailedEvent] = ()) -> int:
        """Wait until ``events`` and ``failed`` are durable; returns how many events
        were new (not duplicates)."""
        if not events and not failed:
            return 0
        loop = asyncio.get_running_loop()
        future: asyncio.Future[int] = loop.create_future()
        with self._cond:
            if self._stopping:
                raise LogUnavailable("the service is shutting down")
            if self._pending_events + len(events) > self.max_pending_events:
                raise LogUnavailable("the event log is behind; retry shortly")
            self._pending.append(_Pending(events, failed, future, loop))
            self._pending_events += len(events)
            self._cond.notify()
        return await future

    def append_sync(self, events: Sequence[Event], failed: Sequence[FailedEvent] = ()) -> int:
        """The same for callers outside the event loop (imports); commits directly."""
        with self._commit_lock:
            return self._commit_now(list(events), list(failed))[0]

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._pending and not self._stopping:
                    self._cond.wait()
                if not self._pending and self._stopping:
                    return
                taken: list[_Pending] = []
                count = 0
                while self._pending and (not taken or count < self.max_commit_events):
                    item = self._pending.popleft()
                    taken.append(item)
                    count += len(item.events)
                self._pending_events -= count
            self._commit(taken)

    def _commit(self, taken: list[_Pending]) -> None:
        events = [e for item in taken for e in item.events]
        failed = [f for item in taken for f in item.failed]
        try:
            with self._commit_lock:
                _, appended = self._commit_now(events, failed)
        except Exception as exc:
            log.exception("log commit failed")
            self.healthy = False
            for item in taken:
                item.loop.call_soon_threadsafe(_fail, item.future, exc)
            return
        self.healthy = True
        new_ids = {e.id for e in appended}
        for item in taken:
            fresh = sum(1 for e in item.events if e.id in new_ids)
            item.loop.call_soon_threadsafe(_resolve, item.future, fresh)

    def _commit_now(
        self, events: list[Event], failed: list[FailedEvent]
    ) -> tuple[int, list[Event]]:
        started = time.monotonic()
        appended = self.store.append_events(events) if events else []
        if failed:
            self.store.append_failed(failed)
        committed_at = time.monotonic()
        m = self.metrics
        m.commit_latency.observe(committed_at - started)
        m.commit_size.observe(len(events))
        m.events_stored.inc(len(appended))
        if len(appended) < len(events):
            m.events_duplicate.inc(len(events) - len(appended))
        if appended:
            last = appended[-1].offset
            if last is not None:
                m.log_offset.set(last)
                self.last_offset = last
            if self.on_commit is not None:
                self.on_commit(appended, committed_at)
        return len(appended), appended


def _resolve(future: asyncio.Future[int], value: int) -> None:
    if not future.done():
        future.set_result(value)


def _fail(future: asyncio.Future[int], exc: Exception) -> None:
    if not future.done():
        future.set_exception(LogUnavailable(f"the event log cannot take writes: {exc}"))
