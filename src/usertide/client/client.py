"""The Python client: validates and queues Segment-spec events, a daemon thread sends them."""

from __future__ import annotations

import atexit
import logging
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from types import TracebackType
from typing import Any, Self

import httpx
import msgspec

from usertide.client.transport import (
    MAX_BATCH_BYTES,
    MAX_EVENT_BYTES,
    BatchSender,
    DeliveryCancelled,
    DeliveryError,
    RetryPolicy,
    batch_overhead,
    iso_utc,
)

logger = logging.getLogger("usertide.client")

ErrorHandler = Callable[[Exception, list[dict[str, Any]]], None]

try:
    LIBRARY_VERSION = version("usertide")
except PackageNotFoundError:  # running from a source tree that was never installed
    LIBRARY_VERSION = "0.0.0"
LIBRARY = {"name": "usertide-python", "version": LIBRARY_VERSION}

# Warn on the first dropped event and then periodically, so a saturated queue is visible
# without flooding the log at the rate events are being produced.
_DROP_WARNING_EVERY = 1000


class Client:
    """Sends events to a usertide collector (or anything speaking Segment's batch API).

    Calls such as :meth:`track` validate their arguments, encode the event and return at once;
    a daemon thread groups queued events into batches of up to ``flush_at`` events or 450 KB,
    or whatever is queued once the oldest event has waited ``flush_interval`` seconds.

    ``transport`` is handed to :class:`httpx.Client` (tests pass ``httpx.MockTransport``);
    ``sleep`` replaces the wait between retries (tests pass a recorder). ``on_error`` receives
    the reason and the events of every batch that is given up; without it they are logged.
    """

    def __init__(
        self,
        write_key: str,
        host: str = "http://127.0.0.1:8000",
        *,
        flush_at: int = 100,
        flush_interval: float = 0.5,
        max_queue_size: int = 10_000,
        max_retries: int = 6,
        timeout: float = 10.0,
        transport: httpx.BaseTransport | None = None,
        on_error: ErrorHandler | None = None,
        sleep: Callable[[float], object] | None = None,
    ) -> None:
        if not write_key:
            raise ValueError("write_key is required")
        if flush_at < 1:
            raise ValueError("flush_at must be at least 1")
        if flush_interval <= 0:
            raise ValueError("flush_interval must be positive")
        if max_queue_size < 1:
            raise ValueError("max_queue_size must be at least 1")
        if max_retries < 0:
            raise ValueError("max_retries must not be negative")

        self._flush_at = flush_at
        self._flush_interval = flush_interval
        self._max_queue_size = max_queue_size
        self._timeout = timeout
        self._on_error = on_error

        # One condition guards all queue state below; it wakes the sender thread (new events,
        # flush, shutdown) and flush() callers (events settled).
        self._cond = threading.Condition()
        self._queue: deque[tuple[float, bytes]] = deque()  # (monotonic enqueue time, JSON)
        self._queued_bytes = 0
        # Running totals since construction. A single sender settles events in FIFO order, so
        # "all events up to number N are done" is simply ``settled >= N``.
        self._accepted_total = 0
        self._taken_total = 0
        self._settled_total = 0
        self._flush_target = 0
        self._dropped = 0
        self._closed = False
        self._abort = threading.Event()
        self._thread: threading.Thread | None = None

        self._http = httpx.Client(
            base_url=host.rstrip("/"),
            auth=httpx.BasicAuth(write_key, ""),
            timeout=timeout,
            transport=transport,
            headers={"User-Agent": f"usertide-python/{LIBRARY_VERSION}"},
        )
        self._sender = BatchSender(
            self._http,
            RetryPolicy(max_retries=max_retries),
            sleep=sleep if sleep is not None else self._abort.wait,
            cancelled=self._abort.is_set,
        )
        atexit.register(self._shutdown_at_exit)

    # ------------------------------------------------------------------ public calls

    def track(
        self,
        user_id: str | None = None,
        event: str | None = None,
        properties: Mapping[str, Any] | None = None,
        *,
        anonymous_id: str | None = None,
        context: Mapping[str, Any] | None = None,
        timestamp: datetime | None = None,
        message_id: str | None = None,
    ) -> str:
        """Queue a ``track`` event and return its ``messageId``."""
        _require_identity(user_id, anonymous_id)
        _require_text("event", event)
        message = self._common("track", user_id, anonymous_id, context, timestamp, message_id)
        message["event"] = event
        message["properties"] = _mapping("properties", properties)
        return self._enqueue(message)

    def page(
        self,
        user_id: str | None = None,
        name: str | None = None,
        properties: Mapping[str, Any] | None = None,
        *,
        anonymous_id: str | None = None,
        context: Mapping[str, Any] | None = None,
        timestamp: datetime | None = None,
        message_id: str | None = None,
    ) -> str:
        """Queue a ``page`` event (``name`` is optional, as in the spec) and return its id."""
        _require_identity(user_id, anonymous_id)
        if name is not None:
            _require_text("name", name)
        message = self._common("page", user_id, anonymous_id, context, timestamp, message_id)
        if name is not None:
            message["name"] = name
        message["properties"] = _mapping("properties", properties)
        return self._enqueue(message)

    def identify(
        self,
        user_id: str | None,
        traits: Mapping[str, Any] | None = None,
        *,
        anonymous_id: str | None = None,
        context: Mapping[str, Any] | None = None,
        timestamp: datetime | None = None,
        message_id: str | None = None,
    ) -> str:
        """Queue an ``identify`` event and return its id."""
        _require_identity(user_id, anonymous_id)
        message = self._common("identify", user_id, anonymous_id, context, timestamp, message_id)
        message["traits"] = _mapping("traits", traits)
        return self._enqueue(message)

    def alias(
        self,
        previous_id: str,
        user_id: str,
        *,
        context: Mapping[str, Any] | None = None,
        timestamp: datetime | None = None,
        message_id: str | None = None,
    ) -> str:
        """Queue an ``alias`` event linking ``previous_id`` to ``user_id`` and return its id."""
        _require_text("previous_id", previous_id)
        _require_text("user_id", user_id)
        message = self._common("alias", user_id, None, context, timestamp, message_id)
        message["previousId"] = previous_id
        return self._enqueue(message)

    @property
    def dropped(self) -> int:
        """Events discarded because the queue was full or the client was already shut down."""
        with self._cond:
            return self._dropped

    @property
    def queued(self) -> int:
        """Events waiting to be sent (not counting the batch in flight)."""
        with self._cond:
            return len(self._queue)

    def flush(self, timeout: float | None = None) -> bool:
        """Send everything queued so far and wait until it is delivered or given up.

        Returns False only if ``timeout`` expired first. Events queued by other threads after
        this call started are not waited for, so a busy producer cannot starve the caller.
        """
        if threading.current_thread() is self._thread:
            # on_error runs on the sender thread, which would end up waiting for itself.
            raise RuntimeError("flush() cannot be called from the on_error callback")
        with self._cond:
            target = self._accepted_total
            if self._settled_total >= target:
                return True
            self._flush_target = max(self._flush_target, target)
            self._ensure_sender()
            self._cond.notify_all()
            return self._cond.wait_for(lambda: self._settled_total >= target, timeout)

    def shutdown(self, timeout: float | None = None) -> None:
        """Flush, stop the sender thread and release the HTTP connection pool.

        Events still unsent after ``timeout`` seconds are reported to ``on_error`` (or logged).
        Further calls to :meth:`track` etc. drop their event. Calling it twice is harmless.
        """
        with self._cond:
            if self._closed:
                return
            self._closed = True
            if self._queue:
                self._ensure_sender()
            self._cond.notify_all()
            thread = self._thread
        atexit.unregister(self._shutdown_at_exit)
        if thread is not None:
            thread.join(timeout)
            if thread.is_alive():
                # Stop retrying; the request in flight, if any, ends within the HTTP timeout.
                self._abort.set()
                with self._cond:
                    self._cond.notify_all()
                thread.join(self._timeout)
        self._abandon_queue()
        self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.shutdown()

    # ------------------------------------------------------------------ producer side

    def _common(
        self,
        event_type: str,
        user_id: str | None,
        anonymous_id: str | None,
        context: Mapping[str, Any] | None,
        timestamp: datetime | None,
        message_id: str | None,
    ) -> dict[str, Any]:
        if timestamp is not None and not isinstance(timestamp, datetime):
            raise TypeError("timestamp must be a datetime")
        if message_id is not None:
            _require_text("message_id", message_id)
        message: dict[str, Any] = {
            "type": event_type,
            "messageId": message_id or str(uuid.uuid4()),
            # Naive datetimes are taken as UTC, the usual convention in server code.
            "timestamp": iso_utc(timestamp or datetime.now(UTC)),
            "context": {"library": LIBRARY, **_mapping("context", context)},
        }
        if user_id:
            message["userId"] = user_id
        if anonymous_id:
            message["anonymousId"] = anonymous_id
        return message

    def _enqueue(self, message: dict[str, Any]) -> str:
        # Encoding now snapshots the caller's dicts (later mutation cannot leak into the
        # event), surfaces unserialisable values at the call site and gives the exact size.
        try:
            encoded = msgspec.json.encode(message)
        except TypeError as exc:
            raise TypeError(f"event is not JSON-serialisable: {exc}") from None
        if len(encoded) > MAX_EVENT_BYTES:
            raise ValueError(
                f"event is {len(encoded)} bytes encoded; the collector accepts at most "
                f"{MAX_EVENT_BYTES}"
            )
        message_id: str = message["messageId"]
        with self._cond:
            if self._closed or len(self._queue) >= self._max_queue_size:
                self._count_drop_locked()
                return message_id
            self._queue.append((time.monotonic(), encoded))
            self._queued_bytes += len(encoded)
            self._accepted_total += 1
            self._ensure_sender()
            if len(self._queue) == 1 or self._batch_ready_locked():
                self._cond.notify_all()
        return message_id

    def _count_drop_locked(self) -> None:
        self._dropped += 1
        if self._dropped == 1 or self._dropped % _DROP_WARNING_EVERY == 0:
            why = "client is shut down" if self._closed else "queue is full"
            logger.warning("usertide: dropping event (%s); %d dropped so far", why, self._dropped)

    def _ensure_sender(self) -> None:
        """Start the sender thread on first use, or again in a forked child (threads do not
        survive fork, the queue does). Called with the condition held."""
        if self._thread is not None and self._thread.is_alive():
            return
        if self._abort.is_set():
            return
        self._thread = threading.Thread(target=self._run, name="usertide-client", daemon=True)
        self._thread.start()

    # ------------------------------------------------------------------ sender thread

    def _run(self) -> None:
        while True:
            batch = self._next_batch()
            if batch is None:
                return
            self._deliver(batch)
            with self._cond:
                self._settled_total += len(batch)
                self._cond.notify_all()

    def _batch_ready_locked(self) -> bool:
        return (
            len(self._queue) >= self._flush_at
            or self._queued_bytes + batch_overhead(len(self._queue)) >= MAX_BATCH_BYTES
            or self._flush_target > self._taken_total
            or self._closed
            or self._abort.is_set()
        )

    def _next_batch(self) -> list[bytes] | None:
        """Wait until a batch is due and take it, or return None when there is nothing left."""
        with self._cond:
            while not self._queue:
                if self._closed or self._abort.is_set():
                    return None
                self._cond.wait()
            while not self._batch_ready_locked():
                oldest_enqueued_at = self._queue[0][0]
                remaining = oldest_enqueued_at + self._flush_interval - time.monotonic()
                if remaining <= 0:
                    break
                self._cond.wait(remaining)
            if self._abort.is_set():
                return None
            return self._take_batch_locked()

    def _take_batch_locked(self) -> list[bytes]:
        batch: list[bytes] = []
        batch_bytes = batch_overhead(0)
        while self._queue and len(batch) < self._flush_at:
            encoded = self._queue[0][1]
            # Every event is at most 32 KB, so the first one always fits.
            if batch and batch_bytes + len(encoded) + 1 > MAX_BATCH_BYTES:
                break
            self._queue.popleft()
            batch.append(encoded)
            batch_bytes += len(encoded) + 1
            self._queued_bytes -= len(encoded)
        self._taken_total += len(batch)
        return batch

    def _deliver(self, batch: list[bytes]) -> None:
        try:
            self._sender.send(batch)
        except DeliveryError as exc:
            self._report(exc, batch)
        except Exception as exc:
            # A bug here must not kill the thread: the queue would fill and flush() would hang.
            logger.exception("usertide: unexpected error while sending a batch")
            self._report(exc, batch)

    def _report(self, error: Exception, batch: list[bytes]) -> None:
        events: list[dict[str, Any]] = [msgspec.json.decode(encoded) for encoded in batch]
        if self._on_error is None:
            logger.error("usertide: dropped %d events: %s", len(events), error)
            return
        try:
            self._on_error(error, events)
        except Exception:
            logger.exception("usertide: on_error callback raised")

    # ------------------------------------------------------------------ shutdown

    def _abandon_queue(self) -> None:
        """Report events the sender never got to (shutdown timed out) and release waiters."""
        with self._cond:
            leftover = [encoded for _, encoded in self._queue]
            self._queue.clear()
            self._queued_bytes = 0
            self._taken_total += len(leftover)
            self._settled_total += len(leftover)
            self._cond.notify_all()
        if leftover:
            self._report(
                DeliveryCancelled("client shut down before these events were sent"), leftover
            )

    def _shutdown_at_exit(self) -> None:
        # Bounded so an unreachable collector cannot keep the interpreter from exiting.
        self.shutdown(timeout=self._timeout)


def _require_identity(user_id: str | None, anonymous_id: str | None) -> None:
    for field, value in (("user_id", user_id), ("anonymous_id", anonymous_id)):
        if value is not None and not isinstance(value, str):
            raise TypeError(f"{field} must be a string")
    if not user_id and not anonymous_id:
        raise ValueError("user_id or anonymous_id is required")


def _require_text(field: str, value: object) -> None:
    if not isinstance(value, str) or not value:
        raise ValueError(f"{field} must be a non-empty string")


def _mapping(field: str, value: Mapping[str, Any] | None) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise TypeError(f"{field} must be a mapping")
    return dict(value)
