"""Trends in the store's SQL against plain Python over the same events."""

from __future__ import annotations

import random
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from factories import T0, event
from usertide.analytics.errors import AnalyticsError
from usertide.analytics.trends import parse_trend, run_trend
from usertide.store import Store

FROM, TO = T0 - timedelta(days=3), T0 + timedelta(days=4)


def _events(seed: int) -> list[Any]:
    rng = random.Random(seed)
    return [
        event(
            name=rng.choice(["pv", "buy", "other"]),
            user_id=f"u{rng.randrange(25)}",
            at=rng.uniform(-4 * 86400, 5 * 86400),
            properties={
                "country": rng.choice(["US", "DE", "FR", "JP"]),
                "revenue": rng.choice([5, 10.5, 20, "n/a"]),
            },
        )
        for _ in range(400)
    ]


def _trend(store: Store, **body: Any) -> Any:
    q = parse_trend({"from": FROM.isoformat(), "to": TO.isoformat(), **body}, store.dialect)
    return run_trend(store, q)


def _day(ts: datetime) -> str:
    return ts.astimezone(UTC).strftime("%Y-%m-%dT00:00:00Z")


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("measure", ["count", "users", "sum", "avg"])
def test_daily_series_with_breakdown_match_plain_python(
    store: Store, seed: int, measure: str
) -> None:
    events = _events(seed)
    store.append_events(events)
    inside = [e for e in events if FROM <= e.timestamp < TO and e.name == "pv"]
    spec: Any = {"sum": "properties.revenue"} if measure == "sum" else measure
    spec = {"avg": "properties.revenue"} if measure == "avg" else spec
    out = _trend(
        store,
        events=["pv"],
        measure=spec,
        interval="day",
        breakdown="properties.country",
        breakdown_limit=2,
    )
    by_country: dict[str, list[Any]] = defaultdict(list)
    for e in inside:
        by_country[e.properties["country"]].append(e)

    def measure_of(group: list[Any]) -> Any:
        numbers = [
            e.properties["revenue"] for e in group if not isinstance(e.properties["revenue"], str)
        ]
        if measure == "count":
            return len(group)
        if measure == "users":
            return len({e.user_id for e in group})
        if measure == "sum":
            return sum(numbers) if numbers else None
        return sum(numbers) / len(numbers) if numbers else None

    ranked = sorted(by_country, key=lambda c: (-(measure_of(by_country[c]) or 0), c))
    top = ranked[:2]
    groups: dict[str, list[Any]] = {c: by_country[c] for c in top}
    groups["$other"] = [e for c in ranked[2:] for e in by_country[c]]
    assert [s["breakdown"] for s in out["series"]] == [*top, "$other"]
    for series in out["series"]:
        group = groups[series["breakdown"]]
        assert series["total"] == pytest.approx(measure_of(group))
        days: dict[str, list[Any]] = defaultdict(list)
        for e in group:
            days[_day(e.timestamp)].append(e)
        for when, value in series["points"]:
            expected = measure_of(days[when]) if days.get(when) else None
            if expected is None and measure in ("count", "users", "sum"):
                expected = 0 if measure != "sum" or not days.get(when) else None
            assert value == pytest.approx(expected), when


def test_points_cover_every_bucket_and_compare_the_previous_period(store: Store) -> None:
    store.append_events([event(name="pv", at=h * 3600) for h in range(-80, 80)])
    out = _trend(store, events=["pv", "never"], interval="hour", compare="previous_period")
    pv, never = out["series"]
    assert len(pv["points"]) == 7 * 24 and pv["total"] == 80 + 72
    assert never["total"] == 0 and all(v == 0 for _, v in never["points"])
    previous = out["previous"][0]
    assert previous["total"] == 8 and previous["shift_s"] == 7 * 86400
    counted = Counter(v for _, v in pv["points"])
    assert counted[1] == 152 and counted[0] == 168 - 152


def test_weeks_start_on_monday_in_utc(store: Store) -> None:
    store.append_events([event(name="pv", at=0)])  # T0 is a Sunday
    out = _trend(store, events=["pv"], interval="week")
    assert [p for p in out["series"][0]["points"] if p[1]] == [["2026-10-26T00:00:00Z", 1]]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"events": []}, "events"),
        ({"events": ["pv"], "interval": "year"}, "interval"),
        ({"events": ["pv"], "interval": []}, "interval"),  # found by the schema fuzzer
        ({"events": ["pv"], "measure": {"median": "properties.x"}}, "measure"),
        ({"events": ["pv"], "interval": "minute", "to": "2030-01-01T00:00:00Z"}, "interval"),
        ({"events": ["pv"], "where": {"properties.x": {">": "ten"}}}, "where.properties.x"),
        ({"events": ["pv"], "compare": "last_year"}, "compare"),
        ({"events": ["pv"], "from": "yesterday"}, "from"),
    ],
)
def test_invalid_trends_name_the_field(store: Store, body: dict[str, Any], field: str) -> None:
    with pytest.raises(AnalyticsError) as info:
        _trend(store, **body)
    assert info.value.field == field
