"""Group commit: concurrent requests share one durable append to the log.

Requests hand their events to :meth:`GroupCommitter.append` and wait. One writer
thread takes everything pending, writes it to the log's segment files with one fsync,
then wakes every waiter and hands the stretch to the :class:`Loader` (store, engine).
A request is answered only after its events are durable, and the cost of an fsync is
shared by all the requests that arrived while the previous one ran.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections import deque
from collections.abc import Sequence
from typing import Protocol

from usertide.events import Event, FailedEvent
from usertide.log.loader import Loader
from usertide.log.records import to_records
from usertide.log.segments import SegmentLog
from usertide.metrics import Metrics

log = logging.getLogger(__name__)


class LogObserver(Protocol):
    def taken(self, events: Sequence[Event]) -> None: ...
    def lost(self, events: Sequence[Event]) -> None: ...


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
        segments: SegmentLog,
        loader: Loader,
        *,
        metrics: Metrics | None = None,
        max_pending_events: int = 200_000,
        max_commit_events: int = 20_000,
    ) -> None:
        self.segments = segments
        self.loader = loader
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
        self.last_offset = segments.last_offset
        # Told of the events the log takes, in log order (at once: their offsets are set
        # when they are durable), and of those a failed write lost (the risk API's view
        # of sign-ins the engine has not applied yet).
        self.observers: list[LogObserver] = []

    def start(self) -> None:
        self.last_offset = self.segments.last_offset
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
        """Wait until ``events`` and ``failed`` are durable in the log; returns the
        log offset of the last one. Duplicates are dropped later, when loading."""
        if not events and not failed:
            return 0
        return await self.enqueue(events, failed)

    def enqueue(
        self, events: Sequence[Event], failed: Sequence[FailedEvent] = ()
    ) -> asyncio.Future[int]:
        """Take ``events`` into the log's queue now (their place in the log is fixed:
        the writer commits in this order) and return the future of their durability."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[int] = loop.create_future()
        with self._cond:
            if self._stopping:
                raise LogUnavailable("the service is shutting down")
            backlog = self._pending_events + self.loader.backlog + len(events)
            if backlog > self.max_pending_events:
                raise LogUnavailable("the event log is behind; retry shortly")
            self._pending.append(_Pending(events, failed, future, loop))
            self._pending_events += len(events)
            for observer in self.observers:
                observer.taken(events)
            self._cond.notify()
        return future

    def append_sync(self, events: Sequence[Event], failed: Sequence[FailedEvent] = ()) -> int:
        """The same for callers outside the event loop (imports); appends directly."""
        with self._commit_lock:
            last = self._commit_now(events, failed)
        for observer in self.observers:
            observer.taken(events)
        return last

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
                last = self._commit_now(events, failed)
        except Exception as exc:
            log.exception("log commit failed")
            self.healthy = False
            for observer in self.observers:
                observer.lost(events)
            for item in taken:
                item.loop.call_soon_threadsafe(_fail, item.future, exc)
            return
        self.healthy = True
        # One wake-up per event loop, not per request: each call_soon_threadsafe writes
        # to the loop's wake-up pipe.
        by_loop: dict[asyncio.AbstractEventLoop, list[asyncio.Future[int]]] = {}
        for item in taken:
            by_loop.setdefault(item.loop, []).append(item.future)
        for loop, futures in by_loop.items():
            loop.call_soon_threadsafe(_resolve_all, futures, last)

    def _commit_now(self, events: Sequence[Event], failed: Sequence[FailedEvent]) -> int:
        started = time.monotonic()
        first = self.segments.append(to_records(events, failed))
        committed_at = time.monotonic()
        for i, event in enumerate(events):
            event.offset = first + i
        last = first + len(events) + len(failed) - 1
        m = self.metrics
        m.commit_latency.observe(committed_at - started)
        m.commit_size.observe(len(events))
        m.log_offset.set(last)
        self.last_offset = last
        self.loader.submit(events, failed, last, committed_at)
        return last


def _resolve_all(futures: list[asyncio.Future[int]], value: int) -> None:
    for future in futures:
        if not future.done():
            future.set_result(value)


def _fail(future: asyncio.Future[int], exc: Exception) -> None:
    if not future.done():
        future.set_exception(LogUnavailable(f"the event log cannot take writes: {exc}"))
