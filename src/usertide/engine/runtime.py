"""The embedded runtime: drives the engine in a thread of the service process.

It resumes from the store's checkpoint, replays the stored log up to the head, then
takes the new events of each load from the log's loader; it checkpoints state, profiles,
aliases and its offset in one transaction every ``checkpoint_interval`` seconds.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from usertide.engine.base import Output, UserState
from usertide.engine.core import Engine, SessionRecorder
from usertide.events import Event
from usertide.metrics import Metrics
from usertide.store.base import Store

log = logging.getLogger(__name__)

Subscriber = Callable[[Sequence[Output]], None]
Watcher = Callable[[Sequence[Event], Sequence[Output]], None]
T = TypeVar("T")
_STOP = object()
LOCK_CHUNK = 16


class EmbeddedRuntime:
    def __init__(
        self,
        store: Store,
        engine: Engine,
        *,
        metrics: Metrics | None = None,
        checkpoint_interval: float = 1.0,
        store_profiles: bool = False,
        profile_record: Callable[[UserState], dict[str, Any]] | None = None,
        sessions: SessionRecorder | None = None,
    ) -> None:
        self.store = store
        self.engine = engine
        self.metrics = metrics or Metrics()
        self.checkpoint_interval = checkpoint_interval
        # Profiles are derived from state; the embedded service reads them from memory,
        # so writing them at every checkpoint would only cost time. A deployment whose
        # readers cannot reach the engine (scale-out) turns this on.
        self.store_profiles = store_profiles
        # What is written for each user (default: the whole view).
        self.profile_record = profile_record or self.engine.view
        # Session records (GET /v1/sessions, the session model's training data).
        self.sessions = sessions
        self._queue: queue.Queue[Any] = queue.Queue()
        self._lock = threading.RLock()
        self._progress = threading.Condition(self._lock)
        self._checkpointing = threading.Lock()  # a checkpoint is being collected and written
        self._subscribers: list[Subscriber] = []
        self._watchers: list[Watcher] = []
        self._followers: list[Subscriber] = []
        self._thread: threading.Thread | None = None
        self._last_checkpoint = time.monotonic()
        self.error: BaseException | None = None

    # -- lifecycle -------------------------------------------------------------
    def start(self) -> None:
        offset = self.store.engine_offset(self.engine.consumer)
        self.engine.restore(offset, self.store.iter_states(), self.store.aliases())
        self._thread = threading.Thread(target=self._run, name="usertide-engine", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        if self._thread is None:
            return
        self._queue.put(_STOP)
        self._thread.join()
        self._thread = None

    def subscribe(self, subscriber: Subscriber) -> None:
        self._subscribers.append(subscriber)

    def follow(self, follower: Subscriber) -> None:
        """``follower(outputs)`` for each chunk of events, inside the engine's lock: a
        global model that learns the outputs in log order (the recommenders) is, for
        every reader taking the lock, exactly as far as the states. It must be quick."""
        self._followers.append(follower)

    def watch(self, watcher: Watcher) -> None:
        """Also see the events: ``watcher(events, outputs)`` after each stretch of the
        log is applied (live streams), before the subscribers, so what they make of
        the outputs (alerts) comes after them. It must not block."""
        self._watchers.append(watcher)

    def submit(self, events: Sequence[Event], through: int, written_at: float) -> None:
        """Hand over the new events of the log up to offset ``through``, in offset
        order (what lies between them is duplicates and failed events)."""
        self._queue.put((events, through, written_at))

    # -- the loop --------------------------------------------------------------
    def _run(self) -> None:
        try:
            self._replay()
            while True:
                timeout = max(
                    0.0, self._last_checkpoint + self.checkpoint_interval - time.monotonic()
                )
                try:
                    item = self._queue.get(timeout=timeout)
                except queue.Empty:
                    self.checkpoint()
                    continue
                if item is _STOP:
                    break
                events, through, written_at = item
                self._apply(events, through)
                self.metrics.engine_lag.observe(time.monotonic() - written_at)
                if time.monotonic() - self._last_checkpoint >= self.checkpoint_interval:
                    self.checkpoint()
            self.checkpoint()
        except BaseException as exc:  # the service reports it on /healthz
            self.error = exc
            log.exception("engine stopped")
            with self._progress:
                self._progress.notify_all()

    def _replay(self) -> None:
        through = self.store.loaded_through()  # read first: the replay covers it
        while True:
            events = self.store.read_log(self.engine.offset, 5_000)
            if not events:
                break
            self._apply(events)
        self._apply((), through)

    def _apply(self, events: Sequence[Event], through: int = 0) -> None:
        outputs: list[Output] = []
        # The lock is taken per small chunk, not per batch: readers (the synchronous
        # risk API, the users API) wait at most one chunk for a consistent state.
        for start in range(0, len(events), LOCK_CHUNK):
            with self._lock:
                first = len(outputs)
                for event in events[start : start + LOCK_CHUNK]:
                    outputs.extend(self.engine.apply(event))
                if self._followers and len(outputs) > first:
                    chunk = outputs[first:]
                    for follower in self._followers:
                        try:
                            follower(chunk)
                        except Exception:
                            log.exception("engine follower failed")
        with self._lock:
            # Everything up to ``through`` was applied or is not for the engine.
            self.engine.offset = max(self.engine.offset, through)
            self.metrics.engine_offset.set(self.engine.offset)
            self._progress.notify_all()
        for watcher in self._watchers:
            try:
                watcher(events, outputs)
            except Exception:
                log.exception("engine watcher failed")
        if outputs:
            for output in outputs:
                self.metrics.child(self.metrics.engine_outputs, type(output).__name__).inc()
            for subscriber in self._subscribers:
                try:
                    subscriber(outputs)
                except Exception:
                    log.exception("engine subscriber failed")

    def checkpoint(self) -> None:
        started = time.perf_counter()
        # Only the engine thread changes states, so they are encoded outside the lock
        # readers take (the risk API would wait for all the encoding, tens of ms);
        # forget() waits instead, so an erased user's state is never written back.
        with self._checkpointing:
            with self._lock:
                changes = self.engine.take_changes()
            profile_of = self.profile_of if self.store_profiles else None
            commit = self.engine.encode_changes(changes, profile_of, self.sessions)
            collected = time.perf_counter()
            try:
                self.store.commit_engine(commit)
            except Exception:
                with self._lock:
                    self.engine.requeue(commit)
                raise
        latency = self.metrics.checkpoint_latency
        self.metrics.child(latency, "collect").observe(collected - started)
        self.metrics.child(latency, "write").observe(time.perf_counter() - collected)
        self._last_checkpoint = time.monotonic()
        self.metrics.engine_users.set(self.engine.user_count())

    # -- reading ---------------------------------------------------------------
    def profile_of(self, state: UserState) -> dict[str, Any]:
        return self.profile_record(state)

    def read(self, reader: Callable[[Engine], T]) -> T:
        """Run ``reader`` on the engine between two events (it must not change state)."""
        with self._lock:
            return reader(self.engine)

    def user(self, key: str) -> dict[str, Any] | None:
        with self._lock:
            state = self.engine.lookup(key)
            return self.engine.view(state) if state is not None else None

    def resolve(self, user_or_anonymous_id: str) -> str:
        with self._lock:
            return self.engine.identity.aliases.get(user_or_anonymous_id, user_or_anonymous_id)

    def linked_anonymous_ids(self, user_id: str) -> tuple[str, ...]:
        with self._lock:
            aliases = self.engine.identity.aliases
            return tuple(a for a, u in aliases.items() if u == user_id)

    def forget(self, keys: Sequence[str]) -> None:
        with self._checkpointing, self._lock:
            self.engine.forget(keys)

    def wait_for(self, offset: int, timeout: float = 10.0) -> bool:
        """Block until the engine has processed the log up to ``offset``."""
        deadline = time.monotonic() + timeout
        with self._progress:
            while self.engine.offset < offset and self.error is None:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._progress.wait(remaining)
        return self.engine.offset >= offset

    @property
    def offset(self) -> int:
        return self.engine.offset

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive() and self.error is None
