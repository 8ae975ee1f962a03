"""The outbox worker: outcomes, backoff, the thread, and delivery across a restart with
a real SMTP relay that is down, then up."""

from __future__ import annotations

import logging
from collections import deque
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, ClassVar

import pytest
from notify_support import T0, SmtpServer, TlsFiles, make_note, wait_until

from usertide.notify import (
    DeliveryError,
    Notification,
    NotificationStatus,
    Notifier,
    OutboxWorker,
    SmtpConfig,
    SmtpNotifier,
)
from usertide.notify.smtp import message_id
from usertide.store import DuckDBStore


class Scripted(Notifier):
    """Answers deliveries with the scripted outcomes (None = delivered), then delivers."""

    channel: ClassVar[str] = "email"

    def __init__(self, *outcomes: BaseException | None) -> None:
        self.outcomes: deque[BaseException | None] = deque(outcomes)
        self.delivered: list[str] = []
        self.calls = 0

    def deliver(self, note: Notification) -> None:
        self.calls += 1
        outcome = self.outcomes.popleft() if self.outcomes else None
        if outcome is not None:
            raise outcome
        self.delivered.append(note.id)


def worker_for(store: DuckDBStore, notifier: Notifier, **options: Any) -> OutboxWorker:
    options.setdefault("jitter", lambda: 1.0)
    return OutboxWorker(store, {"email": notifier}, **options)


def only(store: DuckDBStore) -> Notification:
    [note] = store.outbox_list()
    return note


# -- outcomes ---------------------------------------------------------------------------
def test_delivered(store: DuckDBStore) -> None:
    notifier = Scripted()
    worker = worker_for(store, notifier)
    assert worker.enqueue([make_note()]) == 1
    assert worker.run_once(T0) == 1
    note = only(store)
    assert note.status is NotificationStatus.DELIVERED
    assert note.delivered_at == T0 and note.attempts == 1 and note.last_error is None
    assert worker.run_once(T0 + timedelta(days=1)) == 0
    assert notifier.delivered == ["n1"]


def test_retryable_failures_back_off_then_give_up(store: DuckDBStore) -> None:
    errors = [DeliveryError("relay down", retryable=True) for _ in range(4)]
    worker = worker_for(store, Scripted(*errors), max_attempts=4, base_delay=2, max_delay=5)
    worker.enqueue([make_note()])
    now = T0
    expected_delays = [2, 4, 5]  # base * 2**(n-1), capped at max_delay
    for attempt, delay in enumerate(expected_delays, start=1):
        assert worker.run_once(now) == 1
        note = only(store)
        assert note.status is NotificationStatus.PENDING
        assert note.attempts == attempt and note.last_error == "relay down"
        assert note.next_attempt_at == now + timedelta(seconds=delay)
        assert worker.run_once(now + timedelta(seconds=delay - 0.1)) == 0
        now += timedelta(seconds=delay)
    assert worker.run_once(now) == 1
    note = only(store)
    assert note.status is NotificationStatus.FAILED and note.attempts == 4
    assert worker.run_once(now + timedelta(days=1)) == 0


def test_backoff_has_full_jitter_and_a_cap(store: DuckDBStore) -> None:
    half = worker_for(store, Scripted(), base_delay=2, max_delay=900, jitter=lambda: 0.5)
    assert half.backoff(1) == 1.0
    assert half.backoff(3) == 4.0
    assert half.backoff(20) == 450.0
    assert half.backoff(100_000) == 450.0  # no overflow
    zero = worker_for(store, Scripted(), jitter=lambda: 0.0)
    assert zero.backoff(5) == 0.0


def test_permanent_failure_is_not_retried(store: DuckDBStore) -> None:
    notifier = Scripted(DeliveryError("mailbox unavailable", retryable=False))
    worker = worker_for(store, notifier)
    worker.enqueue([make_note()])
    worker.run_once(T0)
    note = only(store)
    assert note.status is NotificationStatus.FAILED
    assert note.attempts == 1 and note.last_error == "mailbox unavailable"
    assert worker.run_once(T0 + timedelta(days=1)) == 0
    assert notifier.calls == 1


def test_unexpected_exception_is_retried_and_logged_once(
    store: DuckDBStore, caplog: pytest.LogCaptureFixture
) -> None:
    boom = [RuntimeError("template bug") for _ in range(3)]
    worker = worker_for(store, Scripted(*boom), base_delay=1, max_delay=1)
    worker.enqueue([make_note(id="a"), make_note(id="b")])
    with caplog.at_level(logging.INFO, logger="usertide.notify.outbox"):
        now = T0
        for _ in range(3):
            worker.run_once(now)
            now += timedelta(seconds=1)
    crashes = [r for r in caplog.records if r.levelno == logging.ERROR]
    # "a" crashed twice and "b" once: one ERROR each; "b" was delivered on its 2nd try.
    assert sorted(r.getMessage().rsplit(" ", 1)[1] for r in crashes) == ["a", "b"]
    notes = {n.id: n for n in store.outbox_list()}
    assert notes["a"].status is NotificationStatus.DELIVERED and notes["a"].attempts == 3
    assert notes["b"].status is NotificationStatus.DELIVERED and notes["b"].attempts == 2
    assert "RuntimeError: template bug" in caplog.text


def test_unknown_channel_fails(store: DuckDBStore) -> None:
    worker = worker_for(store, Scripted())
    worker.enqueue([make_note(channel="pager")])
    worker.run_once(T0)
    note = only(store)
    assert note.status is NotificationStatus.FAILED
    assert "pager" in (note.last_error or "")


def test_enqueue_is_idempotent(store: DuckDBStore) -> None:
    notifier = Scripted()
    worker = worker_for(store, notifier)
    assert worker.enqueue([make_note(id="x"), make_note(id="y")]) == 2
    assert worker.enqueue([make_note(id="x")]) == 0
    worker.run_once(T0)
    worker.enqueue([make_note(id="x")])  # already delivered: stays so
    assert worker.run_once(T0) == 0
    assert sorted(notifier.delivered) == ["x", "y"]


def test_not_due_yet_waits(store: DuckDBStore) -> None:
    notifier = Scripted()
    worker = worker_for(store, notifier)
    worker.enqueue([make_note(next_attempt_at=T0 + timedelta(minutes=5))])
    assert worker.run_once(T0) == 0
    assert worker.run_once(T0 + timedelta(minutes=5)) == 1


# -- the thread -----------------------------------------------------------------------------
def test_enqueue_wakes_the_thread(store: DuckDBStore) -> None:
    notifier = Scripted()
    worker = worker_for(store, notifier, poll_interval=30)
    worker.start()
    try:
        worker.enqueue([make_note()])
        assert wait_until(lambda: notifier.delivered == ["n1"], timeout=3)
    finally:
        worker.stop(timeout=5)
    assert only(store).status is NotificationStatus.DELIVERED


def test_start_twice_is_refused_and_stop_is_idempotent(store: DuckDBStore) -> None:
    worker = worker_for(store, Scripted(), poll_interval=0.01)
    worker.start()
    with pytest.raises(RuntimeError):
        worker.start()
    worker.stop(timeout=5)
    worker.stop(timeout=5)


class FlakyStore(DuckDBStore):
    """Fails the first ``failures`` reads of the outbox."""

    failures = 1

    def outbox_due(self, now: datetime, limit: int = 100) -> list[Notification]:
        if self.failures:
            self.failures -= 1
            raise RuntimeError("database is busy")
        return super().outbox_due(now, limit)


def test_thread_survives_store_errors(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    store = FlakyStore(tmp_path / "flaky.duckdb")
    store.migrate()
    notifier = Scripted()
    worker = worker_for(store, notifier, poll_interval=0.02)
    with caplog.at_level(logging.ERROR, logger="usertide.notify.outbox"):
        worker.enqueue([make_note()])
        worker.start()
        try:
            assert wait_until(lambda: notifier.delivered == ["n1"], timeout=3)
        finally:
            worker.stop(timeout=5)
            store.close()
    assert "outbox pass failed" in caplog.text


# -- a real relay: down, then up -------------------------------------------------------------
def smtp_notifier(port: int) -> SmtpNotifier:
    return SmtpNotifier(
        SmtpConfig(
            "127.0.0.1",
            port,
            "none",
            None,
            None,
            "alerts@usertide.test",
            timeout=2,
            local_hostname="usertide.test",
        )
    )


def fast_worker(store: DuckDBStore, port: int) -> OutboxWorker:
    """Retries every few milliseconds, for as long as the test runs."""
    return OutboxWorker(
        store,
        {"email": smtp_notifier(port)},
        poll_interval=0.02,
        base_delay=0.02,
        max_delay=0.05,
        max_attempts=1000,
    )


def test_survives_a_restart_and_delivers_exactly_once(tmp_path: Path, tls: TlsFiles) -> None:
    path = tmp_path / "restart.duckdb"
    relay = SmtpServer("plain", tls)  # not started: the relay is down
    first = DuckDBStore(path)
    first.migrate()
    worker = fast_worker(first, relay.port)
    worker.start()
    worker.enqueue([make_note(id="survivor")])
    try:
        assert wait_until(lambda: first.outbox_list()[0].attempts >= 2, timeout=5)
    finally:
        worker.stop(timeout=5)
    pending = first.outbox_list()[0]
    assert pending.status is NotificationStatus.PENDING
    assert "cannot reach SMTP relay" in (pending.last_error or "")
    first.close()

    relay.start()
    second = DuckDBStore(path)
    second.migrate()
    worker = fast_worker(second, relay.port)
    worker.start()
    try:
        assert wait_until(
            lambda: second.outbox_list()[0].status is NotificationStatus.DELIVERED, timeout=5
        )
        assert worker.run_once(datetime.now(UTC) + timedelta(days=365)) == 0  # none left
    finally:
        worker.stop(timeout=5)
        second.close()
        relay.stop()
    assert len(relay.sink.with_id(message_id("survivor"))) == 1
    assert len(relay.sink.messages) == 1


def test_relay_stopped_mid_run_then_back_delivers_once(
    smtp_server: SmtpServer, store: DuckDBStore
) -> None:
    smtp_server.sink.data_replies.append("451 4.3.0 queue full, try later")
    worker = fast_worker(store, smtp_server.port)
    worker.start()
    try:
        worker.enqueue([make_note(id="flaky")])
        assert wait_until(lambda: store.outbox_list()[0].attempts >= 1, timeout=5)
        smtp_server.stop()
        ok = wait_until(lambda: store.outbox_list()[0].attempts >= 3, timeout=5)
        assert ok, store.outbox_list()
        assert store.outbox_list()[0].status is NotificationStatus.PENDING
        smtp_server.start()
        assert wait_until(
            lambda: store.outbox_list()[0].status is NotificationStatus.DELIVERED, timeout=5
        )
    finally:
        worker.stop(timeout=5)
    assert len(smtp_server.sink.with_id(message_id("flaky"))) == 1
