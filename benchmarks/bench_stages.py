"""The CPU budget of one event, stage by stage, in one process with nothing else running.

The batch benchmark's traffic (the demo shop, bodies of 100 events) goes through each
stage of the embedded pipeline in turn, each timed on its own with ``process_time``
(CPU seconds of the whole process, DuckDB's own threads included): parsing the JSON
bodies into events, enrichment, encoding for the log, decoding from the log, loading
into DuckDB (2,000 events per commit, as the loader does under load) and the engine with
the service's seven processors; all under the service's GC settings (``tune_gc``). No HTTP, no
threads competing for the GIL: these are floors, not what the server achieves.

The sums answer what the batch target asks: the events per second one process can
reach at best (every stage on one core), and what the engine's side alone could take
if collectors ran in processes of their own (decode + load + engine on one core).

    python -m benchmarks.bench_stages --measure 100000
"""

from __future__ import annotations

import argparse
import gc
import json
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from benchmarks.common import ROOT, Context, Row, batch_bodies, simulated_events

NAME = "stages"
TITLE = "pipeline stages (1 core)"
TARGET = 50_000.0  # the batch ingestion target, events/s end to end with the engine
STAGES = (
    ("parse", "parse (JSON body -> events)"),
    ("enrich", "enrich (user agent, geo, IP policy)"),
    ("encode", "encode for the log (msgpack)"),
    ("decode", "decode from the log"),
    ("load", "DuckDB load (2,000 per commit)"),
    ("engine", "engine, the service's 7 processors"),
)


def measure(count: int) -> dict[str, Any]:
    """CPU seconds per stage over ``count`` simulated events; run in a fresh process."""
    from usertide.capture import CaptureRequest, SegmentProtocol
    from usertide.capture.base import drop_unstorable
    from usertide.cli import tune_gc
    from usertide.engine import Engine
    from usertide.enrich import build_enrichers
    from usertide.events.model import decode_event, encode_event
    from usertide.risk import LoginRisk, NetworkVelocity
    from usertide.service import build_processors
    from usertide.store import DuckDBStore

    bodies = batch_bodies(simulated_events(count))
    enrichers = build_enrichers()
    enrichers.warm()
    protocol = SegmentProtocol()
    now = datetime.now(UTC)
    seconds: dict[str, float] = {}
    tune_gc()  # the service's settings, for every stage

    def settle() -> None:
        # The events kept between stages are frozen out of the collector: in the
        # service an event lives for one request and one load, not for the whole run.
        gc.collect()
        gc.freeze()

    settle()
    started = time.process_time()
    parsed = []
    for body in bodies:
        request = CaptureRequest(endpoint="batch", received_at=now, body_bytes=len(body))
        batch = protocol.parse_bytes(body, request)
        assert batch is not None, "the simulated bodies take the fast path"
        parsed.append((batch, request))
    seconds["parse"] = time.process_time() - started

    settle()
    started = time.process_time()
    for batch, _ in parsed:
        for event in batch.events:
            enrichers.enrich(event)
    seconds["enrich"] = time.process_time() - started

    settle()
    started = time.process_time()
    for batch, request in parsed:
        drop_unstorable(batch, request, protocol.name)  # encodes each event, memoized
    seconds["encode"] = time.process_time() - started

    events = [event for batch, _ in parsed for event in batch.events]
    blobs = [encode_event(event) for event in events]
    settle()
    started = time.process_time()
    decoded = [decode_event(blob) for blob in blobs]
    seconds["decode"] = time.process_time() - started
    for offset, (event, copy) in enumerate(zip(events, decoded, strict=True), start=1):
        event.offset = copy.offset = offset

    with tempfile.TemporaryDirectory() as tmp:
        store = DuckDBStore(Path(tmp) / "stages.duckdb")
        store.migrate()
        settle()
        started = time.process_time()
        for i in range(0, len(events), 2_000):
            chunk = events[i : i + 2_000]
            store.load(chunk, [], chunk[-1].offset)
        seconds["load"] = time.process_time() - started
        store.close()

    engine = Engine(build_processors(NetworkVelocity(), LoginRisk()))
    apply = engine.apply
    settle()
    started = time.process_time()
    for event in decoded:
        apply(event)
    seconds["engine"] = time.process_time() - started
    return {"events": len(events), "seconds": seconds}


def run(ctx: Context) -> list[Row]:
    count = 10_000 if ctx.quick else 100_000
    argv = [sys.executable, "-m", "benchmarks.bench_stages", "--measure", str(count)]
    out = subprocess.run(argv, capture_output=True, text=True, cwd=ROOT, check=False)
    if out.returncode:
        raise RuntimeError(f"bench_stages --measure failed:\n{out.stderr[-3000:]}")
    result = json.loads(out.stdout.strip().splitlines()[-1])
    n, seconds = result["events"], result["seconds"]
    per = {stage: s / n * 1e6 for stage, s in seconds.items()}  # µs of CPU per event
    ctx.note(
        f"stages: {n:,} demo-shop events in bodies of 100, each stage timed alone with "
        "process_time in a fresh process; "
        + ", ".join(f"{stage} {us:.1f} µs" for stage, us in per.items())
    )
    rows = [
        Row(TITLE, label, per[stage], "µs", higher_is_better=False,
            note="CPU per event" if stage == "parse" else "")
        for stage, label in STAGES
    ]  # fmt: skip
    whole = sum(per[s] for s in ("parse", "enrich", "encode", "load", "engine"))
    engine_side = per["decode"] + per["load"] + per["engine"]
    rows += [
        Row(TITLE, "one process, every stage on one core", 1e6 / whole, "ev/s", target=TARGET,
            note="parse + enrich + encode + load + engine: the most one process can reach "
            "(one core of Python), before HTTP, the log's fsync and GIL hand-offs"),
        Row(TITLE, "engine side alone, decode + load + engine", 1e6 / engine_side, "ev/s",
            target=TARGET,
            note="what one engine process could take if collectors ran in processes of "
            "their own and handed it encoded events"),
    ]  # fmt: skip
    return rows


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--measure", type=int, required=True)
    args = parser.parse_args()
    print(json.dumps(measure(args.measure)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
