"""Engine state memory and in-process engine throughput (no HTTP, no store).

100k distinct users get a few events each (up to 8): the event sequences of simulated
shop visitors (parsed with the Segment normalizer and enriched with the standard
pipeline: pages, user agent, geo), copied per synthetic user with its ids renamed.
Users are fed in blocks of 1,000, their events interleaved, through ``Engine.apply``.

Each configuration runs in a fresh subprocess so RSS growth is the engine's alone:

* all hot (``hot_capacity`` above the user count): every user a Python object, the
  naive in-memory design, the baseline;
* default ``hot_capacity`` (50,000 hot, the rest as msgpack bytes);
* all cold (``hot_capacity=2``; 0 and 1 lose updates, see the report).

Reported: serialized state per user (``len(engine.codec.encode(state))``, mean and p99)
against the JSON profile the store keeps beside it, RSS growth per 100k users, and
events/s through ``engine.apply`` (renaming is done before timing).

    python -m benchmarks.bench_memory --users 100000 --hot-capacity 50000
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import subprocess
import sys
import time
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any

from benchmarks.common import ROOT, Context, Row
from benchmarks.loadgen import percentile

NAME = "memory"
TITLE = "state memory"
EVENTS_PER_USER = 8
# A fixed simulated day, so every configuration gets exactly the same events.
TEMPLATE_START = datetime(2026, 1, 5, tzinfo=UTC)
BLOCK = 1_000
DEFAULT_HOT = "default"


def _templates(template_users: int) -> list[list[Any]]:
    from usertide.capture.base import CaptureRequest
    from usertide.capture.segment import normalize_item
    from usertide.demo import Simulation, SimulationConfig
    from usertide.enrich import build_enrichers

    sim = Simulation(SimulationConfig(users=template_users, days=1.0, start=TEMPLATE_START))
    request = CaptureRequest(endpoint="batch", received_at=TEMPLATE_START + timedelta(days=2))
    enrich = build_enrichers()
    enrich.warm()
    groups: dict[str, list[Any]] = defaultdict(list)
    for item in sim.events():
        event = normalize_item(item, request, {}, None, None)
        enrich.enrich(event)
        group = groups[event.anonymous_id or event.user_id or ""]
        if len(group) < EVENTS_PER_USER:
            group.append(event)
    return list(groups.values())


def measure(users: int, hot_capacity: int | None, template_users: int) -> dict[str, Any]:
    import msgspec
    import psutil

    from usertide.engine import Engine
    from usertide.processors import BehaviourFeatures, Profile, Sessionizer

    templates = _templates(template_users)
    replace = msgspec.structs.replace
    gc.collect()
    proc = psutil.Process()
    rss_before = proc.memory_info().rss
    processors = [Sessionizer(), BehaviourFeatures(), Profile()]
    engine = (
        Engine(processors)
        if hot_capacity is None
        else Engine(processors, hot_capacity=hot_capacity)
    )
    offset = 0
    fed = 0
    apply_seconds = 0.0
    for start in range(0, users, BLOCK):
        # Rename a block of users' events before timing, then interleave them.
        block: list[list[Any]] = []
        for i in range(start, min(start + BLOCK, users)):
            template = templates[i % len(templates)]
            tag = f"~{i}"
            block.append(
                [
                    replace(
                        e,
                        id=e.id + tag,
                        user_id=e.user_id + tag if e.user_id else None,
                        anonymous_id=e.anonymous_id + tag if e.anonymous_id else None,
                    )
                    for e in template
                ]
            )
        ordered = []
        for position in range(EVENTS_PER_USER):
            for seq in block:
                if position < len(seq):
                    offset += 1
                    seq[position].offset = offset
                    ordered.append(seq[position])
        apply = engine.apply
        t0 = time.perf_counter()
        for event in ordered:
            apply(event)
        apply_seconds += time.perf_counter() - t0
        fed += len(ordered)
        # The runtime's checkpoint would clear these every second.
        engine.dirty.clear()
        engine.new_aliases.clear()
        engine.deleted.clear()
        del block, ordered
    gc.collect()
    rss_after = proc.memory_info().rss

    sizes: list[int] = []
    json_sizes: list[int] = []
    counted = 0
    for key in list(engine.hot) + list(engine.cold):
        state = engine.lookup(key)
        assert state is not None
        data = engine.cold.get(key)
        sizes.append(len(data) if data is not None else len(engine.codec.encode(state)))
        json_sizes.append(len(msgspec.json.encode(engine.view(state))))
        counted += state.slots["profile"].events  # type: ignore[attr-defined]
    sizes.sort()
    json_sizes.sort()
    return {
        "users": users,
        "engine_users": engine.user_count(),
        "hot": len(engine.hot),
        "cold": len(engine.cold),
        "events": fed,
        "events_counted": counted,
        "apply_seconds": apply_seconds,
        "rss_before": rss_before,
        "rss_after": rss_after,
        "state_mean": sum(sizes) / len(sizes),
        "state_p99": percentile(sizes, 99),
        "json_mean": sum(json_sizes) / len(json_sizes),
        "json_p99": percentile(json_sizes, 99),
    }


def _subprocess(users: int, hot: int | None, template_users: int) -> dict[str, Any]:
    argv = [
        sys.executable,
        "-m",
        "benchmarks.bench_memory",
        "--users",
        str(users),
        "--template-users",
        str(template_users),
    ]
    if hot is not None:
        argv += ["--hot-capacity", str(hot)]
    out = subprocess.run(
        argv, cwd=ROOT, capture_output=True, text=True, check=False, env=dict(os.environ)
    )
    if out.returncode != 0:
        raise RuntimeError(f"bench_memory failed:\n{out.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def run(ctx: Context) -> list[Row]:
    users = 5_000 if ctx.quick else 100_000
    template_users = 150 if ctx.quick else 1_000
    configs: list[tuple[str, int | None]] = [
        ("all hot", users * 2),
        ("default hot_capacity", None),
        ("all cold", 2),
    ]
    results = {}
    for label, hot in configs:
        r = _subprocess(users, hot, template_users)
        results[label] = r
        lost = r["events"] - r["events_counted"]
        ctx.note(
            f"{label}: {r['engine_users']:,} engine users ({r['hot']:,} hot / {r['cold']:,} "
            f"cold) from {r['events']:,} events ({r['events'] / users:.1f}/user); "
            f"RSS {r['rss_before'] / 2**20:.0f} -> {r['rss_after'] / 2**20:.0f} MiB"
            + (f"; {lost:,} events MISSING from profiles" if lost else "")
        )
    scale = 100_000 / users

    def growth(label: str) -> float:
        r = results[label]
        return float(r["rss_after"] - r["rss_before"]) * scale / 2**20

    def eps(label: str) -> float:
        r = results[label]
        return float(r["events"] / r["apply_seconds"])

    d = results["default hot_capacity"]
    per_user = f"per engine user ({d['engine_users']:,} after anonymous->user merges)"
    return [
        Row(TITLE, "state bytes/user, mean", d["state_mean"], "B", baseline=d["json_mean"],
            target=2048, higher_is_better=False,
            note=f"{per_user}; baseline = JSON profile of the same user"),
        Row(TITLE, "state bytes/user, p99", d["state_p99"], "B", baseline=d["json_p99"],
            target=2048, higher_is_better=False),
        Row(TITLE, "RSS growth /100k users, default", growth("default hot_capacity"), "MiB",
            baseline=growth("all hot"), higher_is_better=False,
            note="baseline = all users hot (Python objects)"),
        Row(TITLE, "RSS growth /100k users, all cold", growth("all cold"), "MiB",
            baseline=growth("all hot"), higher_is_better=False),
        Row(TITLE, "engine.apply events/s, default", eps("default hot_capacity"), "ev/s",
            baseline=eps("all hot"), target=50_000,
            note="in-process, 1 core; baseline = all hot"),
        Row(TITLE, "engine.apply events/s, all cold", eps("all cold"), "ev/s",
            baseline=eps("all hot")),
    ]  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--hot-capacity", type=int, default=None)
    parser.add_argument("--template-users", type=int, default=2_000)
    args = parser.parse_args()
    print(json.dumps(measure(args.users, args.hot_capacity, args.template_users)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
