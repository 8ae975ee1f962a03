"""``GET /v1/stream``: live events, detections and alerts over server-sent events, on a
real server; slow clients are dropped without slowing ingestion."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from livesupport import ADMIN_KEY, Live
from usertide.live import Subscription
from usertide.server import BackgroundServer

CHROME = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36"
)
HOME = "73.92.12.5"  # a US residential address
TOR_EXIT = "185.220.101.4"
PADDING = "x" * 16_000  # big events fill a non-reading client's socket buffers quickly


def messages(lines: Iterator[str]) -> Iterator[dict[str, str]]:
    """Server-sent events as {field: value}; a comment as {"comment": text}."""
    message: dict[str, str] = {}
    for line in lines:
        if not line:
            if message:
                yield message
            message = {}
        elif line.startswith(":"):
            yield {"comment": line[1:].strip()}
        else:
            name, _, value = line.partition(":")
            message[name] = value.removeprefix(" ")
    if message:
        yield message


def data_of(stream: Iterator[dict[str, str]]) -> list[tuple[str, dict[str, Any]]]:
    return [(m["event"], json.loads(m["data"])) for m in stream if "data" in m]


def track(user: str | None, name: str, i: int, **extra: Any) -> dict[str, Any]:
    item: dict[str, Any] = {"type": "track", "event": name, "messageId": f"m-{name}-{i}"}
    item["timestamp"] = datetime.fromtimestamp(1_764_583_200 + i, UTC).isoformat()
    if user is not None:
        item["userId"] = user
    return {**item, **extra}


def send(live: Live, items: list[dict[str, Any]]) -> None:
    r = live.client.post("/v1/batch", json={"batch": items}, headers=live.write)
    assert r.status_code == 200, r.text


def until(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def stuck_client(live: Live) -> tuple[socket.socket, Subscription]:
    """A client that asks for the stream and never reads (a tiny receive buffer)."""
    broadcaster = live.service.broadcaster
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect((live.settings.host, live.settings.port))
    sock.sendall(
        b"GET /v1/stream?kinds=event HTTP/1.1\r\nHost: usertide\r\n"
        + f"Authorization: Bearer {ADMIN_KEY}\r\nConnection: close\r\n\r\n".encode()
    )
    until(lambda: broadcaster.clients == 1)
    (sub,) = broadcaster._subs
    return sock, sub


def flood(live: Live, events: int, tag: str) -> float:
    """Seconds to ingest big events in batches of 20 (acknowledged: durable)."""
    started = time.perf_counter()
    for b in range(0, events, 20):
        send(live, [track("flood", tag, b + i, properties={"pad": PADDING}) for i in range(20)])
    return time.perf_counter() - started


def read_all(sock: socket.socket) -> bytes:
    sock.settimeout(10)
    chunks = []
    while chunk := sock.recv(1 << 16):
        chunks.append(chunk)
    return b"".join(chunks)


def test_events_arrive_in_order_with_their_offsets(live: Live) -> None:
    params = {"kinds": "event", "limit": "30"}
    with live.client.stream("GET", "/v1/stream", params=params, headers=live.admin) as r:
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        assert r.headers["cache-control"] == "no-cache"
        for b in range(3):
            send(live, [track("jane", "Viewed", b * 10 + i) for i in range(10)])
        got = [m for m in messages(r.iter_lines()) if "data" in m]
    assert [m["event"] for m in got] == ["event"] * 30
    data = [json.loads(m["data"]) for m in got]
    assert [d["id"] for d in data] == [f"m-Viewed-{i}" for i in range(30)]
    offsets = [int(m["id"]) for m in got]
    assert offsets == sorted(set(offsets)) and offsets == [d["offset"] for d in data]
    stored = live.client.get("/v1/events?limit=30", headers=live.admin).json()["events"]
    assert sorted(offsets) == sorted(e["offset"] for e in stored)
    assert data[0]["user_id"] == "jane" and data[0]["name"] == "Viewed"


def test_filters_by_user_anonymous_id_and_names(live: Live) -> None:
    names = [("user_id", "jane"), ("name", "Signed Up"), ("name", "Order Completed,Refunded")]
    jane = live.client.stream(
        "GET", "/v1/stream", params=[*names, ("limit", "3")], headers=live.admin
    )
    visitor = live.client.stream(
        "GET", "/v1/stream", params={"user_id": "visitor-7", "limit": "1"}, headers=live.admin
    )
    with jane as a, visitor as b:
        send(
            live,
            [
                track("jane", "Viewed", 1),
                track("bob", "Signed Up", 2),
                track("jane", "Signed Up", 3),
                track(None, "Viewed", 4, anonymousId="visitor-7"),
                track("jane", "Order Completed", 5),
                track("jane", "Refunded", 6),
            ],
        )
        for_jane = data_of(messages(a.iter_lines()))
        for_visitor = data_of(messages(b.iter_lines()))
    assert [(k, d["name"], d["user_id"]) for k, d in for_jane] == [
        ("event", "Signed Up", "jane"),
        ("event", "Order Completed", "jane"),
        ("event", "Refunded", "jane"),
    ]
    assert [(k, d["anonymous_id"]) for k, d in for_visitor] == [("event", "visitor-7")]


def test_a_failed_sign_in_burst_streams_detections_then_the_alert(live: Live) -> None:
    def attempt(ip: str, second: int, success: bool) -> None:
        body = {"user_id": "jane", "ip": ip, "user_agent": CHROME, "success": success}
        body["timestamp"] = datetime.fromtimestamp(1_764_583_200 + second, UTC).isoformat()
        r = live.client.post("/v1/risk/login", json=body, headers=live.admin)
        assert r.status_code == 200, r.text

    params = {"user_id": "jane", "kinds": "detection,alert", "timeout": "20"}
    with live.client.stream("GET", "/v1/stream", params=params, headers=live.admin) as r:
        for day in range(5):
            attempt(HOME, day * 86_400, True)
        for i in range(7):
            attempt(TOR_EXIT, 5 * 86_400 + i, False)
        got: list[tuple[str, dict[str, Any]]] = []
        for message in messages(r.iter_lines()):
            if "data" in message:
                got.append((message["event"], json.loads(message["data"])))
                kind, data = got[-1]
                if kind == "alert" and "brute_force" in {c["code"] for c in data["reasons"]}:
                    break
    kind, alert = got[-1]
    assert kind == "alert" and alert["user_id"] == "jane" and alert["id"].startswith("al_")
    detections = [d for k, d in got if k == "detection" and d["event_id"] == alert["event_id"]]
    assert detections and detections[0]["detector"] == alert["detector"]
    assert {k for k, _ in got} <= {"detection", "alert"}


def test_a_client_that_does_not_read_is_dropped_and_never_holds_ingestion_up(
    live: Live,
) -> None:
    # Speed is the benchmarks' business; here: every event is taken and processed while
    # the client reads nothing, and what it was sent stays bounded.
    broadcaster = live.service.broadcaster
    broadcaster.capacity = 20
    broadcaster.grace = 30.0  # the dropped client's last message waits until it reads
    sock, sub = stuck_client(live)
    flood(live, 600, "watched")
    live.settle()
    until(lambda: broadcaster.dropped == 1)
    assert broadcaster.clients == 0  # its slot is free at once
    assert sub.peak <= 20  # bounded: the rest was never queued
    body = read_all(sock)  # now it reads: what fitted, then the end of the stream
    assert body.endswith(b"0\r\n\r\n")
    assert b'event: dropped\ndata: {"reason":"too_slow"}' in body[-200:]
    assert body.count(b"event: event\n") < 600  # what did not fit was never kept
    sock.close()


def test_admin_key_is_required(live: Live) -> None:
    assert live.client.get("/v1/stream").status_code == 401
    r = live.client.get("/v1/stream", headers={"Authorization": "Bearer nope"})
    assert r.status_code == 401 and r.json()["error"]["code"] == "unauthorized"


@pytest.mark.parametrize(
    ("query", "named"),
    [
        ("kinds=event,sessions", "kinds"),
        ("kinds=", "kinds"),
        ("limit=0", "limit"),
        ("limit=ten", "limit"),
        ("timeout=-1", "timeout"),
        ("timeout=nan", "timeout"),
        ("timeout=1e9", "timeout"),
        ("user_id=", "user_id"),
        ("name=,", "name"),
    ],
)
def test_bad_parameters_are_400_naming_them(live: Live, query: str, named: str) -> None:
    r = live.client.get(f"/v1/stream?{query}", headers=live.admin)
    assert r.status_code == 400
    error = r.json()["error"]
    assert error["code"] == "invalid_parameter" and f"'{named}'" in error["message"]
    assert live.service.broadcaster.clients == 0


def test_heartbeat_and_timeout_end_the_stream(live: Live) -> None:
    live.service.broadcaster.heartbeat = 0.05
    started = time.monotonic()
    r = live.client.get("/v1/stream?timeout=0.4", headers=live.admin)
    assert r.status_code == 200 and time.monotonic() - started < 3
    assert r.text.startswith("retry: 3000\n\n: ping\n\n") and r.text.count(": ping") >= 3
    assert live.client.head("/v1/stream", headers=live.admin).status_code == 200
    # the slot is freed as the response ends, a moment after the client has it all
    until(lambda: live.service.broadcaster.clients == 0)


def test_clients_are_limited_and_a_disconnect_frees_the_slot(live: Live) -> None:
    broadcaster = live.service.broadcaster
    broadcaster.max_clients = 1
    with live.client.stream("GET", "/v1/stream", headers=live.admin) as r:
        assert r.status_code == 200
        busy = live.client.get("/v1/stream", headers=live.admin)
        assert busy.status_code == 503 and busy.json()["error"]["code"] == "unavailable"
    until(lambda: broadcaster.clients == 0)  # the server saw the disconnect
    assert live.client.get("/v1/stream?limit=1&timeout=0.1", headers=live.admin).status_code == 200


def test_shutdown_ends_streams_at_once_even_a_stuck_one(server: BackgroundServer) -> None:
    client = httpx.Client(base_url=server.url, timeout=10)
    live = Live(server.url, server.service, server.settings, client)
    broadcaster = server.service.broadcaster
    broadcaster.grace = 0.2
    stuck, sub = stuck_client(live)
    for i in range(20):  # until its writer waits for the socket
        flood(live, 100, f"stuck{i}")
        live.settle()
        if sub.frames:
            break
    assert sub.frames
    lines: list[str] = []

    def reader() -> None:
        with client.stream("GET", "/v1/stream", headers=live.admin) as r:
            lines.extend(r.iter_lines())

    thread = threading.Thread(target=reader)
    thread.start()
    until(lambda: broadcaster.clients == 2)
    started = time.monotonic()
    server.stop()
    assert not server.thread.is_alive() and time.monotonic() - started < 5
    thread.join(5)
    assert not thread.is_alive() and lines[0] == "retry: 3000"  # ended without error
    assert sub.ended == "closed"
    stuck.close()
    client.close()
