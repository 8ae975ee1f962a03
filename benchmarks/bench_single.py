"""Single-event ingestion: ``POST /v1/track`` with one simulated track event per request.

Two runs on one server: full speed (closed loop, 16 connections) and a fixed offered
rate (open loop, latency from each request's scheduled send time). The Flask + SQLite
baseline takes the same requests at full speed.
"""

from __future__ import annotations

import psutil

from benchmarks.baseline_flask import server_kind
from benchmarks.common import (
    Context,
    Row,
    check_ok,
    flask_server,
    ingest_requests,
    usertide_server,
    wait_until_processed,
    workload,
)
from benchmarks.loadgen import run_load

NAME = "single"
TITLE = "single-event ingestion"
CONNECTIONS = 16


def run(ctx: Context) -> list[Row]:
    work = workload(ctx)
    cap = 1.5 if ctx.quick else 8.0
    rate = 1_000.0 if ctx.quick else 3_000.0
    open_seconds = 1.0 if ctx.quick else 6.0
    bodies = work.track_bodies
    n_open = int(rate * open_seconds)
    fast_bodies, open_bodies = bodies[n_open:], bodies[:n_open]
    if len(open_bodies) < n_open:
        raise RuntimeError("not enough track events in the workload")

    with usertide_server(ctx.tmp).start() as server:
        # Warm up the connections and code paths (not measured).
        run_load(server.port, ingest_requests("/v1/track", fast_bodies[:500], server.port))
        proc = psutil.Process(server.pid)
        cpu0 = sum(proc.cpu_times()[:2])
        fast = run_load(
            server.port,
            ingest_requests("/v1/track", fast_bodies[500:], server.port),
            connections=CONNECTIONS,
            duration=cap,
        )
        server_cores = (sum(proc.cpu_times()[:2]) - cpu0) / fast.seconds
        check_ok(fast, "usertide full speed")
        wait_until_processed(server.port)
        fixed = run_load(
            server.port,
            ingest_requests("/v1/track", open_bodies, server.port),
            connections=64,
            rate=rate,
        )
        check_ok(fixed, "usertide fixed rate")
    ctx.note(
        f"usertide single: {fast.requests:,} requests at full speed in {fast.seconds:.1f} s "
        f"(server CPU {server_cores:.2f} cores); "
        f"{fixed.requests:,} at {rate:,.0f}/s offered (64 conns), achieved {fixed.rps:,.0f}/s; "
        f"load generator used {fast.cpu_cores:.2f} / {fixed.cpu_cores:.2f} cores"
    )

    with flask_server(ctx.tmp).start() as server:
        base = run_load(
            server.port,
            ingest_requests("/v1/track", fast_bodies, server.port),
            connections=CONNECTIONS,
            duration=1.0 if ctx.quick else 5.0,
        )
        check_ok(base, "flask baseline")
    ctx.note(f"flask single ({server_kind()}): {base.requests:,} requests in {base.seconds:.1f} s")

    return [
        Row(TITLE, f"req/s full speed ({CONNECTIONS} conns)", fast.rps, "req/s",
            baseline=base.rps, target=3_000),
        Row(TITLE, "p50 at full speed", fast.percentile(50), "ms",
            baseline=base.percentile(50), higher_is_better=False),
        Row(TITLE, "p99 at full speed", fast.percentile(99), "ms",
            baseline=base.percentile(99), higher_is_better=False),
        Row(TITLE, f"req/s achieved at {rate:,.0f} offered", fixed.rps, "req/s", target=rate * 0.98,
            note="open loop, 64 conns; below the offered rate = saturated"),
        Row(TITLE, f"p50 at {rate:,.0f} req/s offered", fixed.percentile(50), "ms",
            higher_is_better=False),
        Row(TITLE, f"p99 at {rate:,.0f} req/s offered", fixed.percentile(99), "ms",
            higher_is_better=False, target=20),
    ]  # fmt: skip
