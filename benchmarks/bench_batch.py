"""Batch ingestion end to end: ``POST /v1/batch`` (100 simulated events per request,
8 keep-alive connections, closed loop) with the engine running, then the time until the
engine has processed everything. The Flask + SQLite baseline takes the same requests.
"""

from __future__ import annotations

import sqlite3
import time

import psutil

from benchmarks.baseline_flask import server_kind
from benchmarks.common import (
    Context,
    Histogram,
    Row,
    check_ok,
    flask_server,
    health,
    ingest_requests,
    scrape,
    usertide_server,
    wait_until_processed,
    workload,
)
from benchmarks.loadgen import run_load

NAME = "batch"
TITLE = "batch ingestion"
CONNECTIONS = 8


def run(ctx: Context) -> list[Row]:
    work = workload(ctx)
    cap = 10.0 if ctx.quick else 15.0

    with usertide_server(ctx.tmp).start() as server:
        requests = ingest_requests("/v1/batch", work.batch_bodies, server.port)
        before = scrape(server.port)
        proc = psutil.Process(server.pid)
        cpu0 = sum(proc.cpu_times()[:2])
        result = run_load(server.port, requests, connections=CONNECTIONS, duration=cap)
        cpu1 = sum(proc.cpu_times()[:2])
        check_ok(result, "usertide")
        stored = health(server.port)["log"]["offset"]
        done = wait_until_processed(server.port)
        processed_at = time.monotonic()
        after = scrape(server.port)
        users = done["engine"]["users"]
    events_per_s = stored / result.seconds
    to_processed = processed_at - result.started
    commit = Histogram.read(after, "usertide_log_commit_seconds") - Histogram.read(
        before, "usertide_log_commit_seconds"
    )
    size = Histogram.read(after, "usertide_log_commit_events") - Histogram.read(
        before, "usertide_log_commit_events"
    )
    lag = Histogram.read(after, "usertide_engine_lag_seconds") - Histogram.read(
        before, "usertide_engine_lag_seconds"
    )
    ctx.note(
        f"usertide batch: {stored:,} events in {result.seconds:.1f} s; server CPU "
        f"{(cpu1 - cpu0) / result.seconds:.2f} cores; {commit.count:.0f} group commits, "
        f"{size.mean:.0f} events each, commit p50 {commit.quantile(0.5) * 1e3:.1f} ms / "
        f"p99 {commit.quantile(0.99) * 1e3:.0f} ms; engine lag p99 "
        f"{lag.quantile(0.99) * 1e3:.0f} ms; {users:,} users; load generator used "
        f"{result.cpu_cores:.2f} cores"
    )

    flask_cap = 1.5 if ctx.quick else 8.0
    with flask_server(ctx.tmp).start() as server:
        requests = ingest_requests("/v1/batch", work.batch_bodies, server.port)
        base = run_load(server.port, requests, connections=CONNECTIONS, duration=flask_cap)
        check_ok(base, "flask baseline")
        db = server.argv[server.argv.index("--db") + 1]
    with sqlite3.connect(db) as con:
        base_stored = con.execute("SELECT count(*) FROM events").fetchone()[0]
    base_eps = base_stored / base.seconds
    ctx.note(
        f"flask baseline ({server_kind()}, sqlite INSERT + commit per event): "
        f"{base_stored:,} events in {base.seconds:.1f} s"
    )

    rows = [
        Row(TITLE, f"events/s ({CONNECTIONS} conns x 100/batch)", events_per_s, "ev/s",
            baseline=base_eps, target=50_000),
        Row(TITLE, "speed-up vs textbook", events_per_s / base_eps, "x", target=30),
        Row(TITLE, "request p50", result.percentile(50), "ms", baseline=base.percentile(50),
            higher_is_better=False),
        Row(TITLE, "request p99", result.percentile(99), "ms", baseline=base.percentile(99),
            higher_is_better=False),
        Row(TITLE, f"time to fully processed ({stored:,} ev)", to_processed, "s",
            higher_is_better=False,
            note=f"= {stored / to_processed:,.0f} events/s stored and processed"),
    ]  # fmt: skip
    ceiling = ctx.cache.get("parse_ceiling")
    if isinstance(ceiling, float):
        rows.append(
            Row(TITLE, "events/s vs parse-only ceiling", events_per_s, "ev/s", baseline=ceiling,
                note="ratio = share of the in-process parse ceiling reached end to end")
        )  # fmt: skip
    return rows
