"""Sign-in risk: the synchronous risk API, the engine's scoring throughput, the sign-in
state per user, and detection quality on a held-out simulation.

All traffic is the sign-in simulator's (``usertide.evaluation.login_sim``): legitimate
users at home, on mobile data, at the office, on VPNs and on trips, plus labelled
account takeovers, credential stuffing and brute force. The labels are removed before
anything sees the events.

1. ``POST /v1/risk/login`` (admin key) on a server warmed up with the first part of the
   stream (``/v1/batch``, so users have histories), then the next sign-ins at a fixed
   rate (open loop; the simulator's mix, then only legitimate sign-ins) and the last
   ones at full speed (closed loop, 8 connections). The simulated times are shifted by
   whole days so that the stream ends within the last day. Baseline: a second server
   warmed up the same way takes the very same sign-ins as Segment ``track`` events on
   ``POST /v1/track`` (plain ingestion; the engine learns from them in the background on
   both servers), so the ratio shows what answering with a score costs. Each run is
   split in halves taken in the order risk API, baseline, baseline, risk API, so that
   noise on a shared machine hits both alike.
2. In process (a fresh subprocess; the service's GC settings, ``usertide.cli.tune_gc``,
   applied after building the events, as the service does at start): ``Engine.apply``
   over ~60k sign-ins normalized and enriched beforehand, with the service's five
   processors and with the two risk processors alone. Baseline: the one-class SVM
   baseline's score + learn over the same sign-ins as dicts (it parses the user agent
   and looks up the country itself, so the row with normalize + enrich inside the
   clock is the like-for-like one).
3. After (2), the encoded size of each user's ``login_risk`` slot and of the whole
   user state.
4. ``usertide eval login`` on the held-out seed-7 simulation (a section of its own in
   BENCHMARKS.md, not table rows).

    python -m benchmarks.bench_login --engine --users 700 --days 60 --events 60000
"""

from __future__ import annotations

import argparse
import gc
import http.client
import json
import os
import statistics
import subprocess
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import msgspec
import psutil

from benchmarks.common import (
    ADMIN,
    ROOT,
    Context,
    Histogram,
    Row,
    batch_bodies,
    check_ok,
    ingest_requests,
    scrape,
    usertide_server,
    wait_until_processed,
)
from benchmarks.loadgen import LoadResult, build_request, percentile, run_load

NAME = "login"
TITLE = "sign-in risk"
CONNECTIONS = 8
OPEN_CONNECTIONS = 16
SIM_SEED = 2016  # the development set: the benchmark's traffic, not the held-out one
HELD_OUT_SEED = 7
EVAL_HEADING = "Sign-in risk: usertide vs the textbook one-class SVM (held-out simulation, seed 7)"
ANSWER_KEYS = {"score", "level", "action", "reasons", "alert_id", "event_id"}


# -- the simulated sign-ins -------------------------------------------------------------------


def sign_ins(
    users: int, days: int, seed: int = SIM_SEED, kinds: list[str | None] | None = None
) -> list[dict[str, Any]]:
    """The simulator's sign-in attempts (Segment ``track`` events named ``login``), in
    time order, without the ground truth (``label``, ``attack_type``); each attempt's
    attack type (None: legitimate) is appended to ``kinds`` when given."""
    from usertide.evaluation.login_sim import LoginSimConfig, simulate_logins

    out = []
    for item in simulate_logins(LoginSimConfig(users=users, days=days, seed=seed)):
        properties = item["properties"]
        item["properties"] = {"success": properties["success"]}
        out.append(item)
        if kinds is not None:
            kinds.append(properties["attack_type"])
    return out


def _parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _format_time(when: datetime) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z"


def shift_to_now(items: list[dict[str, Any]], end: datetime) -> timedelta:
    """Move every timestamp by the same whole number of days (so the simulated users keep
    their hours of the day) so that the last one falls in the day before ``end``."""
    shift = timedelta(days=(end - _parse_time(items[-1]["timestamp"])).days)
    for item in items:
        item["timestamp"] = _format_time(_parse_time(item["timestamp"]) + shift)
    return shift


def risk_body(item: dict[str, Any]) -> bytes:
    context = item["context"]
    return msgspec.json.encode(
        {
            "user_id": item["userId"],
            "ip": context["ip"],
            "user_agent": context["userAgent"],
            "success": item["properties"]["success"],
            "timestamp": item["timestamp"],
        }
    )


def risk_requests(bodies: list[bytes], port: int) -> list[bytes]:
    headers = {**ADMIN, "Content-Type": "application/json", "User-Agent": "usertide-bench/1"}
    return [
        build_request("POST", "/v1/risk/login", b, host=f"127.0.0.1:{port}", headers=headers)
        for b in bodies
    ]


def burst(after: dict[str, Any], count: int) -> list[dict[str, Any]]:
    """``count`` failed attempts on one account from one address, a second apart, after
    the stream's last sign-in: brute force at full speed."""
    start = _parse_time(after["timestamp"])
    return [
        {
            **after,
            "userId": "bench-burst-victim",
            "messageId": f"burst-{i}",
            "timestamp": _format_time(start + timedelta(seconds=i + 1)),
            "context": {**after["context"], "ip": "185.220.101.4"},
            "properties": {**after["properties"], "success": False},
        }
        for i in range(count)
    ]


# -- 1. the risk API over HTTP --------------------------------------------------------------------


def _post(port: int, path: str, body: bytes, headers: dict[str, str]) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("POST", path, body=body, headers=headers)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def combine(parts: list[LoadResult]) -> LoadResult:
    """Several runs as one: requests over the sum of their durations, latencies pooled."""
    statuses: Counter[int] = Counter()
    for part in parts:
        statuses.update(part.statuses)
    return LoadResult(
        sum(p.requests for p in parts),
        sum(p.errors for p in parts),
        dict(statuses),
        sum(p.seconds for p in parts),
        sorted(x for p in parts for x in p.latencies_ms),
        min(p.started for p in parts),
        max(p.finished for p in parts),
        sum(p.cpu_seconds for p in parts),
    )


def _busy() -> float:
    """CPU seconds the whole machine has spent busy (all processes)."""
    times = psutil.cpu_times()
    return float(sum(times) - times.idle - getattr(times, "iowait", 0.0))


def settle(proc: psutil.Process, idle: float = 0.05, timeout: float = 60.0) -> None:
    """Wait until the server is idle (below ``idle`` cores over 0.25 s): after the
    engine has processed the log, it still raises the alerts of the last events
    (``wait_until_processed`` sees the offset before those are stored)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        cpu0 = sum(proc.cpu_times()[:2])
        time.sleep(0.25)
        if sum(proc.cpu_times()[:2]) - cpu0 < idle * 0.25:
            return


class _Target:
    """A fresh server taking the sign-ins on the risk API (``risk``) or as ``track``
    events on ``/v1/track`` (the baseline); it keeps its measurements per phase."""

    def __init__(self, ctx: Context, risk: bool) -> None:
        self.server = usertide_server(ctx.tmp)
        self.risk = risk
        self.name = "/v1/risk/login" if risk else "/v1/track baseline"
        self.parts: dict[str, list[LoadResult]] = defaultdict(list)
        self.cpu: dict[str, float] = defaultdict(float)  # server CPU seconds per phase
        # /metrics before the first and after the last run of each phase
        self.metrics: dict[str, list[dict[tuple[str, str], float]]] = defaultdict(list)
        self.warm_s = 0.0
        self.others = 0.0  # the most CPU other processes used during a run, in cores
        self._encode = msgspec.json.Encoder().encode

    def requests(self, items: list[dict[str, Any]]) -> list[bytes]:
        port = self.server.port
        if self.risk:
            return risk_requests([risk_body(i) for i in items], port)
        return ingest_requests("/v1/track", [self._encode(i) for i in items], port)

    def warm(self, batches: list[bytes], items: list[dict[str, Any]]) -> None:
        """The first part of the stream in batches (so users have histories), then the
        endpoint's own code paths and connections with the last warm-up sign-ins."""
        port = self.server.port
        t0 = time.perf_counter()
        check_ok(run_load(port, ingest_requests("/v1/batch", batches, port)), "warm-up batches")
        check_ok(run_load(port, self.requests(items), connections=CONNECTIONS), "warm-up")
        if self.risk:  # the answer has the documented shape
            probe = risk_body({**items[-1], "userId": "benchmark-probe"})
            status, answer = _post(
                port, "/v1/risk/login", probe, {**ADMIN, "Content-Type": "application/json"}
            )
            if status != 200 or set(json.loads(answer)) != ANSWER_KEYS:
                raise RuntimeError(f"/v1/risk/login answered {status}: {answer[:300]!r}")
        wait_until_processed(port)
        settle(psutil.Process(self.server.pid))
        self.warm_s = time.perf_counter() - t0

    def measure(self, phase: str, items: list[dict[str, Any]], **load: Any) -> None:
        port = self.server.port
        proc = psutil.Process(self.server.pid)
        samples = self.metrics[phase]
        if not samples:
            samples.append(scrape(port))
        cpu0, busy0 = sum(proc.cpu_times()[:2]), _busy()
        result = run_load(port, self.requests(items), **load)
        server_cpu = sum(proc.cpu_times()[:2]) - cpu0
        self.cpu[phase] += server_cpu
        others = _busy() - busy0 - server_cpu - result.cpu_seconds
        self.others = max(self.others, others / result.seconds)
        check_ok(result, f"{self.name} {phase}")
        self.parts[phase].append(result)
        wait_until_processed(port)  # nothing left over for the next run
        settle(proc)
        samples[1:] = [scrape(port)]

    def commits(self, phase: str) -> str:
        """The server's group commits during the phase (its own histogram)."""
        before, after = self.metrics[phase]
        name = "usertide_log_commit_seconds"
        commit = Histogram.read(after, name) - Histogram.read(before, name)
        return (
            f"{commit.count:,.0f} commits, p50 {commit.quantile(0.5) * 1e3:.1f} ms / p99 "
            f"{commit.quantile(0.99) * 1e3:.1f} ms"
        )

    def result(self, phase: str) -> LoadResult:
        return combine(self.parts[phase])

    def cores(self, phase: str) -> float:
        return self.cpu[phase] / self.result(phase).seconds


def _http(ctx: Context) -> list[Row]:
    users, days = (300, 20) if ctx.quick else (2_000, 20)
    rate = 500.0
    open_seconds = 1.0 if ctx.quick else 10.0
    cap = 1.5 if ctx.quick else 8.0
    n_open = int(rate * open_seconds)
    n_fast = 2_000 if ctx.quick else 10_000
    n_warm_requests = 200 if ctx.quick else 500

    started = time.perf_counter()
    kinds: list[str | None] = []
    items = sign_ins(users, days, kinds=kinds)
    shift = shift_to_now(items, datetime.now(UTC) - timedelta(minutes=1))
    last = datetime.now(UTC) - _parse_time(items[-1]["timestamp"])
    # From the end of the stream backwards: the full-speed run, the legitimate sign-ins
    # among the attempts before it, the mixed sign-ins before those, and the warm-up.
    fast_from = len(items) - n_fast
    legit_at = [i for i in range(fast_from) if kinds[i] is None][-n_open:]
    mixed_from = legit_at[0] - n_open
    warm_from = mixed_from - n_warm_requests
    if warm_from < n_warm_requests * 10:
        raise RuntimeError(f"only {len(items):,} simulated sign-ins")
    attacks = sum(k is not None for k in kinds[mixed_from : legit_at[0]])
    phases = {"mixed": items[mixed_from : legit_at[0]], "legit": [items[i] for i in legit_at]}
    warm_items = items[warm_from:mixed_from]
    fast_items = items[fast_from:]
    burst_items = burst(items[-1], 500 if ctx.quick else 2_000)
    batches = batch_bodies(items[:warm_from])
    ctx.note(
        f"sign-in traffic: {len(items):,} simulated sign-ins (users {users:,}, days {days}, "
        f"seed {SIM_SEED}; times shifted by {shift.days:,} days, so the last sign-in is "
        f"{last.total_seconds() / 3600:.1f} h old), "
        f"built in {time.perf_counter() - started:.1f} s; both servers are warmed up with "
        f"the first {warm_from:,} in /v1/batch bodies of 100 and {len(warm_items):,} on "
        f"their endpoint, then take at {rate:,.0f}/s ({OPEN_CONNECTIONS} conns) the next "
        f"{n_open:,} (the simulator's mix: {attacks / n_open:.0%} attack attempts, mostly "
        f"credential stuffing and brute force, which the model flags nearly all), then the "
        f"{n_open:,} legitimate ones among the {fast_from - legit_at[0]:,} after those, "
        f"then up to the last {n_fast:,} at full speed ({CONNECTIONS} conns, {cap:g} s); "
        "every run is split in halves taken in the order risk API, baseline, baseline, "
        "risk API, so that noise on the shared machine hits both alike"
    )
    ours, base = _Target(ctx, risk=True), _Target(ctx, risk=False)
    with ours.server.start(), base.server.start():
        ours.warm(batches, warm_items)
        base.warm(batches, warm_items)
        runs = [
            (phase, part, {"connections": OPEN_CONNECTIONS, "rate": rate})
            for phase, part in phases.items()
        ]
        runs.append(("fast", fast_items, {"connections": CONNECTIONS, "duration": cap / 2}))
        # one account at full speed: its attempts take turns (each counts for the next)
        runs.append(("burst", burst_items, {"connections": CONNECTIONS, "duration": cap / 2}))
        for phase, part, load in runs:
            half = len(part) // 2
            for target, chunk in (
                (ours, part[:half]), (base, part[:half]), (base, part[half:]), (ours, part[half:])
            ):  # fmt: skip
                target.measure(phase, chunk, **load)
    for target in (ours, base):
        opened = "; ".join(
            f"{phase}: achieved {r.rps:,.0f}/s, server CPU {target.cores(phase):.2f} cores, "
            f"p90 {r.percentile(90):,.1f} ms, max {r.latencies_ms[-1]:,.1f} ms, "
            f"{target.commits(phase)}"
            for phase, r in ((p, target.result(p)) for p in phases)
        )
        fast = target.result("fast")
        ctx.note(
            f"{target.name}: warm-up {target.warm_s:.1f} s; at {rate:,.0f}/s offered, "
            f"{opened}; full speed {fast.requests:,} requests in {fast.seconds:.1f} s, "
            f"server CPU {target.cores('fast'):.2f} cores, p99 {fast.percentile(99):,.1f} "
            f"ms, {target.commits('fast')}; load generator used at most "
            f"{max(r.cpu_cores for rs in target.parts.values() for r in rs):.2f} cores, "
            f"other processes on the machine at most {target.others:.2f} cores"
        )
    for target in (ours, base):
        b = target.result("burst")
        ctx.note(
            f"{target.name} burst (one account, {CONNECTIONS} conns, full speed): "
            f"{b.requests:,} attempts in {b.seconds:.1f} s, {b.rps:,.0f}/s, p50 "
            f"{b.percentile(50):,.1f} ms, p99 {b.percentile(99):,.1f} ms, server CPU "
            f"{target.cores('burst'):.2f} cores, {target.commits('burst')}"
        )
    r = f"{rate:,.0f} req/s"
    mix, legit, fast = ours.result("mixed"), ours.result("legit"), ours.result("fast")
    bmix, blegit, bfast = base.result("mixed"), base.result("legit"), base.result("fast")
    one, bone = ours.result("burst"), base.result("burst")
    return [
        Row(TITLE, f"risk API p99 at {r}", mix.percentile(99), "ms",
            baseline=bmix.percentile(99), target=5, higher_is_better=False,
            note=f"open loop, {OPEN_CONNECTIONS} conns, {n_open:,} sign-ins of the simulator's "
            f"mix ({attacks / n_open:.0%} attack attempts) after a warm-up; baseline = the "
            "same sign-ins as track events on POST /v1/track (ingestion only)"),
        Row(TITLE, f"risk API p50 at {r}", mix.percentile(50), "ms",
            baseline=bmix.percentile(50), higher_is_better=False),
        Row(TITLE, f"risk API req/s achieved at {r} offered", mix.rps, "req/s",
            baseline=bmix.rps, target=rate * 0.98, note="below the offered rate = saturated"),
        Row(TITLE, f"risk API p99 at {r}, legitimate sign-ins only", legit.percentile(99),
            "ms", baseline=blegit.percentile(99), target=5, higher_is_better=False,
            note="the next legitimate sign-ins of the stream, attacks left out: few "
            "are flagged, so few raise an alert"),
        Row(TITLE, f"risk API p50 at {r}, legitimate sign-ins only", legit.percentile(50),
            "ms", baseline=blegit.percentile(50), higher_is_better=False),
        Row(TITLE, f"risk API req/s full speed ({CONNECTIONS} conns)", fast.rps, "req/s",
            baseline=bfast.rps, note="the simulator's mix"),
        Row(TITLE, "risk API p50 at full speed", fast.percentile(50), "ms",
            baseline=bfast.percentile(50), higher_is_better=False),
        Row(TITLE, f"risk API burst on one account, req/s ({CONNECTIONS} conns)", one.rps,
            "req/s", baseline=bone.rps,
            note="failed attempts on one account from one address, full speed: serialised "
            "per account, each answered after the previous is durable and counted"),
        Row(TITLE, "risk API burst on one account, p99", one.percentile(99), "ms",
            baseline=bone.percentile(99), higher_is_better=False),
    ]  # fmt: skip


# -- 2 and 3. the engine in process ------------------------------------------------------------


def measure_engine(users: int, days: int, events: int) -> dict[str, Any]:
    """Scoring throughput and sign-in state size; run in a fresh process (``--engine``)."""
    from usertide.capture.base import CaptureRequest
    from usertide.capture.segment import normalize_item
    from usertide.cli import tune_gc
    from usertide.engine import Engine, Processor
    from usertide.engine.base import Detection
    from usertide.enrich import GeoIPEnricher, build_enrichers
    from usertide.evaluation.baseline_ocsvm import OneClassSVMBaseline
    from usertide.risk import LoginRisk, NetworkVelocity
    from usertide.service import build_processors

    items = sign_ins(users, days)[:events]
    request = CaptureRequest(endpoint="batch", received_at=datetime.now(UTC))
    enrichers = build_enrichers()
    enrichers.warm()

    def build() -> tuple[list[Any], float]:
        t0 = time.perf_counter()
        out = []
        for i, item in enumerate(items):
            event = normalize_item(item, request, {}, None, None)
            enrichers.enrich(event)
            event.offset = i + 1
            out.append(event)
        return out, time.perf_counter() - t0

    # Built once per engine: processors memoize on the event (its __dict__), so a second
    # pass over the same objects would skip work the service does once per sign-in.
    # A running service has its caches warm (the user-agent parser's; the risk model's
    # per-path keys and plans): one pass of a throw-away engine fills them, then every
    # measured engine starts empty on events built afresh.
    warm = Engine(build_processors(NetworkVelocity(), LoginRisk()))
    for event in build()[0]:
        warm.apply(event)
    del warm
    runs: dict[str, Any] = {}
    engines: list[tuple[str, list[Processor[Any]]]] = [
        ("all", build_processors(NetworkVelocity(), LoginRisk())),
        ("risk", [NetworkVelocity(), LoginRisk()]),
    ]
    for label, processors in engines:
        built, build_s = build()
        tune_gc()  # as `usertide serve` does at start: collect, freeze, fewer young GCs
        engine = Engine(processors)
        apply = engine.apply
        # Outputs are looked at and dropped, as the runtime does once its subscribers
        # have them (keeping 60k lists alive would only slow the collector).
        detections = 0
        t0 = time.perf_counter()
        for event in built:
            for output in apply(event):
                if isinstance(output, Detection) and output.detector == "login_risk":
                    detections += 1
        apply_s = time.perf_counter() - t0
        runs[label] = {"build_s": build_s, "apply_s": apply_s, "detections": detections}
        if label == "all":
            slot: list[int] = []
            whole: list[int] = []
            for key in list(engine.hot) + list(engine.cold):
                if key.startswith("\x1f"):
                    continue
                state = engine.lookup(key)
                assert state is not None
                slot.append(len(msgspec.msgpack.encode(state.slots["login_risk"])))
                whole.append(len(engine.codec.encode(state)))
            slot.sort()
            whole.sort()
            runs["state"] = {
                "users": len(slot),
                "networks": engine.user_count() - len(slot),
                "slot_mean": sum(slot) / len(slot),
                "slot_p99": percentile(slot, 99),
                "slot_max": slot[-1],
                "whole_mean": sum(whole) / len(whole),
                "whole_p99": percentile(whole, 99),
                "whole_max": whole[-1],
            }
        del built, engine, apply
        gc.unfreeze()
        gc.collect()

    geo = GeoIPEnricher()
    geo.warm()
    baseline = OneClassSVMBaseline(geo=geo)
    tune_gc()
    t0 = time.perf_counter()
    for item in items:
        baseline.learn(item, baseline.score(item))
    runs["ocsvm"] = {"seconds": time.perf_counter() - t0, "fits": baseline.fits}
    runs["events"] = len(items)
    runs["success"] = sum(1 for i in items if i["properties"]["success"])
    return runs


ENGINE_RUNS = 3


def _engine(ctx: Context) -> list[Row]:
    users, days, events = (300, 20, 8_000) if ctx.quick else (700, 60, 60_000)
    argv = [
        sys.executable, "-m", "benchmarks.bench_login", "--engine",
        "--users", str(users), "--days", str(days), "--events", str(events),
    ]  # fmt: skip
    results: list[dict[str, Any]] = []
    # Each run in a fresh process; the median of several, as the shared machine's speed
    # drifts by tens of per cent between minutes.
    for _ in range(1 if ctx.quick else ENGINE_RUNS):
        out = subprocess.run(
            argv, cwd=ROOT, capture_output=True, text=True, check=False, env=dict(os.environ)
        )
        if out.returncode != 0:
            raise RuntimeError(f"bench_login --engine failed:\n{out.stderr[-3000:]}")
        results.append(json.loads(out.stdout.strip().splitlines()[-1]))
    r = results[0]
    n = r["events"]
    full, state = r["all"], r["state"]

    def rate(seconds: Callable[[dict[str, Any]], float]) -> float:
        return statistics.median(n / seconds(x) for x in results)

    ours = rate(lambda x: x["all"]["apply_s"])
    alone = rate(lambda x: x["risk"]["apply_s"])
    with_enrich = rate(lambda x: x["all"]["apply_s"] + x["all"]["build_s"])
    base = rate(lambda x: x["ocsvm"]["seconds"])
    spread = ", ".join(f"{n / x['all']['apply_s']:,.0f}" for x in results)
    ctx.note(
        f"engine: {n:,} sign-ins ({r['success']:,} successful) of {state['users']:,} "
        f"accounts and {state['networks']:,} networks (users {users:,}, days {days}, seed "
        f"{SIM_SEED}); rates are the median of {len(results)} runs, each in a fresh process "
        f"(the 7 processors: {spread} sign-ins/s); normalize + enrich "
        f"{n / full['build_s']:,.0f}/s; {full['detections']:,} detections "
        f"({full['detections'] / n:.1%} of sign-ins); one-class SVM fitted "
        f"{r['ocsvm']['fits']:,} models in {r['ocsvm']['seconds']:.1f} s"
    )
    return [
        Row(TITLE, "engine sign-ins/s, service's 7 processors", ours, "ev/s",
            baseline=base, target=20_000,
            note="in-process Engine.apply over pre-enriched events, 1 core, the service's GC "
            "settings (tune_gc: freeze, young threshold 50,000); "
            "baseline = one-class SVM score + learn over the same sign-ins (which includes "
            "its own country lookup and user-agent parsing)"),
        Row(TITLE, "engine sign-ins/s, risk processors alone", alone, "ev/s",
            baseline=base, note="Engine([NetworkVelocity(), LoginRisk()])"),
        Row(TITLE, "sign-ins/s incl. normalize + enrich", with_enrich, "ev/s", baseline=base,
            note="the like-for-like comparison with the baseline: normalize_item + "
            "enrich + the 7 processors inside the clock"),
        Row(TITLE, "login_risk state bytes/user, mean", state["slot_mean"], "B",
            target=2048, higher_is_better=False,
            note=f"msgpack of the login_risk slot after {n:,} sign-ins over {days} days, "
            f"{state['users']:,} accounts (the most active had "
            "dozens of sign-ins, brute-forced ones hundreds of failures)"),
        Row(TITLE, "login_risk state bytes/user, p99", state["slot_p99"], "B",
            target=2048, higher_is_better=False),
        Row(TITLE, "login_risk state bytes/user, max", state["slot_max"], "B",
            target=2048, higher_is_better=False),
        Row(TITLE, "whole user state bytes, mean", state["whole_mean"], "B",
            higher_is_better=False, note="engine.codec.encode(state): all 4 user slots"),
        Row(TITLE, "whole user state bytes, p99", state["whole_p99"], "B",
            higher_is_better=False),
        Row(TITLE, "whole user state bytes, max", state["whole_max"], "B",
            higher_is_better=False),
    ]  # fmt: skip


# -- 4. detection quality ------------------------------------------------------------------------

SIMULATOR = """\
**The simulator** (`src/usertide/evaluation/login_sim.py`, deterministic per seed): one
Segment `track` event named `login` per sign-in attempt, labelled `legit` or `attack`.
Legitimate users live on residential ISP /24s, have a mobile carrier and one to three
devices, and sign in on personal habits (log-normal rate, median once a day, at
preferred hours of their local time) from home (DHCP reassignments), mobile data
(carrier-grade NAT churn), a shared office /24, commercial VPN or hosting exits, or on
trips abroad (hotel networks, roaming phones: legitimate new countries and country
flip-flops); they replace devices, browsers update their version string, and 6 % of
sign-ins follow failed password attempts. Attacks, all after the first quarter of the
period, one incident of each type per 20 users: `naive` (another country, random
browser), `vpn` (a hosting/VPN exit in the victim's own country), `targeted` (a
residential proxy in the victim's country, the victim's browser family, often the very
same user-agent string, at the victim's daytime), `credential_stuffing` (campaigns of
50-300 accounts from a few hosting addresses, ~4 % succeed) and `brute_force` (20-200
failures on one account, half end in a success). All addresses are real public /24s that
the offline GeoLite2 data resolves to the stated country; nothing is sent anywhere.
Each successful sign-in is followed by what its session does (unlabelled `track`
events from the same address and browser): legitimate sessions rarely change account
details (per session: e-mail 0.3 %, password 0.1 %, payment method 0.8 %, data export
0.1 %, two-factor off 0.02 %; a password change in 8 % of sessions after two or more
failed attempts), while 65 % of takeover sessions (30 % after credential stuffing) change
the e-mail (45 %), the password (35 %), add a payment method (30 %), export data (25 %)
or turn off two-factor (10 %) within 15 minutes. These rates are the simulator's
assumptions, not measurements: the "with session" table depends on them.
"""

PROTOCOL = """\
**The protocol** (`src/usertide/evaluation/login_eval.py`, `usertide_scorer.py`): each
scorer sees every sign-in once, in time order, with the labels removed, and must score
it *before* it learns from it (score, then learn), as a live detector would. usertide's
scorer normalizes and enriches each sign-in like the collector, scores it from the
engine's current state as `POST /v1/risk/login` does (`assess_now`), then applies it to
the engine, which learns by the model's own rules (low-risk successes at once, flagged
ones never: the harness gives no feedback); its population snapshot is retrained from the
successful sign-ins seen so far every 20,000 sign-ins. The baseline is a per-user
scikit-learn `OneClassSVM` (RBF, nu = 0.1) over one-hot country and browser family,
fitted on the user's last 50 successful sign-ins and learning from every success
(neutral 0.5 below 3). Each attack type is compared against *all* legitimate attempts:
ROC AUC, the share of attacks detected at a 1 % false-positive rate, and the share of
legitimate sign-ins challenged when the threshold catches 99 % of the attacks; first over
successful sign-ins only (the headline: a takeover is a successful sign-in), then over
every attempt. A third table scores each successful sign-in by its *session score*: the
highest of its own score and of the alerts usertide raises later in its session
(`LoginAftermath`: e-mail or password changes and the like after a doubtful sign-in),
seen in time order after every earlier sign-in was learned; the 1 % false-positive
threshold is taken over the legitimate session scores, so alerts on legitimate sessions
count against it. Such an alert is a review or forced sign-out minutes later, not a
challenge at the door; the SVM never sees those events. The seed-2016 stream is the
development set the model was tuned on; seed 7 is held out, and only it is reported here.
"""


def _usertide(*args: str, cwd: Path) -> str:
    argv = [sys.executable, "-m", "usertide.cli", *args]
    out = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise RuntimeError(f"usertide {' '.join(args)} failed:\n{out.stderr[-3000:]}")
    return out.stdout.rstrip()


def _evaluation(ctx: Context) -> str:
    size: tuple[str, ...] = ("--users", "300", "--days", "20") if ctx.quick else ()
    work = Path(ctx.tmp) / "login-eval"
    work.mkdir(exist_ok=True)
    dev, held_out = f"logins-seed{SIM_SEED}.jsonl", f"logins-seed{HELD_OUT_SEED}.jsonl"
    commands = [
        ("simulate-logins", dev, *size, "--seed", str(SIM_SEED)),
        ("simulate-logins", held_out, *size, "--seed", str(HELD_OUT_SEED)),
    ]
    summaries = [_usertide("eval", *c, cwd=work) for c in commands]
    t0 = time.perf_counter()
    report = _usertide("eval", "login", held_out, cwd=work)
    took = time.perf_counter() - t0
    (work / dev).unlink(missing_ok=True)
    (work / held_out).unlink(missing_ok=True)
    ctx.note(f"sign-in evaluation: usertide eval login on the held-out file took {took:.0f} s")
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    quick = " (quick run: 300 users, 20 days, not the real sizes)" if ctx.quick else ""
    shell = [f"usertide eval {' '.join(c)}" for c in commands]
    width = max(map(len, shell))
    shell = [
        shell[0].ljust(width) + "  # the development (tuning) set",
        shell[1].ljust(width) + "  # held out: never used for tuning",
        f"usertide eval login {held_out}",
    ]
    return "\n".join(
        [
            f"## {EVAL_HEADING}",
            "",
            f"Run on {when}{quick} by `python -m benchmarks` (`--only login`); "
            "the same by hand (defaults: 2,000 users, 60 days):",
            "",
            "```bash",
            *shell,
            "```",
            "",
            SIMULATOR,
            PROTOCOL,
            "The two streams:",
            "",
            "```text",
            *summaries,
            "```",
            "",
            f"`usertide eval login {held_out}` ({took:.0f} s):",
            "",
            "```text",
            report,
            "```",
            "",
        ]
    )


# -- the benchmark ------------------------------------------------------------------------------


def run(ctx: Context) -> list[Row]:
    rows = _http(ctx)
    rows += _engine(ctx)
    sections: dict[str, str] = ctx.cache.setdefault("sections", {})
    sections[NAME] = _evaluation(ctx)
    return rows


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--engine", action="store_true", required=True)
    parser.add_argument("--users", type=int, default=700)
    parser.add_argument("--days", type=int, default=60)
    parser.add_argument("--events", type=int, default=60_000)
    args = parser.parse_args()
    print(json.dumps(measure_engine(args.users, args.days, args.events)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
