"""The notifier contract, run against every implementation and its real receiver."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest
from notify_support import (
    SMTP_PASSWORD,
    SMTP_USER,
    WEBHOOK_SECRET,
    SmtpMode,
    SmtpServer,
    TlsFiles,
    WebhookReceiver,
    make_note,
)

from usertide.notify import (
    DeliveryError,
    Notification,
    NotificationStatus,
    Notifier,
    OutboxWorker,
    SmtpConfig,
    SmtpNotifier,
    WebhookConfig,
    WebhookNotifier,
)
from usertide.notify.smtp import message_id
from usertide.store import DuckDBStore


@dataclass
class Harness:
    notifier: Notifier
    note: Callable[[str], Notification]  # a notification for this receiver, with that id
    received: Callable[[str], int]  # deliveries the receiver got with that id
    bad_recipient: str  # one the notifier must refuse for good
    stop: Callable[[], None]  # take the receiver down


def _smtp(mode: SmtpMode, tls: TlsFiles) -> Iterator[Harness]:
    server = SmtpServer(mode, tls)
    server.start()
    security = {"plain": "none", "starttls": "starttls", "ssl": "ssl"}[mode]
    login = mode != "plain"
    notifier = SmtpNotifier(
        SmtpConfig(
            "127.0.0.1",
            server.port,
            security,  # type: ignore[arg-type]
            SMTP_USER if login else None,
            SMTP_PASSWORD if login else None,
            "Usertide <alerts@usertide.test>",
            timeout=5,
            ca_file=str(tls.ca),
            local_hostname="usertide.test",
        )
    )
    yield Harness(
        notifier,
        lambda id: make_note(id=id),
        lambda id: len(server.sink.with_id(message_id(id))),
        "jane@example.com\r\nBcc: eve@example.com",
        server.stop,
    )
    notifier.close()
    server.stop()


def _webhook(tls: TlsFiles | None) -> Iterator[Harness]:
    receiver = WebhookReceiver(tls=tls)
    config = WebhookConfig(
        WEBHOOK_SECRET,
        timeout=5,
        allowed_hosts={"127.0.0.1", "localhost"},
        ca_file=str(tls.ca) if tls else None,
    )
    notifier = WebhookNotifier(config)
    host = "localhost" if tls else "127.0.0.1"  # TLS: the certificate names localhost
    yield Harness(
        notifier,
        lambda id: make_note(id=id, channel="webhook", recipient=receiver.url(host=host)),
        lambda id: sum(
            1
            for r in receiver.received
            if r.headers["x-usertide-delivery"] == id and r.signature_ok
        ),
        "file:///etc/passwd",
        receiver.close,
    )
    notifier.close()
    receiver.close()


HARNESSES: dict[str, Callable[[TlsFiles], Iterator[Harness]]] = {
    "smtp-plain": lambda tls: _smtp("plain", tls),
    "smtp-starttls": lambda tls: _smtp("starttls", tls),
    "smtp-ssl": lambda tls: _smtp("ssl", tls),
    "webhook-http": lambda tls: _webhook(None),
    "webhook-https": lambda tls: _webhook(tls),
}


@pytest.fixture(params=sorted(HARNESSES))
def harness(request: pytest.FixtureRequest, tls: TlsFiles) -> Iterator[Harness]:
    yield from HARNESSES[request.param](tls)


def test_channel_is_named(harness: Harness) -> None:
    assert harness.notifier.channel in ("email", "webhook")
    assert harness.note("x").channel == harness.notifier.channel


def test_delivers_once_with_the_id(harness: Harness) -> None:
    harness.notifier.deliver(harness.note("contract-1"))
    assert harness.received("contract-1") == 1
    assert harness.received("contract-2") == 0


def test_receiver_down_is_retryable(harness: Harness) -> None:
    harness.stop()
    with pytest.raises(DeliveryError) as caught:
        harness.notifier.deliver(harness.note("down-1"))
    assert caught.value.retryable


def test_bad_recipient_is_permanent(harness: Harness) -> None:
    note = harness.note("bad-1")
    note.recipient = harness.bad_recipient
    with pytest.raises(DeliveryError) as caught:
        harness.notifier.deliver(note)
    assert not caught.value.retryable


def test_through_the_outbox(harness: Harness, store: DuckDBStore) -> None:
    worker = OutboxWorker(store, {harness.notifier.channel: harness.notifier})
    assert worker.enqueue([harness.note("outbox-1")]) == 1
    assert worker.run_once() == 1
    [saved] = store.outbox_list()
    assert saved.status is NotificationStatus.DELIVERED
    assert saved.attempts == 1 and saved.delivered_at is not None
    assert harness.received("outbox-1") == 1
