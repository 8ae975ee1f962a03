"""Funnels and trends on real data: Taobao's UserBehavior sample, imported with
``usertide import``, checked against plain Python over the CSV itself."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from analyticsref import Row
from usertide.analytics.funnels import parse_funnel, step_counts
from usertide.analytics.trends import parse_trend, run_trend
from usertide.store import DuckDBStore

DATA = Path(os.environ.get("USERTIDE_SHARED_DATA", "/work/shared/data"))
FILE = DATA / "taobao-userbehavior" / "UserBehavior.csv"
FROM, TO = "2017-11-25T00:00:00Z", "2017-12-04T00:00:00Z"

pytestmark = pytest.mark.skipif(not FILE.exists(), reason="the shared Taobao sample is not here")


@pytest.fixture(scope="module")
def imported(tmp_path_factory: pytest.TempPathFactory) -> tuple[DuckDBStore, list[Row]]:
    data_dir = tmp_path_factory.mktemp("taobao")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "usertide.cli",
            "import",
            str(FILE),
            "--format",
            "csv",
            "--columns",
            "user_id,item_id,category,event,timestamp",
            "--data-dir",
            str(data_dir),
        ],
        check=True,
        capture_output=True,
    )
    rows = []
    with FILE.open() as f:
        for i, (user, item, category, behavior, ts) in enumerate(csv.reader(f)):
            when = datetime.fromtimestamp(int(ts), UTC)
            rows.append(Row(user, when, i, behavior, {"category": category, "item_id": item}))
    store = DuckDBStore(data_dir / "usertide.duckdb")
    store.migrate()
    return store, rows


def _by_person(rows: list[Row], start: datetime, end: datetime) -> dict[str, list[Row]]:
    """Each person's events inside the range, in time order (same second: file order)."""
    by: dict[str, list[Row]] = {}
    for r in sorted((r for r in rows if start <= r.ts < end), key=lambda r: (r.ts, r.offset)):
        by.setdefault(r.person, []).append(r)
    return by


def _start_end() -> tuple[datetime, datetime]:
    return (
        datetime.fromisoformat(FROM.replace("Z", "+00:00")),
        datetime.fromisoformat(TO.replace("Z", "+00:00")),
    )


@pytest.mark.parametrize("order", ["sequential", "strict"])
@pytest.mark.parametrize("window", ["1h", "1d", "3d"])
def test_pv_cart_buy_matches_plain_python(
    imported: tuple[DuckDBStore, list[Row]], order: str, window: str
) -> None:
    store, rows = imported
    body: dict[str, Any] = {
        "steps": [{"event": "pv"}, {"event": "cart"}, {"event": "buy"}],
        "window": window,
        "order": order,
        "from": FROM,
        "to": TO,
    }
    q = parse_funnel(body, store.dialect)
    start, end = _start_end()
    # Same-second events keep the file's order in both (the import keeps it as arrival).
    ref = _fast_reference(rows, q.window.total_seconds(), start, end, order == "strict")
    assert [s["users"] for s in step_counts(store, q)["$all"]] == ref


def _fast_reference(
    rows: list[Row], window: float, start: datetime, end: datetime, strict: bool
) -> list[int]:
    """Plain Python per person: from every pv, the earliest cart after it, then the
    earliest buy after that (the brute force of tests/analytics/test_funnels.py shows
    that following earliest matches finds every conversion; here it would be
    exponential on people with dozens of events)."""
    if strict:
        return _strict(rows, window, start, end)
    by = _by_person(rows, start, end)
    names = ["pv", "cart", "buy"]
    reached: Counter[int] = Counter()
    for events in by.values():
        best = 0
        for i, first in enumerate(events):
            if first.name != "pv":
                continue
            depth, j = 1, i
            while depth < 3:
                j = next(
                    (x for x in range(j + 1, len(events)) if events[x].name == names[depth]), -1
                )
                if j < 0 or (events[j].ts - first.ts).total_seconds() > window:
                    break
                depth += 1
            best = max(best, depth)
        for k in range(1, best + 1):
            reached[k] += 1
    return [reached[1], reached[2], reached[3]]


def _strict(rows: list[Row], window: float, start: datetime, end: datetime) -> list[int]:
    by = _by_person(rows, start, end)
    names = ["pv", "cart", "buy"]
    reached: Counter[int] = Counter()
    for events in by.values():
        best = 0
        for i in range(len(events)):
            depth = 0
            while (
                i + depth < len(events)
                and depth < 3
                and events[i + depth].name == names[depth]
                and (events[i + depth].ts - events[i].ts).total_seconds() <= window
            ):
                depth += 1
            best = max(best, depth)
        for k in range(1, best + 1):
            reached[k] += 1
    return [reached[1], reached[2], reached[3]]


def test_daily_trend_by_category_matches_plain_python(
    imported: tuple[DuckDBStore, list[Row]],
) -> None:
    store, rows = imported
    q = parse_trend(
        {"events": ["pv", "buy"], "measure": "users", "interval": "day", "from": FROM, "to": TO},
        store.dialect,
    )
    out = run_trend(store, q)
    start, end = _start_end()
    for series in out["series"]:
        users: dict[str, set[str]] = {}
        for r in rows:
            if start <= r.ts < end and r.name == series["event"]:
                users.setdefault(r.ts.strftime("%Y-%m-%dT00:00:00Z"), set()).add(r.person)
        assert {t: v for t, v in series["points"] if v} == {t: len(u) for t, u in users.items()}
        assert series["total"] == len(
            {r.person for r in rows if start <= r.ts < end and r.name == series["event"]}
        )


def test_breakdown_by_category_of_the_first_step(imported: tuple[DuckDBStore, list[Row]]) -> None:
    """People grouped by the category of the pv that starts their conversion: the
    earliest pv leading deepest (plain Python, as above, remembering that pv)."""
    store, rows = imported
    body: dict[str, Any] = {
        "steps": [{"event": "pv"}, {"event": "cart"}],
        "window": "1d",
        "from": FROM,
        "to": TO,
        "breakdown": "properties.category",
        "breakdown_limit": 50,
    }
    q = parse_funnel(body, store.dialect)
    start, end = _start_end()
    by = _by_person(rows, start, end)
    groups: dict[str, Counter[int]] = {}
    for events in by.values():
        best: tuple[int, Row] | None = None
        for i, first in enumerate(events):
            if first.name != "pv":
                continue
            cart = next((e for e in events[i + 1 :] if e.name == "cart"), None)
            depth = 2 if cart and (cart.ts - first.ts).total_seconds() <= 86400 else 1
            if best is None or depth > best[0]:
                best = (depth, first)
        if best is not None:
            counter = groups.setdefault(best[1].properties["category"], Counter())
            for k in range(1, best[0] + 1):
                counter[k] += 1
    counts = step_counts(store, q)
    top = sorted(groups, key=lambda c: (-groups[c][1], c))[:50]
    for category in top:
        assert [s["users"] for s in counts[category]] == [groups[category][1], groups[category][2]]
