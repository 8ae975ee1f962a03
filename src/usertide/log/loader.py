"""The loader: moves the log into the store, behind the acknowledgements.

The collector acknowledges once events are in the log's files; the loader then takes
everything appended since its last load in one store commit (dedup by event id; the
loaded-through offset in the same commit, at most once a second, as loading a stretch
twice finds nothing new the second time), hands the new events to the engine, and drops
the segments the store now holds. Loading in large groups off the request path
is what makes an acknowledgement cost an fsync rather than a database commit.

At start it loads whatever the log holds beyond the store's loaded-through offset (what
was acknowledged before a crash), reading it back from the files.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from pathlib import Path

from usertide.events import Event, FailedEvent
from usertide.log.records import from_records
from usertide.log.segments import Record, SegmentLog
from usertide.metrics import Metrics
from usertide.store.base import Store

log = logging.getLogger(__name__)

# (new events in offset order, the log offset they complete, when the oldest was written)
OnLoad = Callable[[Sequence[Event], int, float], None]
RECOVERY_CHUNK = 20_000
# How often the loaded-through offset is written (a restart reloads at most this much
# of the log again, finding nothing new in it).
RECORD_EVERY = 1.0


def open_segments(directory: Path, store: Store) -> SegmentLog:
    """The log's files, numbering on after everything the store already holds."""
    return SegmentLog(directory, start_after=max(store.loaded_through(), store.last_offset()))


class _Stretch:
    __slots__ = ("events", "failed", "through", "written_at")

    def __init__(
        self, events: Sequence[Event], failed: Sequence[FailedEvent], through: int, at: float
    ) -> None:
        self.events = events
        self.failed = failed
        self.through = through
        self.written_at = at


class Loader:
    def __init__(
        self,
        store: Store,
        segments: SegmentLog,
        *,
        on_load: OnLoad | None = None,
        metrics: Metrics | None = None,
        max_load_events: int = 50_000,
        linger: float = 0.02,
        retry_seconds: float = 0.5,
    ) -> None:
        self.store = store
        self.segments = segments
        self.on_load = on_load
        self.metrics = metrics or Metrics()
        self.max_load_events = max_load_events
        # A load is a database commit: under light traffic the loader waits up to
        # ``linger`` seconds for more to take in the same commit (throughput does not
        # wait: under load the next stretch has grown while the last commit ran).
        self.linger = linger
        self.retry_seconds = retry_seconds
        self._pending: deque[_Stretch] = deque()
        self._cond = threading.Condition()
        self._stopping = False
        self._thread: threading.Thread | None = None
        self.loaded = store.loaded_through()
        self.backlog = 0  # events handed over and not loaded yet
        self._recorded_at = -RECORD_EVERY
        self.healthy = True

    # -- lifecycle -------------------------------------------------------------
    def start(self) -> None:
        self.recover()
        self._thread = threading.Thread(target=self._run, name="usertide-loader", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Load what is pending, then stop."""
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        self._record()

    def _record(self) -> None:
        """Write the loaded-through offset now if the store's is behind."""
        if self.loaded > self.store.loaded_through():
            self.store.load((), (), self.loaded)

    def recover(self) -> int:
        """Load what the log holds beyond the store; returns how many records."""
        records = 0
        chunk: list[Record] = []
        for record in self.segments.read(self.loaded):
            chunk.append(record)
            if len(chunk) >= RECOVERY_CHUNK:
                records += self._load_records(chunk)
                chunk = []
        if chunk:
            records += self._load_records(chunk)
        if records:
            log.info("loaded %d log records written before the last stop", records)
        self._record()
        self.segments.drop_through(self.loaded)
        return records

    def _load_records(self, chunk: list[Record]) -> int:
        events, failed = from_records(chunk)
        self._load([_Stretch(events, failed, chunk[-1].offset, time.monotonic())])
        return len(chunk)

    # -- handing over ------------------------------------------------------------
    def submit(
        self,
        events: Sequence[Event],
        failed: Sequence[FailedEvent],
        through: int,
        written_at: float,
    ) -> None:
        """Events and failed events just written to the log, through offset ``through``."""
        with self._cond:
            self._pending.append(_Stretch(events, failed, through, written_at))
            self.backlog += len(events)
            self._cond.notify_all()

    def wait_for(self, offset: int, timeout: float = 10.0) -> bool:
        """Block until the store holds the log up to ``offset``."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self.loaded < offset:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or self._thread is None:
                    return False
                self._cond.wait(min(remaining, 0.5))
        return True

    # -- the loop ------------------------------------------------------------------
    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._pending and not self._stopping:
                    self._cond.wait()
                if not self._pending:
                    return
                until = self._pending[0].written_at + self.linger
                while (
                    not self._stopping
                    and self.backlog < self.max_load_events // 10
                    and (wait := until - time.monotonic()) > 0
                ):
                    self._cond.wait(wait)
                taken: list[_Stretch] = []
                count = 0
                while self._pending and (not taken or count < self.max_load_events):
                    stretch = self._pending.popleft()
                    taken.append(stretch)
                    count += len(stretch.events)
            while True:
                try:
                    self._load(taken)
                    break
                except Exception:
                    # The stretch stays in the log's files; nothing is lost by waiting.
                    log.exception("loading the log into the store failed; retrying")
                    self.healthy = False
                    time.sleep(self.retry_seconds)
            with self._cond:
                self.backlog -= count
            self.segments.drop_through(self.loaded)

    def _load(self, taken: list[_Stretch]) -> None:
        taken = [s for s in taken if s.through > self.loaded]  # recovery may have read it
        if not taken:
            return
        events = [e for s in taken for e in s.events]
        failed = [f for s in taken for f in s.failed]
        through = taken[-1].through
        started = time.monotonic()
        record = started - self._recorded_at >= RECORD_EVERY
        new = self.store.load(events, failed, through if record else None)
        loaded_at = time.monotonic()
        if record:
            self._recorded_at = started
        self.healthy = True
        m = self.metrics
        m.load_latency.observe(loaded_at - started)
        m.load_size.observe(len(events))
        m.events_stored.inc(len(new))
        if len(new) < len(events):
            m.events_duplicate.inc(len(events) - len(new))
        with self._cond:
            self.loaded = through
            self._cond.notify_all()
        m.log_loaded.set(through)
        if self.on_load is not None:
            self.on_load(new, through, taken[0].written_at)
