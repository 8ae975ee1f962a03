"""Webhook delivery against a real HTTP(S) receiver: the signed request, status codes,
retries through the outbox, and the SSRF guard in front of every request."""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator
from datetime import timedelta

import msgspec
import pytest
from notify_support import T0, WEBHOOK_SECRET, WebhookReceiver, make_note

from usertide.notify import (
    DeliveryError,
    Notification,
    NotificationStatus,
    OutboxWorker,
    WebhookConfig,
    WebhookNotifier,
    verify_signature,
)
from usertide.notify.webhook import sign
from usertide.store import DuckDBStore

LOCAL = frozenset({"127.0.0.1"})


def hook(
    receiver: WebhookReceiver, path: str = "/hooks/usertide", note_id: str = "n1"
) -> Notification:
    return make_note(id=note_id, channel="webhook", recipient=receiver.url(path))


@pytest.fixture
def notifier() -> Iterator[WebhookNotifier]:
    n = WebhookNotifier(WebhookConfig(WEBHOOK_SECRET, timeout=2, allowed_hosts=LOCAL))
    yield n
    n.close()


def resolving_to(
    *addresses: str, calls: list[str] | None = None
) -> Callable[[str, int], list[str]]:
    def resolve(host: str, port: int) -> list[str]:
        if calls is not None:
            calls.append(host)
        return list(addresses)

    return resolve


# -- the request ------------------------------------------------------------------------
def test_request_is_signed_json_with_the_delivery_id(
    notifier: WebhookNotifier, receiver: WebhookReceiver
) -> None:
    note = hook(receiver, "/hooks/usertide?tenant=acme", "delivery-7")
    notifier.deliver(note)
    [got] = receiver.received
    assert got.path == "/hooks/usertide?tenant=acme"
    assert msgspec.json.decode(got.body) == note.payload
    assert got.headers["content-type"] == "application/json"
    assert got.headers["user-agent"] == "usertide-webhook/1"
    assert got.headers["x-usertide-delivery"] == "delivery-7"
    assert got.headers["host"] == f"127.0.0.1:{receiver.port}"
    assert got.signature_ok
    assert not verify_signature("another-secret", got.headers["x-usertide-signature"], got.body)


def test_signature_header_format() -> None:
    header = sign("s3cret", b'{"a":1}', 1_700_000_000)
    t, v1 = header.split(",")
    assert t == "t=1700000000"
    assert v1.startswith("v1=") and len(v1) == 3 + 64


# -- verify_signature -------------------------------------------------------------------
BODY = b'{"alert_id":"a1"}'
NOW = 1_700_000_000


@pytest.mark.parametrize(
    ("header", "body", "ok"),
    [
        (sign(WEBHOOK_SECRET, BODY, NOW), BODY, True),
        (sign(WEBHOOK_SECRET, BODY, NOW), BODY.decode(), True),  # str bodies too
        (sign(WEBHOOK_SECRET, BODY, NOW - 300), BODY, True),  # at the tolerance
        (sign(WEBHOOK_SECRET, BODY, NOW - 301), BODY, False),  # a replay, too old
        (sign(WEBHOOK_SECRET, BODY, NOW + 301), BODY, False),  # from the future
        (sign(WEBHOOK_SECRET, BODY, NOW), BODY + b" ", False),  # body changed
        (sign("other", BODY, NOW), BODY, False),  # wrong secret
        (sign(WEBHOOK_SECRET, BODY, NOW).replace(f"t={NOW}", f"t={NOW + 1}"), BODY, False),
        (f"v1=junk,{sign(WEBHOOK_SECRET, BODY, NOW)}", BODY, True),  # rotation: any v1
        (f"t={NOW}", BODY, False),
        (sign(WEBHOOK_SECRET, BODY, NOW).split(",")[1], BODY, False),  # no t
        (f"t=abc,{sign(WEBHOOK_SECRET, BODY, NOW).split(',')[1]}", BODY, False),
        ("", BODY, False),
        ("garbage", BODY, False),
        (f"t={NOW},v1=é", BODY, False),
    ],
)
def test_verify_signature(header: str, body: bytes | str, ok: bool) -> None:
    assert verify_signature(WEBHOOK_SECRET, header, body, now=NOW) is ok


def test_verify_signature_tolerance_is_adjustable() -> None:
    header = sign(WEBHOOK_SECRET, BODY, NOW - 30)
    assert not verify_signature(WEBHOOK_SECRET, header, BODY, tolerance=10, now=NOW)
    assert verify_signature(WEBHOOK_SECRET.encode(), header, BODY, tolerance=60, now=NOW)


# -- status codes -------------------------------------------------------------------------
@pytest.mark.parametrize("status", [200, 201, 202, 204])
def test_2xx_is_delivered(
    notifier: WebhookNotifier, receiver: WebhookReceiver, status: int
) -> None:
    receiver.statuses.append(status)
    notifier.deliver(hook(receiver))


@pytest.mark.parametrize(
    ("status", "retryable"),
    [
        (408, True),
        (429, True),
        (500, True),
        (502, True),
        (503, True),
        (400, False),
        (401, False),
        (403, False),
        (404, False),
        (410, False),
        (422, False),
    ],
)
def test_failure_status(
    notifier: WebhookNotifier, receiver: WebhookReceiver, status: int, retryable: bool
) -> None:
    receiver.statuses.append(status)
    with pytest.raises(DeliveryError) as caught:
        notifier.deliver(hook(receiver))
    assert caught.value.retryable is retryable
    assert str(status) in caught.value.message


@pytest.mark.parametrize("status", [301, 302, 307, 308])
def test_redirects_are_not_followed(
    notifier: WebhookNotifier, receiver: WebhookReceiver, status: int
) -> None:
    receiver.statuses.append(status)
    receiver.extra_headers["Location"] = receiver.url("/elsewhere")
    with pytest.raises(DeliveryError) as caught:
        notifier.deliver(hook(receiver))
    assert not caught.value.retryable
    assert [r.path for r in receiver.received] == ["/hooks/usertide"]


def test_slow_receiver_times_out_retryably(receiver: WebhookReceiver) -> None:
    receiver.delay = 1.0
    notifier = WebhookNotifier(WebhookConfig(WEBHOOK_SECRET, timeout=0.2, allowed_hosts=LOCAL))
    with pytest.raises(DeliveryError) as caught:
        notifier.deliver(hook(receiver))
    notifier.close()
    assert caught.value.retryable


def test_errors_name_the_host_not_the_url(
    notifier: WebhookNotifier, receiver: WebhookReceiver
) -> None:
    receiver.statuses.append(500)
    with pytest.raises(DeliveryError) as caught:
        notifier.deliver(hook(receiver, "/services/T000/B000/XoXoSecretToken"))
    assert "XoXoSecretToken" not in str(caught.value)
    assert "127.0.0.1" in str(caught.value)


# -- through the outbox -----------------------------------------------------------------
def test_503_then_200_is_delivered_once(
    notifier: WebhookNotifier, receiver: WebhookReceiver, store: DuckDBStore
) -> None:
    receiver.statuses.extend([503])
    worker = OutboxWorker(store, {"webhook": notifier}, base_delay=1.0, jitter=lambda: 1.0)
    worker.enqueue([hook(receiver, note_id="retry-1")])
    assert worker.run_once(T0) == 1
    [pending] = store.outbox_list()
    assert pending.status is NotificationStatus.PENDING and pending.attempts == 1
    assert pending.next_attempt_at == T0 + timedelta(seconds=1)
    assert "503" in (pending.last_error or "")
    assert worker.run_once(T0 + timedelta(seconds=0.5)) == 0  # not due yet
    assert worker.run_once(T0 + timedelta(seconds=1)) == 1
    [done] = store.outbox_list()
    assert done.status is NotificationStatus.DELIVERED and done.attempts == 2
    assert worker.run_once(T0 + timedelta(hours=1)) == 0
    assert [r.headers["x-usertide-delivery"] for r in receiver.received] == ["retry-1"] * 2
    assert all(r.signature_ok for r in receiver.received)


def test_400_fails_without_retry(
    notifier: WebhookNotifier, receiver: WebhookReceiver, store: DuckDBStore
) -> None:
    receiver.statuses.append(400)
    worker = OutboxWorker(store, {"webhook": notifier})
    worker.enqueue([hook(receiver)])
    assert worker.run_once(T0) == 1
    [failed] = store.outbox_list()
    assert failed.status is NotificationStatus.FAILED and failed.attempts == 1
    assert "400" in (failed.last_error or "")
    assert worker.run_once(T0 + timedelta(days=1)) == 0
    assert len(receiver.received) == 1


# -- the guard, as the notifier applies it -------------------------------------------
@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:{port}/hook",
        "http://localhost:{port}/hook",
        "http://[::1]:{port}/hook",
        "http://10.0.0.1/hook",
        "http://169.254.169.254/latest/meta-data/",
        "http://0.0.0.0:{port}/hook",
        "http://[::ffff:127.0.0.1]:{port}/hook",
        "http://2130706433:{port}/hook",  # 127.0.0.1 as one number
        "ftp://example.com/hook",
        "file:///etc/passwd",
        "http://user:pw@example.com/hook",
    ],
)
def test_refused_destinations_get_no_request(receiver: WebhookReceiver, url: str) -> None:
    notifier = WebhookNotifier(WebhookConfig(WEBHOOK_SECRET, timeout=0.5))  # no exemptions
    note = make_note(channel="webhook", recipient=url.format(port=receiver.port))
    with pytest.raises(DeliveryError) as caught:
        notifier.deliver(note)
    notifier.close()
    assert not caught.value.retryable
    assert receiver.received == []


def test_connects_to_the_checked_address_with_the_named_host(receiver: WebhookReceiver) -> None:
    calls: list[str] = []
    config = WebhookConfig(WEBHOOK_SECRET, allowed_hosts={"hooks.example"})
    notifier = WebhookNotifier(config, resolver=resolving_to("127.0.0.1", calls=calls))
    url = f"http://Hooks.Example:{receiver.port}/hook"
    notifier.deliver(make_note(channel="webhook", recipient=url))
    notifier.close()
    assert calls == ["hooks.example"]  # resolved once, by the guard
    assert receiver.received[0].headers["host"] == f"hooks.example:{receiver.port}"


def test_falls_back_to_the_next_address(receiver: WebhookReceiver) -> None:
    # 127.0.0.2 is loopback too, but nothing listens there on this port.
    config = WebhookConfig(WEBHOOK_SECRET, allow_private=True)
    notifier = WebhookNotifier(config, resolver=resolving_to("127.0.0.2", "127.0.0.1"))
    notifier.deliver(make_note(channel="webhook", recipient=f"http://multi.test:{receiver.port}/"))
    notifier.close()
    assert len(receiver.received) == 1


def test_unresolvable_host_is_retryable() -> None:
    def fail(host: str, port: int) -> list[str]:
        raise socket.gaierror(socket.EAI_AGAIN, "temporary failure in name resolution")

    notifier = WebhookNotifier(WebhookConfig(WEBHOOK_SECRET), resolver=fail)
    with pytest.raises(DeliveryError) as caught:
        notifier.deliver(make_note(channel="webhook", recipient="https://hooks.example/x"))
    notifier.close()
    assert caught.value.retryable


def test_https_checks_the_certificate_against_the_host_name(
    tls_receiver: WebhookReceiver,
) -> None:
    # The receiver's certificate names localhost; a private CA is not trusted by default.
    config = WebhookConfig(WEBHOOK_SECRET, allowed_hosts={"localhost"})
    notifier = WebhookNotifier(config, resolver=resolving_to("127.0.0.1"))
    with pytest.raises(DeliveryError) as caught:
        notifier.deliver(make_note(channel="webhook", recipient=tls_receiver.url(host="localhost")))
    notifier.close()
    assert caught.value.retryable
    assert tls_receiver.received == []


def test_payload_that_is_not_json_is_permanent(
    notifier: WebhookNotifier, receiver: WebhookReceiver
) -> None:
    note = hook(receiver)
    note.payload = {"when": object()}
    with pytest.raises(DeliveryError) as caught:
        notifier.deliver(note)
    assert not caught.value.retryable
    assert receiver.received == []


def test_config_requires_a_secret_and_hides_it() -> None:
    with pytest.raises(ValueError):
        WebhookConfig("")
    assert WEBHOOK_SECRET not in repr(WebhookConfig(WEBHOOK_SECRET))
