"""Shared pieces: result rows, payloads, the server under test as a subprocess, and
reading the server's health and Prometheus histograms."""

from __future__ import annotations

import base64
import contextlib
import http.client
import itertools
import json
import math
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import msgspec

from benchmarks.loadgen import LoadResult, build_request
from usertide.server import free_port

ROOT = Path(__file__).resolve().parent.parent
ADMIN_KEY = "uta_benchmark_admin_key"
WRITE_KEY = "utw_benchmark_write_key"
BASIC = "Basic " + base64.b64encode(f"{WRITE_KEY}:".encode()).decode()


# -- results ------------------------------------------------------------------------------


@dataclass
class Row:
    """One line of the table. ``higher_is_better`` decides the ratio's direction: the
    ratio is always "times better than the baseline" (>1 means usertide is better)."""

    benchmark: str
    metric: str
    value: float
    unit: str = ""
    baseline: float | None = None
    target: float | None = None
    higher_is_better: bool = True
    note: str = ""

    @property
    def ratio(self) -> float | None:
        if self.baseline is None or not self.baseline or not self.value:
            return None
        if self.higher_is_better:
            return self.value / self.baseline
        return self.baseline / self.value

    @property
    def passed(self) -> bool | None:
        if self.target is None or math.isnan(self.value):
            return None
        if self.higher_is_better:
            return self.value >= self.target
        return self.value <= self.target


@dataclass
class Context:
    quick: bool
    tmp: Path
    notes: list[str] = field(default_factory=list)
    cache: dict[str, Any] = field(default_factory=dict)

    def note(self, text: str) -> None:
        self.notes.append(text)
        print(f"  · {text}", flush=True)


def log(text: str) -> None:
    print(text, flush=True)


# -- payloads -------------------------------------------------------------------------------


def simulated_events(count: int, *, seed: int = 7) -> list[dict[str, Any]]:
    """``count`` Segment-spec events from the demo shop, timestamped within the last
    days (so the server accepts them), each with a distinct ``messageId``.

    The simulation is sized to produce about ``count`` events; more users are simulated
    with other seeds if one run falls short.
    """
    from usertide.demo import Simulation, SimulationConfig

    out: list[dict[str, Any]] = []
    days = 1.0
    start = datetime.now(UTC) - timedelta(days=days + 0.5)
    # ~53 events per simulated user per day on the default shop config.
    for round_ in itertools.count():
        missing = count - len(out)
        if missing <= 0:
            break
        users = max(50, math.ceil(missing / 50))
        sim = Simulation(
            SimulationConfig(users=users, days=days, seed=seed + round_ * 1000, start=start)
        )
        out.extend(itertools.islice(sim.events(), missing))
    return out


def batch_bodies(events: list[dict[str, Any]], size: int = 100) -> list[bytes]:
    enc = msgspec.json.Encoder()
    return [enc.encode({"batch": events[i : i + size]}) for i in range(0, len(events), size)]


def ingest_requests(path: str, bodies: list[bytes], port: int) -> list[bytes]:
    headers = {
        "Authorization": BASIC,
        "Content-Type": "application/json",
        "User-Agent": "usertide-bench/1",
    }
    return [
        build_request("POST", path, b, host=f"127.0.0.1:{port}", headers=headers) for b in bodies
    ]


# -- servers under test ---------------------------------------------------------------------


def _bin(name: str) -> list[str]:
    script = Path(sys.executable).parent / name
    return [str(script)] if script.exists() else []


class ServerProcess:
    """A server in its own process on a free port, stopped on exit."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str], port: int) -> None:
        self.name = name
        self.argv = argv
        self.env = env
        self.port = port
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = Path(tempfile.gettempdir()) / f"usertide-bench-{name}-{port}.log"

    def start(self, ready_path: str = "/healthz", timeout: float = 60.0) -> ServerProcess:
        self._log = self.log_path.open("wb")
        self.proc = subprocess.Popen(
            self.argv, env=self.env, stdout=self._log, stderr=subprocess.STDOUT, cwd=ROOT
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited; see {self.log_path}")
            try:
                status, _ = http_get(self.port, ready_path, timeout=1.0)
                if status == 200:
                    return self
            except OSError:
                pass
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"{self.name} did not become ready; see {self.log_path}")

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None
        if hasattr(self, "_log"):
            self._log.close()

    def __enter__(self) -> ServerProcess:
        return self

    def __exit__(self, kind: type[BaseException] | None, *rest: object) -> None:
        self.stop()
        if kind is None:  # keep the server's log only when something went wrong
            self.log_path.unlink(missing_ok=True)


def usertide_server(tmp: Path, **env_overrides: str) -> ServerProcess:
    port = free_port()
    data_dir = Path(tempfile.mkdtemp(prefix="usertide-data-", dir=tmp))
    env = dict(os.environ)
    env.update(
        USERTIDE_ADMIN_KEY=ADMIN_KEY,
        USERTIDE_WRITE_KEY=WRITE_KEY,
        USERTIDE_RATE_LIMIT_RPS="1e9",
        USERTIDE_RATE_LIMIT_BURST="1e9",
        USERTIDE_LOG_LEVEL="warning",
    )
    env.update(env_overrides)
    argv = _bin("usertide") or [sys.executable, "-m", "usertide.cli"]
    argv = [*argv, "serve", "--data-dir", str(data_dir), "--port", str(port)]
    return ServerProcess("usertide", argv, env, port)


def flask_server(tmp: Path) -> ServerProcess:
    port = free_port()
    db = Path(tempfile.mkdtemp(prefix="flask-data-", dir=tmp)) / "events.sqlite3"
    argv = [sys.executable, "-m", "benchmarks.baseline_flask", "--port", str(port), "--db", str(db)]
    env = dict(os.environ, BASELINE_WRITE_KEY=WRITE_KEY)
    return ServerProcess("flask", argv, env, port)


def trivial_server() -> ServerProcess:
    port = free_port()
    argv = [sys.executable, "-m", "benchmarks.loadgen", "--trivial-server", str(port)]
    return ServerProcess("trivial", argv, dict(os.environ), port)


def make_tmp() -> Path:
    return Path(tempfile.mkdtemp(prefix="usertide-bench-"))


def remove_tmp(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)


# -- talking to the server --------------------------------------------------------------------


def http_get(
    port: int, path: str, headers: dict[str, str] | None = None, timeout: float = 10.0
) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", path, headers=headers or {})
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


ADMIN = {"Authorization": f"Bearer {ADMIN_KEY}"}


def health(port: int) -> dict[str, Any]:
    _, body = http_get(port, "/healthz", ADMIN)  # 503 (degraded) still has the body
    out: dict[str, Any] = json.loads(body)
    return out


def wait_until_processed(port: int, timeout: float = 300.0, poll: float = 0.05) -> dict[str, Any]:
    """Poll ``/healthz`` until the engine has processed everything in the log."""
    deadline = time.monotonic() + timeout
    while True:
        h = health(port)
        if h["engine"]["lag_events"] == 0 and h["engine"]["offset"] >= h["log"]["offset"]:
            return h
        if time.monotonic() > deadline:
            raise TimeoutError(f"engine still behind after {timeout} s: {h}")
        time.sleep(poll)


_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)$")


def scrape(port: int) -> dict[tuple[str, str], float]:
    """``/metrics`` as {(name, labels): value}."""
    status, body = http_get(port, "/metrics", ADMIN)
    if status != 200:
        raise RuntimeError(f"/metrics answered {status}")
    out: dict[tuple[str, str], float] = {}
    for line in body.decode().splitlines():
        if not line or line.startswith("#"):
            continue
        m = _SAMPLE.match(line)
        if m:
            out[(m.group(1), m.group(2) or "")] = float(m.group(3))
    return out


@dataclass
class Histogram:
    """Cumulative bucket counts of one Prometheus histogram (upper bound -> count)."""

    buckets: list[tuple[float, float]]
    count: float
    total: float

    @classmethod
    def read(cls, samples: dict[tuple[str, str], float], name: str) -> Histogram:
        buckets = []
        for (metric, labels), value in samples.items():
            if metric == f"{name}_bucket":
                le = re.search(r'le="([^"]+)"', labels)
                if le:
                    buckets.append((float(le.group(1)), value))
        buckets.sort()
        return cls(
            buckets, samples.get((f"{name}_count", ""), 0.0), samples.get((f"{name}_sum", ""), 0.0)
        )

    def __sub__(self, other: Histogram) -> Histogram:
        before = dict(other.buckets)
        return Histogram(
            [(le, n - before.get(le, 0.0)) for le, n in self.buckets],
            self.count - other.count,
            self.total - other.total,
        )

    def quantile(self, q: float) -> float:
        """Like PromQL's ``histogram_quantile``: linear within the bucket (q in 0..1)."""
        if self.count <= 0:
            return float("nan")
        rank = q * self.count
        lower_bound, lower_count = 0.0, 0.0
        for le, cumulative in self.buckets:
            if cumulative >= rank:
                if math.isinf(le):
                    return lower_bound
                in_bucket = cumulative - lower_count
                if in_bucket <= 0:
                    return le
                return lower_bound + (le - lower_bound) * (rank - lower_count) / in_bucket
            lower_bound, lower_count = le, cumulative
        return lower_bound

    @property
    def mean(self) -> float:
        return self.total / self.count if self.count else float("nan")


# -- the machine ------------------------------------------------------------------------------


def machine() -> dict[str, str]:
    cpu = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    ram = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                ram = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
                break
    load = "unknown"
    with contextlib.suppress(OSError):
        load = " ".join(Path("/proc/loadavg").read_text().split()[:3])
    return {
        "nproc": str(os.cpu_count()),
        "cpu": cpu,
        "ram": ram,
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "os": f"{platform.system()} {platform.release()}",
        "load average at start": load,
    }


Bench = Callable[[Context], Iterator[Row]]


# -- the shared workload ------------------------------------------------------------------


@dataclass
class Workload:
    """Request bodies built once per run and reused by every benchmark (each benchmark
    starts a fresh server, so reusing message ids never makes duplicates)."""

    events: int
    batch_bodies: list[bytes]  # {"batch": [100 events]} as JSON
    track_bodies: list[bytes]  # one track event per body, for /v1/track


def workload(ctx: Context) -> Workload:
    cached = ctx.cache.get("workload")
    if isinstance(cached, Workload):
        return cached
    count = 20_000 if ctx.quick else 300_000
    started = time.perf_counter()
    events = simulated_events(count)
    enc = msgspec.json.Encoder()
    bodies = batch_bodies(events)
    tracks = [enc.encode(e) for e in events if e.get("type") == "track"]
    del events
    took = time.perf_counter() - started
    mb = sum(map(len, bodies)) / 1e6
    ctx.note(
        f"workload: {count:,} simulated events ({len(bodies):,} batch bodies of 100, "
        f"{mb:.0f} MB JSON, {len(tracks):,} single track bodies), built in {took:.1f} s"
    )
    out = Workload(count, bodies, tracks)
    ctx.cache["workload"] = out
    return out


def check_ok(result: LoadResult, who: str) -> None:
    """Fail the benchmark when any answer was not 2xx or a connection broke."""
    bad = {s: n for s, n in result.statuses.items() if not 200 <= s < 300}
    if bad or result.errors:
        raise RuntimeError(f"{who}: non-2xx answers {bad}, {result.errors} connection errors")
