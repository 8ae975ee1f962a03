"""Unit tests for usertide.client.Client against an in-process httpx.MockTransport."""

from __future__ import annotations

import base64
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import httpx
import msgspec
import pytest

from usertide.client import BatchRejected, Client, DeliveryCancelled, RetriesExhausted
from usertide.client.transport import MAX_BATCH_BYTES, parse_retry_after


class Collector:
    """A fake /v1/batch endpoint: records requests, answers from a script, then 200."""

    def __init__(self, script: list[httpx.Response | Exception] | None = None) -> None:
        self.requests: list[httpx.Request] = []
        self.script = list(script or [])
        self.delay = 0.0
        self.lock = threading.Lock()

    def __call__(self, request: httpx.Request) -> httpx.Response:
        request.read()
        if self.delay:
            time.sleep(self.delay)
        with self.lock:
            self.requests.append(request)
            step = self.script.pop(0) if self.script else None
        if isinstance(step, Exception):
            raise step
        return step or httpx.Response(200, json={"success": True})

    @property
    def bodies(self) -> list[dict[str, Any]]:
        with self.lock:
            return [msgspec.json.decode(r.content) for r in self.requests]

    @property
    def events(self) -> list[dict[str, Any]]:
        return [event for body in self.bodies for event in body["batch"]]

    def wait_for_events(self, count: int, timeout: float = 2.0) -> None:
        deadline = time.monotonic() + timeout
        while len(self.events) < count:
            assert time.monotonic() < deadline, f"only {len(self.events)} of {count} events sent"
            time.sleep(0.005)


class Sleeps:
    """Records backoff delays instead of sleeping, keeping retry tests instant."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)


@pytest.fixture
def make_client() -> Iterator[Callable[..., Client]]:
    clients: list[Client] = []

    def factory(collector: Collector, **options: Any) -> Client:
        options.setdefault("flush_interval", 10.0)  # tests flush explicitly unless they say so
        client = Client(
            "wk_test", "http://collector.test", transport=httpx.MockTransport(collector), **options
        )
        clients.append(client)
        return client

    yield factory
    for client in clients:
        client.shutdown(timeout=1.0)


def error_response(status: int, code: str, headers: dict[str, str] | None = None) -> httpx.Response:
    return httpx.Response(status, json={"error": {"code": code, "message": code}}, headers=headers)


# ---------------------------------------------------------------- wire format


def test_batch_request_has_basic_auth_and_segment_body(make_client: Callable[..., Client]) -> None:
    collector = Collector()
    client = make_client(collector)
    before = datetime.now(UTC) - timedelta(milliseconds=1)  # stamps carry milliseconds only
    message_id = client.track("u1", "Signed Up", {"plan": "pro"}, context={"ip": "203.0.113.9"})
    assert client.flush(timeout=2.0)

    (request,) = collector.requests
    assert request.method == "POST"
    assert request.url == "http://collector.test/v1/batch"
    assert request.headers["content-type"] == "application/json"
    assert request.headers["authorization"] == "Basic " + base64.b64encode(b"wk_test:").decode()

    body = collector.bodies[0]
    assert set(body) == {"batch", "sentAt"}
    assert datetime.fromisoformat(body["sentAt"]) >= before
    (event,) = body["batch"]
    assert event["type"] == "track"
    assert event["messageId"] == message_id
    assert event["userId"] == "u1"
    assert "anonymousId" not in event
    assert event["event"] == "Signed Up"
    assert event["properties"] == {"plan": "pro"}
    assert event["context"]["ip"] == "203.0.113.9"
    assert event["context"]["library"]["name"] == "usertide-python"
    assert event["timestamp"].endswith("Z")
    assert datetime.fromisoformat(event["timestamp"]) >= before


def test_each_call_type_builds_its_spec_shape(make_client: Callable[..., Client]) -> None:
    collector = Collector()
    client = make_client(collector)
    stamp = datetime(2024, 5, 1, 12, 0, 0, 250_000, tzinfo=timezone(timedelta(hours=2)))
    client.page(anonymous_id="a1", name="Pricing", properties={"path": "/pricing"}, timestamp=stamp)
    client.identify("u1", {"email": "x@example.com"}, anonymous_id="a1", message_id="m-fixed")
    client.alias("a1", "u1")
    assert client.flush(timeout=2.0)

    page, identify, alias = collector.events
    assert page["type"] == "page"
    assert page["name"] == "Pricing"
    assert page["anonymousId"] == "a1"
    assert page["properties"] == {"path": "/pricing"}
    assert page["timestamp"] == "2024-05-01T10:00:00.250Z"
    assert identify["type"] == "identify"
    assert identify["traits"] == {"email": "x@example.com"}
    assert (identify["userId"], identify["anonymousId"]) == ("u1", "a1")
    assert identify["messageId"] == "m-fixed"
    assert alias["type"] == "alias"
    assert (alias["previousId"], alias["userId"]) == ("a1", "u1")


def test_event_is_snapshotted_at_call_time(make_client: Callable[..., Client]) -> None:
    collector = Collector()
    client = make_client(collector)
    properties: dict[str, Any] = {"step": 1}
    client.track("u1", "Step", properties)
    properties["step"] = 2
    assert client.flush(timeout=2.0)
    assert collector.events[0]["properties"] == {"step": 1}


# ---------------------------------------------------------------- validation


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda c: c.track(None, "Clicked"), "user_id or anonymous_id"),
        (lambda c: c.track("", "Clicked", anonymous_id=""), "user_id or anonymous_id"),
        (lambda c: c.track("u1"), "event"),
        (lambda c: c.track("u1", ""), "event"),
        (lambda c: c.page(), "user_id or anonymous_id"),
        (lambda c: c.identify(None, {"a": 1}), "user_id or anonymous_id"),
        (lambda c: c.alias("", "u1"), "previous_id"),
        (lambda c: c.alias("a1", ""), "user_id"),
        (lambda c: c.track("u1", "Big", {"blob": "x" * 40_000}), "bytes"),
    ],
)
def test_invalid_calls_raise_immediately(
    make_client: Callable[..., Client], call: Callable[[Client], object], message: str
) -> None:
    collector = Collector()
    client = make_client(collector)
    with pytest.raises(ValueError, match=message):
        call(client)
    assert client.queued == 0


def test_unserialisable_property_raises_type_error(make_client: Callable[..., Client]) -> None:
    client = make_client(Collector())
    with pytest.raises(TypeError, match="JSON-serialisable"):
        client.track("u1", "Clicked", {"handle": object()})


def test_constructor_rejects_nonsense_settings() -> None:
    with pytest.raises(ValueError, match="write_key"):
        Client("")
    with pytest.raises(ValueError, match="flush_at"):
        Client("wk", flush_at=0)


# ---------------------------------------------------------------- batching


def test_batches_by_count(make_client: Callable[..., Client]) -> None:
    collector = Collector()
    client = make_client(collector, flush_at=3)
    for n in range(7):
        client.track("u1", "Tick", {"n": n})
    collector.wait_for_events(6)  # two full batches go out without any flush()
    assert [len(body["batch"]) for body in collector.bodies] == [3, 3]
    assert client.flush(timeout=2.0)
    assert [len(body["batch"]) for body in collector.bodies] == [3, 3, 1]
    assert [event["properties"]["n"] for event in collector.events] == list(range(7))


def test_batches_by_interval(make_client: Callable[..., Client]) -> None:
    collector = Collector()
    client = make_client(collector, flush_interval=0.05)
    started = time.monotonic()
    client.track("u1", "A")
    client.track("u1", "B")
    collector.wait_for_events(2)
    assert time.monotonic() - started >= 0.04
    assert [len(body["batch"]) for body in collector.bodies] == [2]


def test_batches_by_size(make_client: Callable[..., Client]) -> None:
    collector = Collector()
    client = make_client(collector)
    for _ in range(40):
        client.track("u1", "Blob", {"blob": "x" * 30_000})
    assert client.flush(timeout=2.0)
    sizes = [len(request.content) for request in collector.requests]
    assert len(sizes) >= 3
    assert all(size <= MAX_BATCH_BYTES for size in sizes)
    assert len(collector.events) == 40


def test_flush_blocks_until_sent(make_client: Callable[..., Client]) -> None:
    collector = Collector()
    collector.delay = 0.1
    client = make_client(collector)
    for n in range(5):
        client.track("u1", "Tick", {"n": n})
    assert client.flush()
    assert len(collector.events) == 5  # recorded after the handler's delay, so really sent


def test_flush_on_empty_queue_returns_at_once(make_client: Callable[..., Client]) -> None:
    client = make_client(Collector())
    assert client.flush(timeout=0.01)


def test_flush_times_out_while_collector_is_slow(make_client: Callable[..., Client]) -> None:
    collector = Collector()
    collector.delay = 0.3
    client = make_client(collector)
    client.track("u1", "Tick")
    assert client.flush(timeout=0.05) is False
    assert client.flush(timeout=2.0)


def test_concurrent_producers_lose_nothing(make_client: Callable[..., Client]) -> None:
    collector = Collector()
    client = make_client(collector, flush_at=25)

    def produce(worker: int) -> None:
        for n in range(100):
            client.track(f"u{worker}", "Tick", {"n": n})

    threads = [threading.Thread(target=produce, args=(w,)) for w in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert client.flush(timeout=2.0)
    events = collector.events
    assert len(events) == 800
    assert len({event["messageId"] for event in events}) == 800


# ---------------------------------------------------------------- retries


def test_retries_503_with_jittered_backoff(make_client: Callable[..., Client]) -> None:
    collector = Collector([error_response(503, "unavailable"), error_response(502, "bad_gateway")])
    sleeps = Sleeps()
    client = make_client(collector, sleep=sleeps)
    client.track("u1", "Tick")
    assert client.flush(timeout=2.0)
    assert len(collector.requests) == 3
    assert len(sleeps.delays) == 2
    assert 0 <= sleeps.delays[0] <= 0.5  # full jitter: uniform(0, base * 2**0)
    assert 0 <= sleeps.delays[1] <= 1.0
    first, last = collector.bodies[0], collector.bodies[-1]
    assert first["batch"] == last["batch"]


def test_honours_retry_after_on_429(make_client: Callable[..., Client]) -> None:
    collector = Collector([error_response(429, "rate_limited", {"Retry-After": "7"})])
    sleeps = Sleeps()
    client = make_client(collector, sleep=sleeps)
    client.track("u1", "Tick")
    assert client.flush(timeout=2.0)
    assert sleeps.delays == [7.0]
    assert len(collector.requests) == 2


def test_retries_connection_errors(make_client: Callable[..., Client]) -> None:
    collector = Collector([httpx.ConnectError("refused"), httpx.ReadTimeout("slow")])
    sleeps = Sleeps()
    client = make_client(collector, sleep=sleeps)
    client.track("u1", "Tick")
    assert client.flush(timeout=2.0)
    assert len(collector.requests) == 3
    assert len(collector.events) == 3  # the same batch, re-sent


def test_gives_up_after_max_retries(make_client: Callable[..., Client]) -> None:
    collector = Collector([error_response(500, "internal")] * 10)
    failures: list[tuple[Exception, list[dict[str, Any]]]] = []
    client = make_client(
        collector, max_retries=2, sleep=Sleeps(), on_error=lambda e, b: failures.append((e, b))
    )
    client.track("u1", "Tick")
    assert client.flush(timeout=2.0)
    assert len(collector.requests) == 3
    ((error, events),) = failures
    assert isinstance(error, RetriesExhausted)
    assert error.attempts == 3
    assert [event["event"] for event in events] == ["Tick"]


def test_never_retries_400(make_client: Callable[..., Client]) -> None:
    collector = Collector([error_response(400, "invalid_batch")])
    failures: list[tuple[Exception, list[dict[str, Any]]]] = []
    sleeps = Sleeps()
    client = make_client(collector, sleep=sleeps, on_error=lambda e, b: failures.append((e, b)))
    client.track("u1", "Tick")
    client.track("u2", "Tock")
    assert client.flush(timeout=2.0)
    assert len(collector.requests) == 1
    assert sleeps.delays == []
    ((error, events),) = failures
    assert isinstance(error, BatchRejected)
    assert (error.status, error.code) == (400, "invalid_batch")
    assert [event["userId"] for event in events] == ["u1", "u2"]
    # The rejected batch is gone; the next event goes out normally.
    client.track("u3", "Tick")
    assert client.flush(timeout=2.0)
    assert collector.events[-1]["userId"] == "u3"


def test_failing_on_error_callback_does_not_stop_the_sender(
    make_client: Callable[..., Client], caplog: pytest.LogCaptureFixture
) -> None:
    collector = Collector([error_response(401, "invalid_write_key")])

    def explode(error: Exception, events: list[dict[str, Any]]) -> None:
        raise RuntimeError("callback bug")

    client = make_client(collector, on_error=explode)
    client.track("u1", "Tick")
    assert client.flush(timeout=2.0)
    client.track("u1", "Tock")
    assert client.flush(timeout=2.0)
    assert len(collector.requests) == 2
    assert "on_error callback raised" in caplog.text


def test_flush_from_on_error_fails_instead_of_deadlocking(
    make_client: Callable[..., Client], caplog: pytest.LogCaptureFixture
) -> None:
    collector = Collector([error_response(400, "invalid_batch")])
    clients: list[Client] = []
    client = make_client(collector, on_error=lambda e, b: clients[0].flush())
    clients.append(client)
    client.track("u1", "Tick")
    assert client.flush(timeout=2.0)
    assert "cannot be called from the on_error callback" in caplog.text


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, None),
        ("3", 3.0),
        ("1.5", 1.5),
        ("-4", 0.0),
        ("soon", None),
        ("Wed, 01 May 2024 12:00:30 GMT", 30.0),
    ],
)
def test_parse_retry_after(header: str | None, expected: float | None) -> None:
    now = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)
    assert parse_retry_after(header, now=now) == expected


# ---------------------------------------------------------------- queue limits and shutdown


def test_full_queue_drops_newest_and_counts(make_client: Callable[..., Client]) -> None:
    collector = Collector()
    client = make_client(collector, max_queue_size=2)
    for name in ("First", "Second", "Third", "Fourth"):
        client.track("u1", name)
    assert client.dropped == 2
    assert client.flush(timeout=2.0)
    assert [event["event"] for event in collector.events] == ["First", "Second"]


def test_shutdown_flushes_and_later_events_are_dropped(make_client: Callable[..., Client]) -> None:
    collector = Collector()
    client = make_client(collector)
    client.track("u1", "A")
    client.page("u1", "Home")
    client.shutdown()
    assert [event["type"] for event in collector.events] == ["track", "page"]
    client.track("u1", "Late")
    assert client.dropped == 1
    client.shutdown()  # idempotent


def test_context_manager_shuts_down() -> None:
    collector = Collector()
    with Client(
        "wk", "http://collector.test", flush_interval=10.0, transport=httpx.MockTransport(collector)
    ) as client:
        client.track("u1", "Inside")
    assert [event["event"] for event in collector.events] == ["Inside"]


def test_shutdown_timeout_reports_unsent_events(make_client: Callable[..., Client]) -> None:
    # Real (interruptible) sleeps and a long Retry-After: only shutdown's timeout ends this.
    collector = Collector([error_response(503, "unavailable", {"Retry-After": "30"})] * 10)
    failures: list[tuple[Exception, list[dict[str, Any]]]] = []
    client = make_client(collector, on_error=lambda e, b: failures.append((e, b)))
    client.track("u1", "Stuck")
    started = time.monotonic()
    client.shutdown(timeout=0.1)
    assert time.monotonic() - started < 1.0
    assert len(failures) == 1
    error, events = failures[0]
    assert isinstance(error, DeliveryCancelled)
    assert [event["event"] for event in events] == ["Stuck"]
