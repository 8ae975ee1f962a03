"""Funnels: how many people go through ordered steps, counted per person, in SQL.

Definitions (docs/analytics.md states them for users):

- A person reaches step k when they have events e1 … ek, in time order, matching
  steps 1 … k, all inside ``[from, to)``, with ek − e1 ≤ ``window``. Events with the
  same timestamp are in arrival order (log offset).
- ``sequential`` allows other events between steps; ``strict`` allows none: each step
  is the person's very next event (of any kind) after the previous step.
- A person counts once, at the deepest step any of their first-step events leads to.
  Their *conversion* is the chain from the earliest first-step event that leads that
  deep; times to convert and the breakdown come from it. Following each step's
  earliest match is optimal for a given start (a later match can only leave less of
  the window), so the SQL follows earliest matches with an as-of join.
- A breakdown groups people by the field's value on the first-step event of their
  conversion (PostHog's default); the top N values by people entering, the rest as
  ``"$other"``, no value as ``null``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from usertide.analytics.common import EVENTS, PERSON, bounded_int, duration, time_range
from usertide.analytics.errors import AnalyticsError
from usertide.analytics.fields import Field, parse_field
from usertide.analytics.filters import where_sql
from usertide.analytics.sql import Dialect
from usertide.store import Store

MAX_STEPS = 20
MAX_WINDOW = timedelta(days=365)
OTHER = "$other"
Order = Literal["sequential", "strict"]


@dataclass(frozen=True)
class Step:
    event: str
    condition: tuple[str, tuple[Any, ...]]  # SQL over ``e`` and its parameters


@dataclass(frozen=True)
class FunnelQuery:
    steps: tuple[Step, ...]
    window: timedelta
    order: Order
    start: datetime
    end: datetime
    breakdown: Field | None
    breakdown_limit: int
    prior: tuple[float, float]


def parse_funnel(body: object, dialect: Dialect) -> FunnelQuery:
    if not isinstance(body, dict):
        raise AnalyticsError("body", "the body must be a JSON object")
    raw_steps = body.get("steps")
    if not isinstance(raw_steps, list) or not 2 <= len(raw_steps) <= MAX_STEPS:
        raise AnalyticsError("steps", f"'steps' must list 2 to {MAX_STEPS} steps")
    steps = tuple(_step(s, i, dialect) for i, s in enumerate(raw_steps))
    order = body.get("order", "sequential")
    if order not in ("sequential", "strict"):
        raise AnalyticsError("order", "'order' must be sequential or strict")
    start, end = time_range(body)
    breakdown = body.get("breakdown")
    return FunnelQuery(
        steps=steps,
        window=duration(body.get("window", "14d"), "window", maximum=MAX_WINDOW),
        order=order,
        start=start,
        end=end,
        breakdown=parse_field(breakdown, "breakdown", dialect) if breakdown is not None else None,
        breakdown_limit=bounded_int(body, "breakdown_limit", 10, 1, 50),
        prior=_prior(body.get("prior", [1, 1])),
    )


def _step(raw: object, i: int, dialect: Dialect) -> Step:
    name = f"steps[{i}]"
    if not isinstance(raw, dict) or not isinstance(raw.get("event"), str) or not raw["event"]:
        raise AnalyticsError(name, f"'{name}' must be an object with an 'event' name")
    unknown = set(raw) - {"event", "where", "page"}
    if unknown:
        raise AnalyticsError(name, f"'{name}' has unknown fields: {', '.join(sorted(unknown))}")
    sql, params = where_sql(raw.get("where"), f"{name}.where", dialect)
    clauses, values = ["e.name = ?", f"({sql})"], [raw["event"], *params]
    page = raw.get("page")
    if page is not None:
        if not isinstance(page, str) or not page:
            raise AnalyticsError(f"{name}.page", f"'{name}.page' must be a page path")
        clauses.append("e.page_path = ?")
        values.append(page)
    return Step(event=raw["event"], condition=(" AND ".join(clauses), tuple(values)))


def _prior(raw: object) -> tuple[float, float]:
    if (
        isinstance(raw, list)
        and len(raw) == 2
        and all(isinstance(x, int | float) and not isinstance(x, bool) and x > 0 for x in raw)
    ):
        return float(raw[0]), float(raw[1])
    raise AnalyticsError("prior", "'prior' must be [alpha, beta] with both above 0")


@dataclass(frozen=True)
class Chains:
    """The SQL of everyone's conversion: a CTE list ending in ``best``, with columns
    person, g (breakdown group), depth, t1 … tn."""

    sql: str
    params: list[Any]


def conversions(q: FunnelQuery, dialect: Dialect) -> Chains:
    n = len(q.steps)
    params: list[Any] = []
    b_sql, b_params = (q.breakdown.sql, list(q.breakdown.params)) if q.breakdown else ("NULL", [])
    matches = []
    for k, step in enumerate(q.steps, 1):
        matches.append(f"coalesce({step.condition[0]}, FALSE) AS m{k}")
        params += step.condition[1]
    base_params = [*b_params, *params, q.start, q.end]
    prefilter = ""
    if q.order == "sequential":  # only the steps' events matter; strict needs them all
        prefilter = " AND (" + " OR ".join(f"({s.condition[0]})" for s in q.steps) + ")"
        base_params += [x for s in q.steps for x in s.condition[1]]
    window = q.window.total_seconds()
    ctes = [
        f'base AS (SELECT {PERSON} AS person, e.ts AS ts, e."offset" AS o, {b_sql} AS b, '
        f"{', '.join(matches)} FROM {EVENTS} WHERE e.ts >= ? AND e.ts < ?{prefilter})",
        "seq AS (SELECT *, row_number() OVER (PARTITION BY person ORDER BY ts, o) AS pos "
        "FROM base)",
        "c1 AS (SELECT person, pos AS p1, pos AS pk, b, ts AS t1 FROM seq WHERE m1)",
    ]
    chain_params: list[Any] = []
    for k in range(2, n + 1):
        carried = ", ".join(f"c.t{j}" for j in range(1, k))
        within = f"{dialect.seconds_between('c.t1', 's.ts')} <= ?"
        if q.order == "sequential":
            ctes.append(f"s{k} AS (SELECT person, pos, ts FROM seq WHERE m{k})")
            join = dialect.next_after("c", f"s{k} s", "person", "pos")
            ctes.append(
                f"c{k} AS (SELECT c.person, c.p1, s.pos AS pk, c.b, {carried}, s.ts AS t{k} "
                f"FROM c{k - 1} c {join} WHERE {within})"
            )
        else:
            ctes.append(
                f"c{k} AS (SELECT c.person, c.p1, s.pos AS pk, c.b, {carried}, s.ts AS t{k} "
                f"FROM c{k - 1} c JOIN seq s ON s.person = c.person AND s.pos = c.pk + 1 "
                f"AND s.m{k} WHERE {within})"
            )
        chain_params.append(window)
    unions = []
    for k in range(1, n + 1):
        times = ", ".join(
            f"t{j}" if j <= k else f"CAST(NULL AS TIMESTAMPTZ) AS t{j}" for j in range(1, n + 1)
        )
        unions.append(f"SELECT person, p1, b, {k} AS depth, {times} FROM c{k}")
    ctes.append("chains AS (" + " UNION ALL ".join(unions) + ")")
    ctes.append(
        "ranked AS (SELECT *, row_number() OVER (PARTITION BY person ORDER BY depth DESC, p1) "
        "AS r FROM chains)"
    )
    group_params: list[Any] = []
    if q.breakdown is not None:
        ctes.append(
            "top AS (SELECT b FROM ranked WHERE r = 1 AND b IS NOT NULL GROUP BY b "
            "ORDER BY count(*) DESC, b LIMIT ?)"
        )
        group_params.append(q.breakdown_limit)
        group = (
            f"CASE WHEN b IS NULL THEN NULL WHEN b IN (SELECT b FROM top) THEN b ELSE '{OTHER}' END"
        )
    else:
        group = "NULL"
    ctes.append(f"best AS (SELECT *, {group} AS g FROM ranked WHERE r = 1)")
    return Chains("WITH " + ",\n".join(ctes), [*base_params, *chain_params, *group_params])


def step_counts(store: Store, q: FunnelQuery) -> dict[Any, list[dict[str, Any]]]:
    """Per breakdown group (``None``: people without a value) and for everyone
    (``"$all"``): per step, people and times to convert."""
    dialect = store.dialect
    chains = conversions(q, dialect)
    n = len(q.steps)
    columns = []
    for k in range(1, n + 1):
        columns.append(f"count(t{k})")
        if k > 1:
            prev = dialect.seconds_between(f"t{k - 1}", f"t{k}")
            first = dialect.seconds_between("t1", f"t{k}")
            columns += [dialect.quantile(prev, 0.5), dialect.quantile(prev, 0.9),
                        dialect.quantile(first, 0.5)]  # fmt: skip
    sets = "GROUPING SETS ((g), ())" if q.breakdown is not None else "()"
    rows = store.select(
        f"{chains.sql}\nSELECT g, GROUPING(g), {', '.join(columns)} FROM best GROUP BY {sets}"
        if q.breakdown is not None
        else f"{chains.sql}\nSELECT NULL, 1, {', '.join(columns)} FROM best",
        chains.params,
    )
    out: dict[Any, list[dict[str, Any]]] = {}
    for row in rows:
        key = "$all" if row[1] else row[0]
        values = list(row[2:])
        steps = []
        for k in range(1, n + 1):
            entry: dict[str, Any] = {"users": int(values.pop(0))}
            if k > 1:
                median, p90, from_first = values.pop(0), values.pop(0), values.pop(0)
                entry["time_to_convert"] = (
                    None
                    if median is None
                    else {
                        "median_s": float(median),
                        "p90_s": float(p90),
                        "median_from_first_s": float(from_first),
                    }
                )
            steps.append(entry)
        out[key] = steps
    return out


def people(
    store: Store, q: FunnelQuery, step: int, status: str, limit: int, after: str | None
) -> list[str]:
    """The people who dropped at (did not reach, having reached the one before) or
    converted to (reached) step ``step`` (1-based), ordered, after the cursor."""
    chains = conversions(q, store.dialect)
    condition = "depth = ?" if status == "dropped" else "depth >= ?"
    depth = step - 1 if status == "dropped" else step
    rows = store.select(
        f"{chains.sql}\nSELECT person FROM best WHERE {condition} AND person > ? "
        "ORDER BY person LIMIT ?",
        [*chains.params, depth, after or "", limit],
    )
    return [str(r[0]) for r in rows]
