"""The load generator: pre-built HTTP/1.1 requests over keep-alive connections.

Every request is encoded to bytes before the clock starts; at run time a connection
only writes bytes and parses the status line and ``Content-Length`` of the answer
(an ``asyncio.Protocol`` on uvloop when available, so a request costs the client a few
microseconds). Load runs in child processes (forked, so the request bytes are shared,
not copied or pickled), in one of two modes:

* closed loop (``rate=None``): each connection sends its next request as soon as the
  previous answer arrives; measures the maximum throughput at that concurrency;
* open loop (``rate=R``): requests are scheduled at fixed times ``i / R`` whatever the
  server does (a pacing thread keeps the schedule to tens of microseconds), and
  latency is measured from the *scheduled* time, so a server that falls behind is
  charged for the queueing it causes (no coordinated omission).

``python -m benchmarks.loadgen --trivial-server PORT`` runs a server that answers every
request with a fixed body without looking at it: the load generator's own ceiling is
measured against it (see ``benchmarks/bench_loadgen.py``).
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing as mp
import os
import queue
import socket
import sys
import threading
import time
from array import array
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

try:  # uvloop comes with uvicorn[standard]; fall back to asyncio's loop without it
    import uvloop
except ImportError:  # pragma: no cover
    uvloop = None  # type: ignore[assignment]


def build_request(
    method: str,
    path: str,
    body: bytes = b"",
    *,
    host: str = "127.0.0.1",
    headers: dict[str, str] | None = None,
) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}"]
    for name, value in (headers or {}).items():
        lines.append(f"{name}: {value}")
    if body or method in ("POST", "PUT"):
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


# -- the client connection -----------------------------------------------------------


class _Conn(asyncio.Protocol):
    """One connection; one request in flight at a time (no pipelining)."""

    def __init__(self) -> None:
        self.buf = bytearray()
        self.transport: Any = None  # uvloop's transports are not asyncio.Transport
        self.waiter: asyncio.Future[int] | None = None
        self.lost = False
        self.closing = False  # the server answered "Connection: close"

    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(ConnectionError("connection closed by the server"))

    def data_received(self, data: bytes) -> None:
        buf = self.buf
        buf += data
        end = buf.find(b"\r\n\r\n")
        if end < 0:
            return
        head = bytes(buf[:end]).lower()
        marker = head.find(b"\r\ncontent-length:")
        if marker < 0:
            raise RuntimeError("the load generator needs responses with Content-Length")
        stop = head.find(b"\r\n", marker + 2)
        length = int(head[marker + 17 : stop if stop > 0 else len(head)])
        total = end + 4 + length
        if len(buf) < total:
            return
        status = int(head[9:12])
        if b"\r\nconnection: close" in head:
            self.closing = True
        del buf[:total]
        waiter, self.waiter = self.waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(status)


class _Slot:
    """A client "seat": keeps a keep-alive connection, reconnecting when the server
    closes it (servers without keep-alive pay for the reconnect in their latency)."""

    def __init__(self, host: str, port: int, timeout: float) -> None:
        self.host = host
        self.port = port
        self.timeout = timeout
        self.conn: _Conn | None = None

    async def connect(self) -> None:
        loop = asyncio.get_running_loop()
        _, self.conn = await loop.create_connection(_Conn, self.host, self.port)

    async def send(self, request: bytes) -> int:
        conn = self.conn
        if conn is None or conn.lost or conn.closing:
            self.close()
            await self.connect()
            conn = self.conn
            assert conn is not None
        conn.waiter = asyncio.get_running_loop().create_future()
        conn.transport.write(request)
        try:
            return await asyncio.wait_for(conn.waiter, self.timeout)
        except (ConnectionError, TimeoutError):
            self.close()
            raise

    def close(self) -> None:
        if self.conn is not None and self.conn.transport is not None:
            self.conn.transport.close()
        self.conn = None


_FAILURES = (ConnectionError, TimeoutError, OSError)


# -- one worker process ----------------------------------------------------------------


@dataclass
class _Part:
    sent: int = 0
    errors: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
    latencies_ns: array = field(default_factory=lambda: array("q"))
    started: float = 0.0
    finished: float = 0.0
    cpu: float = 0.0  # process CPU seconds while the load ran


async def _closed_loop(
    slots: list[_Slot], requests: Sequence[bytes], duration: float | None
) -> _Part:
    part = _Part()
    iterator = iter(requests)
    lat = part.latencies_ns
    perf = time.perf_counter_ns

    async def drive(slot: _Slot) -> None:
        for request in iterator:
            t0 = perf()
            try:
                status = await slot.send(request)
            except _FAILURES:
                part.errors += 1
                continue
            lat.append(perf() - t0)
            part.statuses[status] += 1
            if deadline is not None and time.monotonic() >= deadline:
                return

    part.started = time.monotonic()
    part.cpu = time.process_time()
    deadline = part.started + duration if duration else None
    await asyncio.gather(*(drive(s) for s in slots))
    part.finished = time.monotonic()
    part.cpu = time.process_time() - part.cpu
    part.sent = len(lat) + part.errors
    for slot in slots:
        slot.close()
    return part


async def _open_loop(slots: list[_Slot], requests: Sequence[bytes], rate: float) -> _Part:
    part = _Part()
    idle: asyncio.Queue[_Slot] = asyncio.Queue()
    for slot in slots:
        idle.put_nowait(slot)
    lat = part.latencies_ns
    loop = asyncio.get_running_loop()
    tasks: set[asyncio.Task[None]] = set()

    async def one(request: bytes, scheduled_ns: int) -> None:
        slot = await idle.get()
        try:
            status = await slot.send(request)
        except _FAILURES:
            part.errors += 1
            return
        finally:
            idle.put_nowait(slot)
        lat.append(time.perf_counter_ns() - scheduled_ns)
        part.statuses[status] += 1

    interval_ns = 1e9 / rate
    n = len(requests)
    sent_all: asyncio.Future[None] = loop.create_future()

    def dispatch(i: int, scheduled_ns: int) -> None:
        task = loop.create_task(one(requests[i], scheduled_ns))
        tasks.add(task)
        task.add_done_callback(tasks.discard)

    def pace() -> None:
        # A thread keeps the schedule: the event loop's timers are millisecond-grained
        # (a request would leave up to ~1 ms late, which its latency includes), while
        # a thread's sleep wakes within tens of microseconds.
        for i in range(n):
            due = t0 + int(i * interval_ns)
            wait_ns = due - time.perf_counter_ns()
            if wait_ns > 0:
                time.sleep(wait_ns / 1e9)
            loop.call_soon_threadsafe(dispatch, i, due)
        loop.call_soon_threadsafe(sent_all.set_result, None)

    part.started = time.monotonic()
    part.cpu = time.process_time()
    t0 = time.perf_counter_ns()
    pacer = threading.Thread(target=pace, name="loadgen-pacer", daemon=True)
    pacer.start()
    await sent_all
    pacer.join()
    if tasks:
        await asyncio.gather(*tasks)
    part.finished = time.monotonic()
    part.cpu = time.process_time() - part.cpu
    part.sent = n
    for slot in slots:
        slot.close()
    return part


def _worker(
    host: str,
    port: int,
    requests: Sequence[bytes],
    connections: int,
    rate: float | None,
    duration: float | None,
    timeout: float,
    barrier: mp.synchronize.Barrier,
    results: mp.queues.Queue,  # type: ignore[type-arg]
) -> None:
    async def main() -> _Part:
        # Connect first (not timed), then start together with the other workers.
        slots = [_Slot(host, port, timeout) for _ in range(connections)]
        for slot in slots:
            await slot.connect()
        barrier.wait(timeout=60)
        if rate is None:
            return await _closed_loop(slots, requests, duration)
        return await _open_loop(slots, requests, rate)

    try:
        part = _run_loop(main())
        results.put(
            (
                part.sent,
                part.errors,
                dict(part.statuses),
                part.latencies_ns.tobytes(),
                part.started,
                part.finished,
                part.cpu,
            )
        )
    except BaseException as exc:
        results.put(("error", repr(exc)))
        raise


def _run_loop(coro: object) -> _Part:
    if uvloop is not None:
        return uvloop.run(coro)  # type: ignore[arg-type,no-any-return]
    return asyncio.run(coro)  # type: ignore[arg-type,no-any-return]


# -- the public entry point -------------------------------------------------------------


@dataclass
class LoadResult:
    requests: int
    errors: int
    statuses: dict[int, int]
    seconds: float
    latencies_ms: list[float]  # sorted
    started: float  # time.monotonic() (system-wide clock) when the first worker started
    finished: float
    cpu_seconds: float  # CPU used by the load generator's processes

    @property
    def cpu_cores(self) -> float:
        """The load generator's own CPU use, in cores, while it ran."""
        return self.cpu_seconds / self.seconds if self.seconds > 0 else 0.0

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds > 0 else 0.0

    @property
    def ok(self) -> int:
        return sum(n for s, n in self.statuses.items() if 200 <= s < 300)

    def percentile(self, q: float) -> float:
        return percentile(self.latencies_ms, q)


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile of sorted ``values`` (q in 0..100)."""
    if not values:
        return float("nan")
    rank = max(1, min(len(values), round(q / 100 * len(values) + 0.5)))
    return values[rank - 1]


def run_load(
    port: int,
    requests: Sequence[bytes],
    *,
    host: str = "127.0.0.1",
    connections: int = 8,
    processes: int = 1,
    rate: float | None = None,
    duration: float | None = None,
    timeout: float = 60.0,
) -> LoadResult:
    """Send ``requests`` (each once, round-robin across processes) and measure.

    ``rate`` switches to open loop at that many requests per second in total;
    ``duration`` stops a closed-loop run early; a request without an answer after
    ``timeout`` seconds counts as an error. Runs in forked child processes.
    """
    return LoadRun(
        port,
        requests,
        host=host,
        connections=connections,
        processes=processes,
        rate=rate,
        duration=duration,
        timeout=timeout,
    ).result()


class LoadRun:
    """A load run in the background (same arguments as :func:`run_load`): the caller
    can sample the server while it runs, polling :meth:`done`, then take
    :meth:`result`."""

    def __init__(
        self,
        port: int,
        requests: Sequence[bytes],
        *,
        host: str = "127.0.0.1",
        connections: int = 8,
        processes: int = 1,
        rate: float | None = None,
        duration: float | None = None,
        timeout: float = 60.0,
    ) -> None:
        processes = max(1, min(processes, len(requests)))
        conns_each = max(1, connections // processes)
        ctx = mp.get_context("fork")
        barrier = ctx.Barrier(processes)
        self._results = ctx.Queue()
        self._parts: list[tuple[Any, ...]] = []
        self._procs = []
        for p in range(processes):
            share = requests[p::processes] if processes > 1 else requests
            proc_rate = rate / processes if rate else None
            proc = ctx.Process(
                target=_worker,
                args=(
                    host,
                    port,
                    share,
                    conns_each,
                    proc_rate,
                    duration,
                    timeout,
                    barrier,
                    self._results,
                ),
                daemon=True,
            )
            proc.start()
            self._procs.append(proc)

    def done(self) -> bool:
        """Collect the workers' results that are in; True once all are."""
        while len(self._parts) < len(self._procs):
            try:
                self._parts.append(self._results.get_nowait())
            except queue.Empty:
                if not any(p.is_alive() for p in self._procs) and self._results.empty():
                    raise RuntimeError("a load generator process died without a result") from None
                return False
        return True

    def result(self, timeout: float = 900.0) -> LoadResult:
        deadline = time.monotonic() + timeout
        while not self.done():
            if time.monotonic() > deadline:
                raise TimeoutError("the load generator did not finish")
            time.sleep(0.01)
        for proc in self._procs:
            proc.join(timeout=30)
        parts = self._parts
        failures = [p[1] for p in parts if p[0] == "error"]
        if failures:
            raise RuntimeError(f"load generator failed: {failures[0]}")
        statuses: Counter[int] = Counter()
        latencies: list[float] = []
        sent = errors = 0
        for n, err, st, lat, *_ in parts:
            sent += n
            errors += err
            statuses.update(st)
            latencies.extend(x / 1e6 for x in array("q", lat))
        started = min(p[4] for p in parts)
        finished = max(p[5] for p in parts)
        latencies.sort()
        return LoadResult(
            sent,
            errors,
            dict(statuses),
            finished - started,
            latencies,
            started,
            finished,
            sum(p[6] for p in parts),
        )


# -- the trivial server (for the load generator's ceiling) -----------------------------

_TRIVIAL_RESPONSE = (
    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 16\r\n\r\n"
    b'{"success":true}'
)


class _TrivialServer(asyncio.Protocol):
    """Reads each request up to its Content-Length and answers a fixed body."""

    def __init__(self) -> None:
        self.buf = bytearray()
        self.transport: Any = None

    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        buf = self.buf
        buf += data
        while True:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                return
            head = bytes(buf[:end]).lower()
            marker = head.find(b"\r\ncontent-length:")
            length = 0
            if marker >= 0:
                stop = head.find(b"\r\n", marker + 2)
                length = int(head[marker + 17 : stop if stop > 0 else len(head)])
            total = end + 4 + length
            if len(buf) < total:
                return
            del buf[:total]
            assert self.transport is not None
            self.transport.write(_TRIVIAL_RESPONSE)


async def _serve_trivial(port: int) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(_TrivialServer, "127.0.0.1", port, backlog=1024)
    print("ready", flush=True)
    async with server:
        await server.serve_forever()


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) == 2 and args[0] == "--trivial-server":
        with contextlib.suppress(KeyboardInterrupt):
            _run_loop(_serve_trivial(int(args[1])))  # type: ignore[arg-type]
        return 0
    print("usage: python -m benchmarks.loadgen --trivial-server PORT", file=sys.stderr)
    return 2


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    raise SystemExit(main())
