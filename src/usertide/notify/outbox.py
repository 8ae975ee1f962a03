"""The outbox worker: a thread that delivers due notifications and records the outcome.

Notifications wait in the store (``Store.outbox_*``), so they survive restarts: a
worker started on the same store picks up whatever is still pending. Delivery is at
least once: a crash after a receiver accepted a notification but before the outcome
was saved delivers it again, with the same id for the receiver to spot.

A retryable failure is tried again after a full-jitter exponential backoff (a uniform
delay between 0 and ``min(max_delay, base_delay * 2**(attempts - 1))``) until
``max_attempts`` attempts have been made; anything else marks the notification failed.
"""

from __future__ import annotations

import logging
import random
import threading
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from usertide.notify.base import DeliveryError, Notifier
from usertide.notify.model import Notification, NotificationStatus

if TYPE_CHECKING:
    from usertide.store.base import Store

log = logging.getLogger(__name__)

BATCH = 100  # notifications taken from the store per pass


def utc_now() -> datetime:
    return datetime.now(UTC)


class OutboxWorker:
    """``clock`` gives the current time (aware, UTC); ``jitter`` a float in [0, 1) for
    the backoff. ``poll_interval`` is how often the thread looks for due retries;
    :meth:`wake` (and :meth:`enqueue`) makes it look at once."""

    def __init__(
        self,
        store: Store,
        notifiers: Mapping[str, Notifier],
        *,
        poll_interval: float = 0.5,
        max_attempts: int = 10,
        base_delay: float = 2.0,
        max_delay: float = 900.0,
        clock: Callable[[], datetime] = utc_now,
        jitter: Callable[[], float] = random.random,
    ) -> None:
        if max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        self._store = store
        self._notifiers = dict(notifiers)
        self._poll_interval = poll_interval
        self._max_attempts = max_attempts
        self._base_delay = base_delay
        self._max_delay = max_delay
        self._clock = clock
        self._jitter = jitter
        self._wakeup = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._logged: set[str] = set()  # ids whose unexpected error was logged

    # -- the thread --------------------------------------------------------------
    def start(self) -> None:
        if self._thread is not None:
            raise RuntimeError("the outbox worker is already running")
        self._stopping.clear()
        self._thread = threading.Thread(target=self._run, name="usertide-outbox", daemon=True)
        self._thread.start()

    def stop(self, timeout: float | None = None) -> None:
        """Stop after the delivery in progress, if any; pending ones stay in the store."""
        thread, self._thread = self._thread, None
        if thread is None:
            return
        self._stopping.set()
        self._wakeup.set()
        thread.join(timeout)

    def wake(self) -> None:
        self._wakeup.set()

    def enqueue(self, notes: Sequence[Notification]) -> int:
        """Store ``notes`` (ids already stored are skipped) and wake the worker; returns
        how many were new."""
        added = self._store.outbox_add(notes)
        if added:
            self.wake()
        return added

    def _run(self) -> None:
        while not self._stopping.is_set():
            self._wakeup.clear()
            try:
                done = self.run_once()
            except Exception:
                log.exception("outbox pass failed; trying again in %.1fs", self._poll_interval)
                done = 0
            if done < BATCH:
                self._wakeup.wait(self._poll_interval)

    # -- one pass ----------------------------------------------------------------
    def run_once(self, now: datetime | None = None) -> int:
        """Attempt every notification due at ``now`` (default: the clock), up to one
        batch; returns how many were attempted."""
        due = self._store.outbox_due(now or self._clock(), limit=BATCH)
        attempted = 0
        for note in due:
            if self._stopping.is_set():
                break
            self._attempt(note, now)
            attempted += 1
        return attempted

    def _attempt(self, note: Notification, now: datetime | None) -> None:
        notifier = self._notifiers.get(note.channel)
        error: str | None = None
        retryable = False
        if notifier is None:
            error = f"no notifier for channel {note.channel!r}"
        else:
            try:
                notifier.deliver(note)
            except DeliveryError as failure:
                error, retryable = failure.message, failure.retryable
            except Exception as failure:
                error, retryable = f"unexpected {type(failure).__name__}: {failure}", True
                if note.id not in self._logged:
                    self._logged.add(note.id)
                    log.exception("notifier %r crashed on notification %s", note.channel, note.id)
        now = now or self._clock()  # an explicit ``now`` (tests) holds for the whole pass
        note.attempts += 1
        if error is None:
            note.status = NotificationStatus.DELIVERED
            note.delivered_at = now
            note.last_error = None
            note.next_attempt_at = None
        elif retryable and note.attempts < self._max_attempts:
            note.last_error = error
            note.next_attempt_at = now + timedelta(seconds=self.backoff(note.attempts))
            log.info(
                "notification %s (%s) attempt %d failed, retrying: %s",
                note.id,
                note.channel,
                note.attempts,
                error,
            )
        else:
            note.status = NotificationStatus.FAILED
            note.last_error = error
            note.next_attempt_at = None
            log.warning(
                "notification %s (%s) failed after %d attempt(s): %s",
                note.id,
                note.channel,
                note.attempts,
                error,
            )
        if note.status is not NotificationStatus.PENDING:
            self._logged.discard(note.id)
        self._store.outbox_save(note)

    def backoff(self, attempts: int) -> float:
        """Seconds to wait after the ``attempts``-th failed attempt (full jitter)."""
        ceiling = min(self._max_delay, self._base_delay * 2.0 ** min(attempts - 1, 64))
        return self._jitter() * ceiling
