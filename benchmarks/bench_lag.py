"""Engine lag under a fixed load: 50 batches of 100 events per second (5,000 events/s,
open loop) for 20 s, while ``/healthz`` is sampled every 100 ms; then the same load on
a fresh server while ``/healthz`` and the dashboard's ``/v1/overview`` are read every
100 ms (their latency: the overview's p99 beside the health check's).

Two views of the lag: the server's ``usertide_engine_lag_seconds`` histogram (time from
durable commit to engine processed, observed once per committed group; the difference
of the histogram after and before the run, quantiles interpolated within buckets like
PromQL's ``histogram_quantile``), and ``engine.lag_events`` as sampled from outside
(log offset minus engine offset, converted to time at the offered rate).
"""

from __future__ import annotations

import time

from benchmarks.common import (
    ADMIN,
    Context,
    Histogram,
    Row,
    health,
    http_get,
    ingest_requests,
    scrape,
    usertide_server,
    wait_until_processed,
    workload,
)
from benchmarks.loadgen import LoadRun, percentile

NAME = "lag"
TITLE = "engine lag @5k ev/s"
BATCHES_PER_SECOND = 50.0


def run(ctx: Context) -> list[Row]:
    work = workload(ctx)
    seconds = 2.0 if ctx.quick else 20.0
    n = int(BATCHES_PER_SECOND * seconds)
    bodies = work.batch_bodies[:n]
    if len(bodies) < n:
        raise RuntimeError("not enough batch bodies in the workload")
    events_per_s = BATCHES_PER_SECOND * 100
    samples: list[int] = []
    health_ms: list[float] = []
    overview_ms: list[float] = []
    with usertide_server(ctx.tmp).start() as server:
        requests = ingest_requests("/v1/batch", bodies, server.port)
        before = scrape(server.port)
        load = LoadRun(server.port, requests, connections=32, rate=BATCHES_PER_SECOND)
        while not load.done():
            samples.append(health(server.port)["engine"]["lag_events"])
            time.sleep(0.1)
        result = load.result()
        bad = {s: c for s, c in result.statuses.items() if not 200 <= s < 300}
        if bad or result.errors:
            raise RuntimeError(f"usertide: non-2xx answers {bad}, {result.errors} errors")
        wait_until_processed(server.port)
        after = scrape(server.port)
    # A second server takes the same load while the overview is read back to back
    # (apart, so that ten overviews a second, far more than a dashboard asks for, do not
    # weigh on the lag measured above).
    with usertide_server(ctx.tmp).start() as server:
        load = LoadRun(
            server.port,
            ingest_requests("/v1/batch", bodies, server.port),
            connections=32,
            rate=BATCHES_PER_SECOND,
        )
        while not load.done():
            t0 = time.perf_counter()
            health(server.port)
            t1 = time.perf_counter()
            status, _ = http_get(server.port, "/v1/overview", ADMIN)
            t2 = time.perf_counter()
            if status != 200:
                raise RuntimeError(f"/v1/overview answered {status}")
            health_ms.append((t1 - t0) * 1e3)
            overview_ms.append((t2 - t1) * 1e3)
            time.sleep(0.1)
        load.result()
    lag = Histogram.read(after, "usertide_engine_lag_seconds") - Histogram.read(
        before, "usertide_engine_lag_seconds"
    )
    commit = Histogram.read(after, "usertide_log_commit_seconds") - Histogram.read(
        before, "usertide_log_commit_seconds"
    )
    samples.sort()
    health_ms.sort()
    overview_ms.sort()
    ctx.note(
        f"lag run: {result.requests:,} batches at {result.rps:.1f}/s achieved; "
        f"{lag.count:.0f} engine lag observations (one per load into the store), mean "
        f"{lag.mean * 1e3:.1f} ms; commit p50 {commit.quantile(0.5) * 1e3:.1f} ms; "
        f"{len(samples)} /healthz samples, max lag {samples[-1] if samples else 0:,} events; "
        f"load generator used {result.cpu_cores:.2f} cores"
    )
    p50_events = percentile(samples, 50)
    p99_events = percentile(samples, 99)
    return [
        Row(TITLE, "lag p50 (server histogram)", lag.quantile(0.5) * 1e3, "ms",
            higher_is_better=False),
        Row(TITLE, "lag p99 (server histogram)", lag.quantile(0.99) * 1e3, "ms",
            higher_is_better=False, target=100),
        Row(TITLE, "lag_events p50 (sampled)", p50_events, "events", higher_is_better=False,
            note=f"~{p50_events / events_per_s * 1e3:.0f} ms at the offered rate"),
        Row(TITLE, "lag_events p99 (sampled)", p99_events, "events", higher_is_better=False,
            note=f"~{p99_events / events_per_s * 1e3:.0f} ms at the offered rate"),
        Row(TITLE, "request p99 at 50 batches/s", result.percentile(99), "ms",
            higher_is_better=False),
        Row(TITLE, "GET /v1/overview p99 while ingesting", percentile(overview_ms, 99), "ms",
            baseline=percentile(health_ms, 99), higher_is_better=False,
            note=f"{len(overview_ms)} samples, p50 {percentile(overview_ms, 50):.1f} ms "
            "(the last hour's counts, top events, pages, countries, sources, failed "
            "reasons, active users, engine lag); baseline = GET /healthz sampled alike"),
    ]  # fmt: skip
