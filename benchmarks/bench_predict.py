"""Behaviour prediction: ``POST /predict_behavior`` on usertide against the original
design (Flask + one scikit-learn ``IsolationForest.predict`` per request,
``benchmarks/baseline_flask_predict.py``), side by side in one run, and a model swap
under load.

Both servers run at once and take the very same pre-built requests (HTTP Basic with the
write key; bodies ``{"clicks_per_minute": 11.9, "pages_per_session": 3}`` drawn by
``behaviour_sample``, seed 2: people and ~1 % script-like sessions). Every run is split
in halves taken in the order usertide, baseline, baseline, usertide, so that noise on a
shared machine hits both alike.

1. Full speed: closed loop, 16 keep-alive connections; server CPU per request (the
   server process and its children) over those runs. The load generator's ceiling with
   the same requests against the trivial server, in the same run.
2. Fixed rates (open loop, latency from each request's scheduled time): 500 req/s, and
   50 req/s (light load, which the baseline can keep up with).
3. Model swap under load: while ``/predict_behavior`` and ``/v1/track`` each take
   500 req/s, ``POST /v1/models/session_anomaly/train`` (admin key) a few times, each
   time waiting until ``GET /v1/models`` shows another active version (activating the
   new version itself if training left it inactive); when that endpoint answers 404,
   ``POST /v1/models/session_anomaly/activate`` alternating between the listed versions
   instead. One swap without load first tells which way works and how long a swap
   takes, so that the load lasts for all of them. Counted: requests answered with an
   error or not at all, and acknowledged ``track`` events missing from
   ``GET /v1/events`` once the engine has caught up (the events carry their own name
   and fresh message ids).

A fresh usertide server has no session model: it first takes the demo shop's events in
``/v1/batch`` bodies, 5,000 at a time, each time followed by ``POST
/v1/models/session_anomaly/train``, until that trains (it answers 409 until 200
sessions are stored) and ``/predict_behavior`` answers.

    python -m benchmarks --only predict
"""

from __future__ import annotations

import contextlib
import http.client
import itertools
import json
import os
import sys
import time
import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import msgspec
import psutil

from benchmarks.baseline_flask import server_kind
from benchmarks.baseline_flask_predict import behaviour_sample
from benchmarks.bench_login import combine, settle
from benchmarks.common import (
    ADMIN,
    BASIC,
    Context,
    Row,
    ServerProcess,
    check_ok,
    ingest_requests,
    log,
    trivial_server,
    usertide_server,
    wait_until_processed,
    workload,
)
from benchmarks.loadgen import LoadResult, LoadRun, build_request, run_load
from usertide.server import free_port

NAME = "predict"
TITLE = "behaviour prediction"
PATH = "/predict_behavior"
MODEL = "session_anomaly"
CONNECTIONS = 16
RATE = 500.0
LIGHT_RATE = 50.0
TRACK_RATE = 500.0
WARM_CHUNK = 50  # /v1/batch bodies (of 100 events) between training attempts
SWAP_TIMEOUT = 60.0  # seconds for a new version to become active
SWAP_EVENT = "bench_predict_swap"  # the name of the events sent during the swaps
AUTH = {"Authorization": BASIC, "Content-Type": "application/json"}
ADMIN_JSON = {**ADMIN, "Content-Type": "application/json"}
LABELS = {"Normal", "Anomaly"}


# -- requests -------------------------------------------------------------------------------


def predict_bodies(count: int, seed: int = 2) -> list[bytes]:
    rows = behaviour_sample(count, seed=seed)
    return [
        msgspec.json.encode({"clicks_per_minute": float(c), "pages_per_session": int(p)})
        for c, p in rows
    ]


def predict_requests(bodies: Sequence[bytes], port: int, count: int) -> list[bytes]:
    """``count`` requests cycling through ``bodies`` (repeats share their bytes)."""
    headers = {**AUTH, "User-Agent": "usertide-bench/1"}
    built = [
        build_request("POST", PATH, b, host=f"127.0.0.1:{port}", headers=headers) for b in bodies
    ]
    return list(itertools.islice(itertools.cycle(built), count))


def swap_events(ctx: Context, count: int) -> tuple[list[bytes], set[str]]:
    """``count`` simulated track events renamed ``SWAP_EVENT`` with fresh message ids
    (the warm-up stored the originals), and those ids."""
    tracks = workload(ctx).track_bodies
    decode, encode = msgspec.json.Decoder().decode, msgspec.json.Encoder().encode
    run = uuid.uuid4().hex[:8]
    bodies, ids = [], set()
    for i, body in enumerate(itertools.islice(itertools.cycle(tracks), count)):
        event = decode(body)
        event["event"] = SWAP_EVENT
        event["messageId"] = f"predict-swap-{run}-{i}"
        ids.add(event["messageId"])
        bodies.append(encode(event))
    return bodies, ids


# -- talking to the servers ------------------------------------------------------------------


def _call(
    port: int, method: str, path: str, body: bytes | None, headers: dict[str, str]
) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request(method, path, body=body, headers=headers)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def predictions(port: int, bodies: Sequence[bytes]) -> Counter[str]:
    """The answers' ``behavior_prediction`` over one keep-alive connection; raises on an
    answer that is not a 200 of the documented shape."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    seen: Counter[str] = Counter()
    try:
        for body in bodies:
            conn.request("POST", PATH, body=body, headers=AUTH)
            response = conn.getresponse()
            answer = response.read()
            label = None
            if response.status == 200:
                with contextlib.suppress(ValueError, AttributeError):
                    label = json.loads(answer).get("behavior_prediction")
            if label not in LABELS:
                raise RuntimeError(f"{PATH} answered {response.status}: {answer[:300]!r}")
            seen[label] += 1
    finally:
        conn.close()
    return seen


def models(port: int) -> list[dict[str, Any]]:
    """The versions of ``MODEL`` that ``GET /v1/models`` lists."""
    status, body = _call(port, "GET", "/v1/models", None, ADMIN)
    if status != 200:
        raise RuntimeError(f"GET /v1/models answered {status}: {body[:300]!r}")
    listed: list[dict[str, Any]] = json.loads(body)["models"]
    return [m for m in listed if m.get("name") == MODEL]


def warm_until_trained(port: int, batches: list[bytes], probe: bytes, chunk: int) -> str:
    """Demo-shop events in ``/v1/batch`` bodies, ``chunk`` bodies at a time, until the
    session model trains (sessions are stored as they close, in event time, so a short
    stretch of the stream may have none) and ``PATH`` answers. Returns how it went."""
    sent, answer = 0, b""
    while True:
        part = batches[sent : sent + chunk]
        if not part:
            raise RuntimeError(
                f"{MODEL} did not train from {sent * 100:,} events: {answer[:300]!r}"
            )
        check_ok(run_load(port, ingest_requests("/v1/batch", part, port)), "warm-up batches")
        sent += len(part)
        wait_until_processed(port)
        trained, answer = _call(port, "POST", f"/v1/models/{MODEL}/train", b"", ADMIN_JSON)
        if 200 <= trained < 300:
            break
        if trained != 409:  # 409: not enough sessions yet
            raise RuntimeError(
                f"POST /v1/models/{MODEL}/train answered {trained}: {answer[:300]!r}"
            )
    deadline = time.monotonic() + 60.0
    while True:
        status, answer = _call(port, "POST", PATH, probe, AUTH)
        if status == 200:
            return f"trained (train answered {trained}) after {sent * 100:,} events"
        if time.monotonic() > deadline:
            raise RuntimeError(f"{PATH} answered {status} after a training: {answer[:300]!r}")
        time.sleep(0.2)


def stored_ids(port: int, name: str) -> set[str]:
    """The ids of the stored events named ``name`` (``GET /v1/events``, every page)."""
    ids: set[str] = set()
    cursor: str | None = None
    while True:
        query = f"/v1/events?name={name}&limit=1000" + (f"&cursor={cursor}" if cursor else "")
        status, body = _call(port, "GET", query, None, ADMIN)
        if status != 200:
            raise RuntimeError(f"GET /v1/events answered {status}: {body[:300]!r}")
        page = json.loads(body)
        ids.update(e["id"] for e in page["events"])
        cursor = page["next_cursor"]
        if cursor is None:
            return ids


def server_cpu(proc: psutil.Process) -> float:
    """CPU seconds of the process and its children (gunicorn serves from a child)."""
    total = 0.0
    for p in [proc, *proc.children(recursive=True)]:
        with contextlib.suppress(psutil.NoSuchProcess):
            times = p.cpu_times()
            total += times.user + times.system
    return total


def machine_busy() -> float:
    """CPU seconds the whole machine has spent busy (all processes)."""
    times = psutil.cpu_times()
    return float(sum(times) - times.idle - getattr(times, "iowait", 0.0))


# -- one server under test -------------------------------------------------------------------


@dataclass
class Side:
    """One server taking the prediction requests; keeps its results per phase."""

    name: str
    server: ServerProcess
    parts: dict[str, list[LoadResult]] = field(default_factory=dict)
    cpu: dict[str, float] = field(default_factory=dict)  # server CPU seconds per phase
    others: float = 0.0  # the most CPU other processes used during a run, in cores

    def measure(self, phase: str, bodies: Sequence[bytes], count: int, **load: Any) -> None:
        proc = psutil.Process(self.server.pid)
        requests = predict_requests(bodies, self.server.port, count)
        cpu0, busy0 = server_cpu(proc), machine_busy()
        result = run_load(self.server.port, requests, **load)
        used = server_cpu(proc) - cpu0
        self.cpu[phase] = self.cpu.get(phase, 0.0) + used
        others = machine_busy() - busy0 - used - result.cpu_seconds
        self.others = max(self.others, others / result.seconds)
        check_ok(result, f"{self.name} {phase}")
        self.parts.setdefault(phase, []).append(result)
        settle(proc)

    def result(self, phase: str) -> LoadResult:
        return combine(self.parts[phase])

    def cpu_per_request_us(self, phase: str) -> float:
        return self.cpu[phase] / self.result(phase).requests * 1e6


def flask_predict_server() -> ServerProcess:
    port = free_port()
    argv = [sys.executable, "-m", "benchmarks.baseline_flask_predict", "--port", str(port)]
    return ServerProcess("flask-predict", argv, dict(os.environ), port)


# -- the model swap under load ------------------------------------------------------------------


@dataclass
class Swaps:
    mode: str = "train"  # or "activate" when the train endpoint answers 404
    done: list[float] = field(default_factory=list)  # seconds each swap took
    finished: list[float] = field(default_factory=list)  # time.monotonic() of each
    failures: list[str] = field(default_factory=list)
    versions: list[int] = field(default_factory=list)  # active after each swap
    explicit: int = 0  # trained versions left inactive, so activated by the benchmark


def activate(port: int, version: int) -> str | None:
    """``POST /v1/models/MODEL/activate``; the failure, if any."""
    body = json.dumps({"version": version}).encode()
    status, answer = _call(port, "POST", f"/v1/models/{MODEL}/activate", body, ADMIN_JSON)
    return None if status == 200 else f"activate answered {status}: {answer[:200]!r}"


def swap_once(port: int, swaps: Swaps, timeout: float) -> None:
    """One retrain + activation (or the activation of another listed version), done
    once ``GET /v1/models`` shows another active version; records the result."""
    t0 = time.monotonic()
    listed = models(port)
    before = next((m["version"] for m in listed if m.get("active")), None)
    known = {m["version"] for m in listed}
    failure = None
    if swaps.mode == "train":
        status, body = _call(port, "POST", f"/v1/models/{MODEL}/train", b"", ADMIN_JSON)
        if status == 404:
            swaps.mode = "activate"
        elif not 200 <= status < 300:  # 201 with the new version, or 202 while it trains
            failure = f"train answered {status}: {body[:200]!r}"
    if swaps.mode == "activate":
        others = sorted(known - {before})
        failure = activate(port, others[-1]) if others else f"only one version of {MODEL}"
    if failure:
        swaps.failures.append(failure)
        return
    new_seen: float | None = None  # when training listed a new version
    while time.monotonic() - t0 < timeout:
        listed = models(port)
        now = next((m["version"] for m in listed if m.get("active")), None)
        if now is not None and now != before:
            swaps.finished.append(time.monotonic())
            swaps.done.append(swaps.finished[-1] - t0)
            swaps.versions.append(now)
            return
        new = {m["version"] for m in listed} - known
        if new:
            new_seen = new_seen or time.monotonic()
            if time.monotonic() - new_seen > 2.0:  # trained but left inactive
                swaps.explicit += 1
                if failure := activate(port, max(new)):
                    swaps.failures.append(failure)
                    return
                known |= new
        time.sleep(0.05)
    swaps.failures.append(f"{swaps.mode}: no other active version within {timeout:.0f} s")


@dataclass
class SwapRun:
    predict: LoadResult
    track: LoadResult
    swaps: Swaps
    under_load: int  # swaps completed before the load ended
    missing: int  # acknowledged events not stored
    stored: int


def try_swap(port: int, swaps: Swaps) -> None:
    try:
        swap_once(port, swaps, timeout=SWAP_TIMEOUT)
    except (OSError, RuntimeError, ValueError, KeyError, TypeError) as exc:
        swaps.failures.append(f"{swaps.mode}: {exc!r}")


def swap_under_load(
    ctx: Context, port: int, bodies: Sequence[bytes], seconds: float, count: int, mode: str
) -> SwapRun:
    track_bodies, sent_ids = swap_events(ctx, int(TRACK_RATE * seconds))
    predict_load = LoadRun(
        port, predict_requests(bodies, port, int(RATE * seconds)),
        connections=CONNECTIONS, rate=RATE,
    )  # fmt: skip
    track_load = LoadRun(
        port, ingest_requests("/v1/track", track_bodies, port),
        connections=CONNECTIONS, rate=TRACK_RATE,
    )  # fmt: skip
    swaps = Swaps(mode=mode)
    started = time.monotonic()
    for i in range(count):
        time.sleep(max(0.0, started + seconds * (i + 1) / (count + 1) - time.monotonic()))
        if predict_load.done() or track_load.done():
            break
        try_swap(port, swaps)
    predict, track = predict_load.result(), track_load.result()
    ended = min(predict.finished, track.finished)
    wait_until_processed(port)
    stored = stored_ids(port, SWAP_EVENT) & sent_ids
    return SwapRun(
        predict,
        track,
        swaps,
        under_load=sum(t <= ended for t in swaps.finished),
        missing=max(0, track.ok - len(stored)),
        stored=len(stored),
    )


def errors(result: LoadResult) -> int:
    return result.errors + sum(n for s, n in result.statuses.items() if not 200 <= s < 300)


# -- the benchmark --------------------------------------------------------------------------------


def run(ctx: Context) -> list[Row]:
    cap = 1.5 if ctx.quick else 8.0  # seconds at full speed per server (two halves)
    open_seconds = 1.0 if ctx.quick else 6.0
    light_seconds = 2.0 if ctx.quick else 10.0
    swap_seconds, swap_count = (6.0, 2) if ctx.quick else (20.0, 5)
    n_fast = 100_000 if ctx.quick else 400_000  # per half; cycled through the bodies
    bodies = predict_bodies(20_000)
    sample = bodies[: 200 if ctx.quick else 1_000]

    with trivial_server().start(ready_path="/") as trivial:
        requests = predict_requests(bodies, trivial.port, n_fast)
        ceiling = run_load(trivial.port, requests, connections=CONNECTIONS, duration=cap / 2)

    ours = Side(PATH, usertide_server(ctx.tmp))
    base = Side("Flask + scikit-learn", flask_predict_server())
    with ours.server.start(), base.server.start():
        port = ours.server.port
        how = warm_until_trained(port, workload(ctx).batch_bodies, bodies[0], WARM_CHUNK)
        shares = {side.name: predictions(side.server.port, sample) for side in (ours, base)}
        for side in (ours, base):  # connections and code paths (not measured)
            check_ok(run_load(side.server.port, predict_requests(bodies, side.server.port, 500)),
                     f"{side.name} warm-up")  # fmt: skip
            settle(psutil.Process(side.server.pid))
        phases = [
            ("fast", n_fast, {"connections": CONNECTIONS, "duration": cap / 2}),
            ("rate", int(RATE * open_seconds) // 2, {"connections": CONNECTIONS, "rate": RATE}),
            ("light", int(LIGHT_RATE * light_seconds) // 2,
             {"connections": CONNECTIONS, "rate": LIGHT_RATE}),
        ]  # fmt: skip
        for phase, count, load in phases:
            log(f"  · {phase}: {', '.join(f'{k} {v:g}' for k, v in load.items())}")
            for side in (ours, base, base, ours):
                side.measure(phase, bodies, count, **load)
        # One swap without load first: which way swaps work here, and how long one takes
        # (the load lasts long enough for all of them).
        alone = Swaps()
        try_swap(port, alone)
        took = alone.done[0] if alone.done else 1.0
        swap_seconds = max(swap_seconds, swap_count * (1.5 * took + 0.5) + 1.0)
        log(f"  · model swap under load: {swap_count} swaps in {swap_seconds:.0f} s")
        swap = swap_under_load(ctx, port, bodies, swap_seconds, swap_count, alone.mode)

    fast, bfast = ours.result("fast"), base.result("fast")
    fixed, bfixed = ours.result("rate"), base.result("rate")
    light, blight = ours.result("light"), base.result("light")
    ctx.note(
        f"{PATH}: usertide's model {how}; answers to the same {len(sample):,} sessions "
        + "; ".join(f"{name}: {dict(c)}" for name, c in shares.items())
        + f"; baseline served by {server_kind()} (IsolationForest(n_estimators=100, "
        "contamination=0.01, random_state=42) fitted on 5,000 synthetic sessions)"
    )
    for side in (ours, base):
        ctx.note(
            f"{side.name}: full speed {side.result('fast').requests:,} requests in "
            f"{side.result('fast').seconds:.1f} s, server CPU "
            f"{side.cpu['fast'] / side.result('fast').seconds:.2f} cores; at {RATE:,.0f}/s "
            f"achieved {side.result('rate').rps:,.0f}/s, max "
            f"{side.result('rate').latencies_ms[-1]:,.1f} ms; load generator used at most "
            f"{max(r.cpu_cores for rs in side.parts.values() for r in rs):.2f} cores, "
            f"other processes on the machine at most {side.others:.2f} cores"
        )
    share = fast.rps / ceiling.rps if ceiling.rps else float("nan")
    if share > 0.5:
        ctx.note(
            f"WARNING: usertide's full-speed rate is {share:.0%} of the load generator's "
            "ceiling: the load generator may be what limits it"
        )
    s = swap.swaps
    alone_text = f"{took:.2f} s" if alone.done else "; ".join(alone.failures)
    swap_parts = [
        f"one swap without load first: {alone_text}",
        f"under load ({s.mode}): {len(s.done)} done, {swap.under_load} before the load ended",
    ]
    if s.done:
        swap_parts.append("took " + ", ".join(f"{t:.2f}" for t in s.done) + " s")
        swap_parts.append(f"active versions {s.versions}")
    if s.explicit:
        swap_parts.append(f"{s.explicit} trained versions left inactive, activated by the bench")
    if s.failures:
        swap_parts.append(f"failures: {'; '.join(s.failures)}")
    swap_note = "; ".join(swap_parts)
    ours_cpu, base_cpu = ours.cpu_per_request_us("fast"), base.cpu_per_request_us("fast")
    r = f"{RATE:,.0f} req/s"
    return [
        Row(TITLE, f"req/s full speed ({CONNECTIONS} conns)", fast.rps, "req/s",
            baseline=bfast.rps,
            note=f"closed loop, keep-alive; baseline = the original design (Flask + one "
            f"IsolationForest.predict per request) under {server_kind()}"),
        Row(TITLE, "speed-up vs Flask + scikit-learn", fast.rps / bfast.rps, "x", target=50),
        Row(TITLE, "p50 at full speed", fast.percentile(50), "ms",
            baseline=bfast.percentile(50), higher_is_better=False),
        Row(TITLE, f"p99 at {r} offered", fixed.percentile(99), "ms",
            baseline=bfixed.percentile(99), target=3, higher_is_better=False,
            note=f"open loop, {CONNECTIONS} conns, latency from the scheduled send time; "
            f"the baseline achieved {bfixed.rps:,.0f}/s of {RATE:,.0f} offered"),
        Row(TITLE, f"p50 at {r} offered", fixed.percentile(50), "ms",
            baseline=bfixed.percentile(50), higher_is_better=False),
        Row(TITLE, f"req/s achieved at {r} offered", fixed.rps, "req/s", baseline=bfixed.rps,
            target=RATE * 0.98, note="below the offered rate = saturated"),
        Row(TITLE, f"p99 at {LIGHT_RATE:,.0f} req/s offered", light.percentile(99), "ms",
            baseline=blight.percentile(99), higher_is_better=False,
            note="light load: per-request latency where the baseline keeps up"),
        Row(TITLE, "server CPU per request", ours_cpu / 1e3, "ms", baseline=base_cpu / 1e3,
            higher_is_better=False,
            note=f"{ours_cpu:,.1f} µs vs {base_cpu:,.0f} µs: CPU seconds of the server "
            "process and its children over the full-speed runs, per request"),
        Row(TITLE, f"load generator ceiling, same requests ({CONNECTIONS} conns)",
            ceiling.rps, "req/s",
            note=f"the trivial server; usertide's full speed is {share:.0%} of it; "
            f"client {ceiling.cpu_cores:.2f} cores"),
        Row(TITLE, "model swaps completed under load", swap.under_load, "", target=swap_count,
            note=swap_note),
        Row(TITLE, "requests with an error during the swaps",
            errors(swap.predict) + errors(swap.track), "", target=0, higher_is_better=False,
            note=f"{swap.predict.requests:,} {PATH} and {swap.track.requests:,} /v1/track "
            f"requests at {RATE:,.0f} + {TRACK_RATE:,.0f} req/s offered "
            f"(open loop); statuses {dict(swap.predict.statuses)} / "
            f"{dict(swap.track.statuses)}, connection errors "
            f"{swap.predict.errors} / {swap.track.errors}"),
        Row(TITLE, "acknowledged events missing after the swaps", swap.missing, "events",
            target=0, higher_is_better=False,
            note=f"{swap.track.ok:,} /v1/track events acknowledged, {swap.stored:,} of them "
            "in GET /v1/events once the engine caught up"),
        Row(TITLE, f"p99 during the swaps ({r} + ingestion)", swap.predict.percentile(99), "ms",
            higher_is_better=False, note="for reference against the 3 ms target"),
    ]  # fmt: skip
