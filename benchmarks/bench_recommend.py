"""Recommendations served over HTTP: the live path against the offline evaluation, and
latency, throughput, memory and freshness at catalogue scale.

1. Live = offline: yoochoose ``train_tr`` -> ``train_valid`` replayed through a running
   server (``usertide.evaluation.recommend_replay``: each test event sent, then the top 20
   asked for) gives the HR@20 and MRR@20 of ``usertide eval recommend --online`` computed
   in this process, for the default (``blend``) and the textbook V-SKNN.
2. Scale: yoochoose ``train_full`` seven times over, each copy's items and sessions
   renamed (real sessions; 20,000+ items, 120,000+ sessions), sent to a fresh server with
   the default set of served recommenders, which learns every event. Then: p99 of
   ``GET /v1/recommendations`` at 200 requests/s offered (open loop, for visitors of the
   data, ``blend``; the same for ``vsknn`` beside it), the requests/s it sustains (closed
   loop, 8 connections) while 2,000 events/s are ingested, the server's CPU per request,
   its memory growth for the recommenders (process RSS before and after learning, the
   same events sent to a server serving ``popular`` only subtracted), and how long a new
   item takes to be recommended (its first event acknowledged -> the first answer with
   it).

    python -m benchmarks --only recommend --write
"""

from __future__ import annotations

import os
import random
import statistics
import threading
import time
from pathlib import Path
from typing import NamedTuple

import httpx
import msgspec
import psutil

from benchmarks.common import (
    ADMIN_KEY,
    WRITE_KEY,
    Context,
    Row,
    check_ok,
    log,
    usertide_server,
    wait_until_processed,
)
from benchmarks.loadgen import LoadResult, build_request, run_load
from usertide.evaluation.recommend_data import Event, read_events, sessions
from usertide.evaluation.recommend_eval import evaluate_sessions
from usertide.evaluation.recommend_replay import as_sent, replay

NAME = "recommend"
TITLE = "recommendations"
COPIES = 7
OFFERED = 200.0  # requests/s for the latency run
INGEST_RATE = 2_000  # events/s while the throughput run goes
_AUTH = httpx.BasicAuth(WRITE_KEY, "")
_ADMIN = {"Authorization": f"Bearer {ADMIN_KEY}"}


def _data() -> Path | None:
    root = Path(
        os.environ.get("USERTIDE_SHARED_DATA", Path(__file__).parents[2] / "shared" / "data")
    )
    folder = root / "yoochoose-100k"
    return folder if (folder / "train_full.tsv").is_file() else None


def _copies(events: list[Event], copies: int) -> list[Event]:
    """The events ``copies`` times, each copy's sessions and items renamed, in time order
    (the copies interleave as independent shops with the same traffic would)."""
    out = [(f"{s}~{k}", f"{i}~{k}", t) for k in range(copies) for s, i, t in events]
    out.sort(key=lambda e: e[2])
    return out


def _track(session: str, item: str, t: float, n: int) -> dict[str, object]:
    return {
        "type": "track", "event": "Product Viewed", "anonymousId": f"s{session}",
        "messageId": f"b{n}", "timestamp": _iso(t), "context": {"sessionId": session},
        "properties": {"product_id": item},
    }  # fmt: skip


def _iso(t: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{int(t % 1 * 1000):03d}Z"


def _send(port: int, events: list[Event]) -> float:
    enc = msgspec.json.Encoder()
    bodies = [
        enc.encode(
            {"batch": [_track(s, i, t, n + k) for k, (s, i, t) in enumerate(events[n : n + 500])]}
        )
        for n in range(0, len(events), 500)
    ]
    headers = {"Authorization": _AUTH._auth_header, "Content-Type": "application/json"}
    requests = [build_request("POST", "/v1/batch", b, headers=headers) for b in bodies]
    started = time.perf_counter()
    check_ok(run_load(port, requests, connections=2), "loading the catalogue")
    wait_until_processed(port, timeout=900)
    return time.perf_counter() - started


def _asks(visitors: list[str], recommender: str, count: int) -> list[bytes]:
    rng = random.Random(5)
    return [
        build_request(
            "GET",
            f"/v1/recommendations?anonymous_id=s{rng.choice(visitors)}&n=10"
            f"&recommender={recommender}",
            headers=_ADMIN,
        )
        for _ in range(count)
    ]


def _live_vs_offline(ctx: Context, folder: Path) -> list[Row]:
    # times as the server reads them back (to the microsecond), on both sides
    train = as_sent(read_events(folder / "train_tr.tsv"))
    test = sessions(as_sent(read_events(folder / "train_valid.tsv")))
    if ctx.quick:
        train, test = train[:8_000], test[:300]
    rows = []
    for name in ("blend", "vsknn"):
        offline = evaluate_sessions(train, test, [name], online=True).results[0].metrics
        # no linger: each replayed event is loaded at once (the replay waits for it)
        with usertide_server(
            ctx.tmp, USERTIDE_RECOMMENDERS=name, USERTIDE_LOAD_LINGER="0"
        ) as server:
            server.start()
            with httpx.Client(base_url=f"http://127.0.0.1:{server.port}", timeout=30) as client:
                started = time.perf_counter()
                live = replay(client, _AUTH, ADMIN_KEY, train, test, name)
                took = time.perf_counter() - started
        log(f"  {name}: {len(live.ranks):,} predictions through HTTP in {took:.0f} s: HR@20 "
            f"{live.hit_rate():.4f} (offline {offline['HR@20']:.4f}), MRR@20 {live.mrr():.4f} "
            f"(offline {offline['MRR@20']:.4f})")  # fmt: skip
        rows += [
            Row(TITLE, f"HR@20 through the HTTP API, {name}", live.hit_rate(),
                baseline=offline["HR@20"],
                note=f"train_tr -> train_valid replayed event by event ({len(live.ranks):,} "
                "prediction points); baseline: usertide eval recommend --online in this run"),
            Row(TITLE, f"|HR@20 live - offline|, {name}", abs(live.hit_rate() - offline["HR@20"]),
                target=0.0, higher_is_better=False),
            Row(TITLE, f"MRR@20 through the HTTP API, {name}", live.mrr(),
                baseline=offline["MRR@20"]),
        ]  # fmt: skip
    return rows


def _rss(pid: int) -> float:
    return psutil.Process(pid).memory_info().rss / 1e6


class Measured(NamedTuple):
    p99: dict[str, tuple[float, float, float]]  # recommender: p99, p50, req/s
    loaded: LoadResult
    cpu: float
    ingested: float
    waits: list[float]
    duration: int


def _ingest(port: int, events: list[Event], stop: threading.Event, sent: list[int]) -> None:
    """New visitors' events at INGEST_RATE until ``stop`` (items of the catalogue)."""
    rng = random.Random(9)
    last = events[-1][2]
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
        n = 0
        while not stop.is_set():
            t0 = time.perf_counter()
            batch = [
                _track(f"live{n + k}", rng.choice(events)[1], last + n, 10**9 + n + k)
                for k in range(200)
            ]
            client.post("/v1/batch", json={"batch": batch}, auth=_AUTH)
            n += 200
            sent[0] = n
            time.sleep(max(0.0, 200 / INGEST_RATE - (time.perf_counter() - t0)))


def _freshness(port: int, last: float) -> list[float]:
    """Milliseconds from a new item's first events acknowledged to an answer with it."""
    waits = []
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
        for k in range(20):
            first, second = f"brand-new-{k}-a", f"brand-new-{k}-b"
            t = last + 10_000 + k
            pair = [
                _track(f"n{k}", first, t, -2 * k - 1),
                _track(f"n{k}", second, t + 1, -2 * k - 2),
            ]
            client.post("/v1/batch", json={"batch": pair}, auth=_AUTH).raise_for_status()
            acked = time.perf_counter()
            while True:
                r = client.get(f"/v1/items/{first}/similar", params={"n": 3}, headers=_ADMIN)
                if r.status_code == 200 and second in [i["item_id"] for i in r.json()["items"]]:
                    waits.append((time.perf_counter() - acked) * 1000)
                    break
                if time.perf_counter() - acked > 10:
                    waits.append(10_000.0)
                    break
    return waits


def _measure(
    port: int, pid: int, events: list[Event], visitors: list[str], quick: bool
) -> Measured:
    seconds = 5 if quick else 15
    p99 = {}
    for name in ("blend", "vsknn"):  # latency, open loop
        result = run_load(port, _asks(visitors, name, int(OFFERED * seconds)), connections=8,
                          rate=OFFERED)  # fmt: skip
        check_ok(result, f"{name} at {OFFERED:.0f}/s")
        p99[name] = (result.percentile(99), result.percentile(50), result.rps)
    stop, sent = threading.Event(), [0]
    feeder = threading.Thread(target=_ingest, args=(port, events, stop, sent), daemon=True)
    proc = psutil.Process(pid)
    cpu0 = sum(proc.cpu_times()[:2])
    feeder.start()
    loaded = run_load(port, _asks(visitors, "blend", 200_000), connections=8, duration=seconds)
    stop.set()
    feeder.join()
    cpu = sum(proc.cpu_times()[:2]) - cpu0
    check_ok(loaded, "recommendations while ingesting")
    return Measured(p99, loaded, cpu, sent[0] / loaded.seconds, _freshness(port, events[-1][2]),
                    seconds)  # fmt: skip


def _scale(ctx: Context, folder: Path) -> list[Row]:
    base = read_events(folder / "train_full.tsv")
    copies = 1 if ctx.quick else COPIES
    events = _copies(base, copies)
    items = len({i for _, i, _ in events})
    sessions_n = len({s for s, _, _ in events})
    visitors = sorted({s for s, _, _ in events})
    log(f"  {len(events):,} events, {items:,} items, {sessions_n:,} sessions ({copies} copies)")
    # Memory: the same events into a server serving popular only, then the default set.
    growth: dict[str, float] = {}
    measured: Measured | None = None
    for served in ("popular", ""):
        env = {"USERTIDE_RECOMMENDERS": served} if served else {}
        with usertide_server(ctx.tmp, **env) as server:
            server.start()
            before = _rss(server.pid)
            took = _send(server.port, events)
            growth[served or "default"] = _rss(server.pid) - before
            if not served:
                log(f"  loaded and learned in {took:.0f} s ({len(events) / took:,.0f} events/s)")
                measured = _measure(server.port, server.pid, events, visitors, ctx.quick)
    assert measured is not None
    p99, loaded, cpu, ingested, waits, duration = (
        measured.p99, measured.loaded, measured.cpu, measured.ingested, measured.waits,
        measured.duration,
    )  # fmt: skip
    memory = growth["default"] - growth["popular"]
    ctx.note(
        f"{len(events):,} events of yoochoose train_full x{copies} (items and sessions renamed "
        f"per copy): {items:,} items, {sessions_n:,} sessions, learned by the default set "
        f"(blend, vstan, vsknn, sr, ar, trending, popular); latency at {OFFERED:.0f} req/s "
        f"offered, 8 connections, open loop: blend p50 {p99['blend'][1]:.2f} ms, vsknn p50 "
        f"{p99['vsknn'][1]:.2f} ms; while ingesting {ingested:,.0f} events/s: "
        f"{loaded.rps:,.0f} req/s, p99 {loaded.percentile(99):.1f} ms; new item "
        f"recommendable after median {statistics.median(waits):.1f} ms, max {max(waits):.1f} ms"
    )
    return [
        Row(TITLE, f"request p99 at {OFFERED:.0f} req/s, {items:,} items, {sessions_n:,} sessions",
            p99["blend"][0], "ms", baseline=p99["vsknn"][0], target=10.0,
            higher_is_better=False,
            note="blend (the default); baseline: the textbook V-SKNN served the same way"),
        Row(TITLE, "requests/s while ingesting", loaded.rps, "req/s", target=1_000,
            note=f"closed loop, 8 connections, {duration} s, blend, while {ingested:,.0f} "
            "events/s were ingested and learned"),
        Row(TITLE, "server CPU per request while ingesting", cpu / loaded.requests * 1000, "ms",
            higher_is_better=False),
        Row(TITLE, "recommenders' memory", memory, "MB", higher_is_better=False,
            note=f"server RSS growth with the default set minus with popular only "
            f"({growth['default']:.0f} - {growth['popular']:.0f} MB), same events"),
        Row(TITLE, "new item recommendable after", statistics.median(waits), "ms",
            higher_is_better=False, note=f"median of {len(waits)}; max {max(waits):.1f} ms"),
    ]  # fmt: skip


def run(ctx: Context) -> list[Row]:
    folder = _data()
    if folder is None:
        log("  ../shared/data/yoochoose-100k is not there: skipped")
        return []
    return [*_live_vs_offline(ctx, folder), *_scale(ctx, folder)]
