"""The load generator's own ceiling: the same requests against a server that answers
without reading them (an asyncio protocol on uvloop, in its own process).

If usertide's numbers are far below these, the load generator is not the bottleneck.
"""

from __future__ import annotations

import itertools

from benchmarks.common import Context, Row, ingest_requests, trivial_server, workload
from benchmarks.loadgen import run_load

NAME = "loadgen"
TITLE = "load generator ceiling"


def run(ctx: Context) -> list[Row]:
    work = workload(ctx)
    seconds = 0.5 if ctx.quick else 3.0
    rows: list[Row] = []
    with trivial_server().start(ready_path="/") as server:
        # Cycle the bodies: the trivial server does not care about duplicates.
        batch = ingest_requests("/v1/batch", work.batch_bodies, server.port)
        batch = list(itertools.islice(itertools.cycle(batch), 200_000))
        result = run_load(server.port, batch, connections=8, duration=seconds)
        rows.append(
            Row(
                TITLE,
                "batch req/s (8 conns, 1 proc)",
                result.rps,
                "req/s",
                note=f"= {result.rps * 100:,.0f} events/s; p99 {result.percentile(99):.2f} ms; "
                f"client {result.cpu_cores:.2f} cores",
            )
        )
        single = ingest_requests("/v1/track", work.track_bodies, server.port)
        single = list(itertools.islice(itertools.cycle(single), 500_000))
        result = run_load(server.port, single, connections=16, duration=seconds)
        rows.append(
            Row(
                TITLE,
                "single req/s (16 conns, 1 proc)",
                result.rps,
                "req/s",
                note=f"p99 {result.percentile(99):.2f} ms; client {result.cpu_cores:.2f} cores",
            )
        )
        rate = 1_000.0 if ctx.quick else 3_000.0
        n = int(rate * (1.0 if ctx.quick else 3.0))
        result = run_load(server.port, single[:n], connections=64, rate=rate)
        rows.append(
            Row(
                TITLE,
                f"open loop p99 at {rate:,.0f} req/s",
                result.percentile(99),
                "ms",
                higher_is_better=False,
                note=f"the latency floor of the open-loop runs (p50 "
                f"{result.percentile(50):.2f} ms, measured from each request's scheduled "
                f"time, which a pacing thread keeps); client {result.cpu_cores:.2f} cores",
            )
        )
    return rows
