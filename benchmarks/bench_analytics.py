"""Analytics over many stored events: a 4-step funnel and daily trends with a
breakdown, as SQL in DuckDB, against the textbook way (fetch the events, loop in Python).

The events are a synthetic shop generated in SQL (deterministic hashes of the row
number, no randomness): journeys of a user (one of n/40) starting at a random second
of 28 days: one to three ``Product Viewed``, then ``Product Added`` (35 %),
``Checkout Started`` (60 % of those), ``Order Completed`` (70 % of those), each step
1 to 16 minutes after the previous; a category of 20 per journey (properties), a
country of 12 (context), a price. The bodies are empty placeholders: analytics never
read them. Each query runs three times; the table shows the median.

    python -m benchmarks --only analytics --write
"""

from __future__ import annotations

import statistics
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from benchmarks.common import Context, Row, log
from usertide.analytics.funnels import parse_funnel
from usertide.analytics.report import funnel_report
from usertide.analytics.trends import parse_trend, run_trend
from usertide.store import DuckDBStore

NAME = "analytics"
TITLE = "analytics"
START = datetime(2026, 1, 5, tzinfo=UTC)
DAYS = 28
STEPS = ["Product Viewed", "Product Added", "Checkout Started", "Order Completed"]
COUNTRIES = ["US", "DE", "FR", "GB", "JP", "BR", "IN", "CA", "ES", "IT", "NL", "SE"]

_GENERATE = """
INSERT INTO events
WITH j AS (SELECT range AS j, hash(range) AS h FROM range(?)),
k AS (SELECT j, h, k FROM j, range(6) r(k)),
r AS (SELECT *,
        (hash(h, 1) % 1000003) / 1000003.0 AS r1, (hash(h, 2) % 1000003) / 1000003.0 AS r2,
        (hash(h, 3) % 1000003) / 1000003.0 AS r3, (hash(h, 4) % 1000003) / 1000003.0 AS r4,
        (hash(h, 5) % 1000003) / 1000003.0 AS r5 FROM k),
kept AS (SELECT * FROM r WHERE k = 0 OR (k = 1 AND r1 < 0.6) OR (k = 2 AND r1 < 0.3)
         OR (k = 3 AND r3 < 0.35) OR (k = 4 AND r3 < 0.35 AND r4 < 0.6)
         OR (k = 5 AND r3 < 0.35 AND r4 < 0.6 AND r5 < 0.7)),
ev AS (SELECT j, k, h,
         ? + to_seconds(CAST(hash(h, 9) % (? * 86400) AS BIGINT))
           + to_seconds(CAST(k * 60 + hash(h, 10 + k) % 900 AS BIGINT)) AS ts,
         CASE WHEN k <= 2 THEN ? WHEN k = 3 THEN ? WHEN k = 4 THEN ? ELSE ? END AS name,
         'u' || (hash(h, 7) % ?) AS user_id,
         'c' || (hash(h, 8) % 20) AS category,
         list_extract(?, 1 + CAST(hash(h, 11) % 12 AS INTEGER)) AS country
       FROM kept)
SELECT row_number() OVER (ORDER BY ts, j, k) AS "offset", 'g' || j || '-' || k, 'track', name,
       user_id, NULL, NULL, '/p/' || category, country, ts, ts, ''::BLOB,
       '{"category":"' || category || '","price":' || (hash(h, 12) % 200) || '}', NULL,
       '{"geo":{"country":"' || country || '"}}'
FROM ev ORDER BY ts LIMIT ?
"""


def build(path: Path, events: int) -> DuckDBStore:
    store = DuckDBStore(path)
    store.migrate()
    store.select(
        _GENERATE,
        [int(events / 2.6) + 1000, START, DAYS, STEPS[0], STEPS[1], STEPS[2], STEPS[3],
         max(1, events // 40), COUNTRIES, events],
    )  # fmt: skip
    return store


def _funnel_body(breakdown: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "steps": [{"event": s} for s in STEPS],
        "window": "1d",
        "from": START.isoformat(),
        "to": (START + timedelta(days=DAYS + 1)).isoformat(),
    }
    if breakdown:
        body["breakdown"] = breakdown
    return body


def _trend_body(breakdown: str) -> dict[str, Any]:
    return {
        "events": [STEPS[0], STEPS[3]],
        "measure": "users",
        "interval": "day",
        "breakdown": breakdown,
        "breakdown_limit": 20,
        "from": START.isoformat(),
        "to": (START + timedelta(days=DAYS + 1)).isoformat(),
    }


def _timed(work: Callable[[], Any], runs: int = 3) -> tuple[float, Any]:
    times, result = [], None
    for _ in range(runs):
        t0 = time.perf_counter()
        result = work()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), result


def python_funnel(store: DuckDBStore) -> tuple[list[int], Counter[tuple[str, str]]]:
    """The textbook way: every event into Python, then loop per user (the same
    definition: earliest matches from each first step, within one day)."""
    rows = store.select(
        'SELECT user_id, epoch(ts), name, country FROM events ORDER BY user_id, ts, "offset"'
    )
    reached = [0] * len(STEPS)
    day_users: Counter[tuple[str, str]] = Counter()
    seen: set[tuple[str, str, str, str]] = set()
    i = 0
    while i < len(rows):
        user = rows[i][0]
        j = i
        while j < len(rows) and rows[j][0] == user:
            j += 1
        events = rows[i:j]
        best = 0
        for a, first in enumerate(events):
            if first[2] != STEPS[0]:
                continue
            depth, at = 1, a
            while depth < len(STEPS):
                nxt = next(
                    (x for x in range(at + 1, len(events)) if events[x][2] == STEPS[depth]), -1
                )
                if nxt < 0 or events[nxt][1] - first[1] > 86400:
                    break
                depth, at = depth + 1, nxt
            best = max(best, depth)
            if best == len(STEPS):
                break
        for k in range(best):
            reached[k] += 1
        for _, ts, name, country in events:  # the trend: users per day and country
            if name in (STEPS[0], STEPS[3]):
                day = datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d")
                key = (user, day, name, country)
                if key not in seen:
                    seen.add(key)
                    day_users[(day, country)] += 1
        i = j
    return reached, day_users


def run(ctx: Context) -> list[Row]:
    sizes = (100_000, 1_000_000) if ctx.quick else (1_000_000, 10_000_000)
    return [row for size in sizes for row in _measure(ctx, size, size == sizes[0])]


def _measure(ctx: Context, size: int, with_baseline: bool) -> list[Row]:
    t0 = time.perf_counter()
    store = build(ctx.tmp / f"analytics-{size}.duckdb", size)
    stored = store.count_events()
    built = time.perf_counter() - t0
    dialect = store.dialect
    funnel_s, report = _timed(lambda: funnel_report(store, parse_funnel(_funnel_body(), dialect)))
    by_s, _ = _timed(
        lambda: funnel_report(store, parse_funnel(_funnel_body("properties.category"), dialect))
    )
    trend_s, trend = _timed(
        lambda: run_trend(store, parse_trend(_trend_body("context.country"), dialect))
    )
    jtrend_s, _ = _timed(
        lambda: run_trend(store, parse_trend(_trend_body("properties.category"), dialect))
    )
    users = [s["users"] for s in report["steps"]]
    label = f"{stored / 1e6:g}M events"
    note = f"{stored:,} events generated in SQL in {built:.1f} s; steps {users}"
    baseline_f = baseline_t = None
    if with_baseline:
        t0 = time.perf_counter()
        reached, day_users = python_funnel(store)
        python_s = time.perf_counter() - t0
        if reached != users:
            raise RuntimeError(f"funnel {users} differs from plain Python {reached}")
        # the loop counts users per day and country, each event apart: add ours up alike
        ours_total: Counter[tuple[str, str]] = Counter()
        for s in trend["series"]:
            for p in s["points"]:
                if p[1]:
                    ours_total[(p[0][:10], s["breakdown"])] += p[1]
        if ours_total != day_users:
            raise RuntimeError("the daily trend differs from plain Python")
        baseline_f = baseline_t = python_s
        note += (
            f"; baseline: one pass of plain Python over every event fetched from DuckDB "
            f"computes the same funnel and trend in {python_s:.1f} s (results equal)"
        )
    log(f"  · {label}: funnel {funnel_s:.2f} s, by category {by_s:.2f} s, trend {trend_s:.2f} s")
    rows = [
        Row(TITLE, f"4-step funnel, {label}", funnel_s, "s", baseline=baseline_f,
            higher_is_better=False, note=note),
        Row(TITLE, f"4-step funnel by properties.category, {label}", by_s, "s",
            higher_is_better=False),
        Row(TITLE, f"daily trend, users by context.country, {label}", trend_s, "s",
            baseline=baseline_t, higher_is_better=False),
        Row(TITLE, f"daily trend, users by properties.category, {label}", jtrend_s, "s",
            higher_is_better=False),
    ]  # fmt: skip
    store.close()
    (ctx.tmp / f"analytics-{size}.duckdb").unlink()
    return rows
