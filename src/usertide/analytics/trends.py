"""Trends: how often events happen, per minute, hour, day or week, as SQL in the store.

A series per event (and per breakdown value, the top N by the measure plus
``"$other"``; events without the field are ``null``). Points cover every bucket of
``[from, to)`` in UTC, zero where nothing happened (``null`` for an average). The
``total`` is the measure over the whole range: for unique users, users counted once
however many buckets they appear in.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, cast

from usertide.analytics.common import EVENTS, PERSON, bounded_int, iso, time_range
from usertide.analytics.errors import AnalyticsError
from usertide.analytics.fields import Field, numeric, parse_field
from usertide.analytics.filters import where_sql
from usertide.analytics.sql import Dialect
from usertide.store import Store

Interval = Literal["minute", "hour", "day", "week"]
STEPS = {"minute": timedelta(minutes=1), "hour": timedelta(hours=1), "day": timedelta(days=1),
         "week": timedelta(weeks=1)}  # fmt: skip
MAX_POINTS = 5000
MAX_EVENTS = 20
OTHER = "$other"


@dataclass(frozen=True)
class TrendQuery:
    events: tuple[str, ...]
    measure: str  # count | users | sum | avg
    value: Field | None  # the property summed or averaged
    interval: Interval
    start: datetime
    end: datetime
    breakdown: Field | None
    breakdown_limit: int
    compare: bool
    where: tuple[str, tuple[Any, ...]]


def parse_trend(body: object, dialect: Dialect) -> TrendQuery:
    if not isinstance(body, dict):
        raise AnalyticsError("body", "the body must be a JSON object")
    events = body.get("events")
    if (
        not isinstance(events, list)
        or not 1 <= len(events) <= MAX_EVENTS
        or not all(isinstance(e, str) and e for e in events)
    ):
        raise AnalyticsError("events", f"'events' must list 1 to {MAX_EVENTS} event names")
    measure, value = _measure(body.get("measure", "count"), dialect)
    asked = body.get("interval", "day")
    if not isinstance(asked, str) or asked not in STEPS:  # any JSON value may come
        raise AnalyticsError("interval", "'interval' must be minute, hour, day or week")
    start, end = time_range(body)
    interval = cast(Interval, asked)
    if (end - start) / STEPS[interval] > MAX_POINTS:
        raise AnalyticsError("interval", f"more than {MAX_POINTS} points: use a longer interval")
    breakdown = body.get("breakdown")
    compare = body.get("compare")
    if compare not in (None, "previous_period"):
        raise AnalyticsError("compare", "'compare' must be previous_period when given")
    sql, params = where_sql(body.get("where"), "where", dialect)
    return TrendQuery(
        events=tuple(dict.fromkeys(events)),
        measure=measure,
        value=value,
        interval=interval,
        start=start,
        end=end,
        breakdown=parse_field(breakdown, "breakdown", dialect) if breakdown is not None else None,
        breakdown_limit=bounded_int(body, "breakdown_limit", 10, 1, 100),
        compare=compare is not None,
        where=(sql, tuple(params)),
    )


def _measure(measure: object, dialect: Dialect) -> tuple[str, Field | None]:
    if measure in ("count", "users"):
        return str(measure), None
    if isinstance(measure, dict) and len(measure) == 1:
        ((kind, path),) = measure.items()
        if kind in ("sum", "avg"):
            return kind, numeric(parse_field(path, f"measure.{kind}", dialect), dialect)
    raise AnalyticsError(
        "measure", '\'measure\' must be count, users, {"sum": field} or {"avg": field}'
    )


_AGGREGATES = {"count": "count(*)", "users": "count(DISTINCT person)", "sum": "sum(v)",
               "avg": "avg(v)"}  # fmt: skip


def run_trend(store: Store, query: TrendQuery) -> dict[str, Any]:
    out: dict[str, Any] = {"series": _series(store, query, query.start, query.end)}
    if query.compare:
        span = query.end - query.start
        previous = _series(store, query, query.start - span, query.start)
        out["previous"] = [{**s, "shift_s": span.total_seconds()} for s in previous]
    return out


def _series(store: Store, q: TrendQuery, start: datetime, end: datetime) -> list[dict[str, Any]]:
    dialect = store.dialect
    value_sql, value_params = (q.value.sql, q.value.params) if q.value else ("NULL", ())
    where, where_params = q.where
    filters = f"e.ts >= ? AND e.ts < ? AND {dialect.in_list('e.name')} AND ({where})"
    filter_params = [start, end, list(q.events), *where_params]
    b_sql, b_params = (q.breakdown.sql, q.breakdown.params) if q.breakdown else ("NULL", ())
    aggregate = _AGGREGATES[q.measure]
    top: list[Any] = []
    if q.breakdown is not None:
        rows = store.select(
            f"SELECT b, {aggregate} AS m FROM (SELECT {b_sql} AS b, {PERSON} AS person, "
            f"{value_sql} AS v FROM {EVENTS} WHERE {filters}) t WHERE b IS NOT NULL "
            f"GROUP BY b ORDER BY m DESC NULLS LAST, b LIMIT ?",
            [*b_params, *value_params, *filter_params, q.breakdown_limit],
        )
        top = [r[0] for r in rows]
        b_sql = (
            f"CASE WHEN ({b_sql}) IS NULL THEN NULL WHEN {dialect.in_list(f'({b_sql})')} "
            f"THEN ({b_sql}) ELSE '{OTHER}' END"
        )
        b_params = (*b_params, top, *b_params, *b_params)
    bucket = dialect.utc_bucket(q.interval, "e.ts")
    rows = store.select(
        f"SELECT name, b, bucket, {aggregate}, GROUPING(bucket) FROM (SELECT e.name AS name, "
        f"{b_sql} AS b, {bucket} AS bucket, {PERSON} AS person, {value_sql} AS v "
        f"FROM {EVENTS} WHERE {filters}) t "
        "GROUP BY GROUPING SETS ((name, b, bucket), (name, b))",
        [*b_params, *value_params, *filter_params],
    )
    buckets = _buckets(q.interval, start, end)
    empty = None if q.measure == "avg" else 0
    found: dict[tuple[str, Any], dict[str, Any]] = {}
    for name, b, when, value, is_total in rows:
        series = found.setdefault(
            (name, b), {"event": name, "breakdown": b, "points": {}, "total": empty}
        )
        if is_total:
            series["total"] = _number(value)
        else:
            series["points"][_utc(when)] = _number(value)
    order = {name: i for i, name in enumerate(q.events)}
    rank = {value: i for i, value in enumerate(top)}
    out = []
    for key in sorted(found, key=lambda k: (order[k[0]], _rank(k[1], rank))):
        series = found[key]
        points = series["points"]
        series["points"] = [[iso(t), points.get(t, empty)] for t in buckets]
        out.append(series)
    if q.breakdown is None:  # every event has its series, zero when it never happened
        for name in q.events:
            if (name, None) not in found:
                out.insert(order[name], {"event": name, "breakdown": None, "total": empty,
                                         "points": [[iso(t), empty] for t in buckets]})  # fmt: skip
    return out


def _rank(value: Any, rank: dict[Any, int]) -> int:
    if value is None:
        return len(rank) + 2
    return rank.get(value, len(rank) + 1)  # "$other" after the top values


def _number(value: Any) -> float | int | None:
    if value is None:
        return None
    if isinstance(value, int):
        return value
    number = float(value)
    return int(number) if number.is_integer() and abs(number) < 2**53 else number


def _utc(when: datetime) -> datetime:
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)


def _buckets(interval: Interval, start: datetime, end: datetime) -> list[datetime]:
    first = start.replace(second=0, microsecond=0)
    if interval != "minute":
        first = first.replace(minute=0)
    if interval in ("day", "week"):
        first = first.replace(hour=0)
    if interval == "week":
        first -= timedelta(days=first.weekday())
    step = STEPS[interval]
    out = []
    t = first
    while t < end:
        out.append(t)
        t += step
    return out
