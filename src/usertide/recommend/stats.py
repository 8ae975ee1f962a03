"""Online click-through per recommender, from the impression and click events.

The snippet (or any client) sends ``Recommendation Shown`` with the answer's
``rec_id``, ``recommender`` and ``item_ids``, and ``Recommendation Clicked`` with the
``rec_id``, ``recommender`` and the ``item_id`` clicked. An impression is one shown
answer; its click-through is the share of impressions with at least one click of the
same ``rec_id`` (a click without a recorded impression still counts as a click). The
counts are SQL over the stored events, in the store's dialect, so they run in DuckDB
embedded and in PostgreSQL in scale-out.
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any, Final

import msgspec

from usertide.processors.items import REC_CLICKED, REC_SHOWN
from usertide.store.base import Store

BUCKETS: Final = ("hour", "day")


class RecommenderStats(msgspec.Struct, kw_only=True):
    recommender: str
    impressions: int
    clicks: int  # click events
    clicked_impressions: int  # impressions with a click of their rec_id
    ctr: float | None  # clicked_impressions / impressions
    ctr_low: float | None  # Wilson 95 % interval of the rate
    ctr_high: float | None


class StatsPoint(msgspec.Struct, kw_only=True):
    time: datetime
    recommender: str
    impressions: int
    clicks: int
    ctr: float | None


class Stats(msgspec.Struct, kw_only=True):
    since: datetime
    until: datetime
    bucket: str
    recommenders: list[RecommenderStats]
    series: list[StatsPoint]


def wilson(successes: int, trials: int, z: float = 1.96) -> tuple[float, float] | None:
    """The Wilson score interval of a rate (sound for small counts and rates near 0)."""
    if trials <= 0:
        return None
    p = successes / trials
    denominator = 1 + z * z / trials
    centre = (p + z * z / (2 * trials)) / denominator
    half = z * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials)) / denominator
    return max(0.0, centre - half), min(1.0, centre + half)


def click_through(store: Store, since: datetime, until: datetime, bucket: str = "hour") -> Stats:
    if bucket not in BUCKETS:
        raise ValueError(f"bucket must be one of {', '.join(BUCKETS)}")
    d = store.dialect
    rec_id, p1 = d.json_text("properties", '$."rec_id"')
    recommender, p2 = d.json_text("properties", '$."recommender"')
    when = d.utc_bucket(bucket, "first_ts")
    # One row per answer (rec_id): its recommender, when it was shown, whether clicked.
    sql = f"""
        WITH rec AS (
            SELECT name, ts, {rec_id} AS rec_id, {recommender} AS recommender
            FROM events
            WHERE type = 'track' AND name IN (?, ?) AND ts >= ? AND ts < ?
        ),
        answers AS (
            SELECT rec_id,
                   coalesce(min(CASE WHEN name = ? THEN recommender END),
                            min(recommender)) AS recommender,
                   coalesce(min(CASE WHEN name = ? THEN ts END), min(ts)) AS first_ts,
                   sum(CASE WHEN name = ? THEN 1 ELSE 0 END) AS shown,
                   sum(CASE WHEN name = ? THEN 1 ELSE 0 END) AS clicks
            FROM rec WHERE rec_id IS NOT NULL GROUP BY rec_id
        )
        SELECT {when} AS bucket, coalesce(recommender, '?'),
               sum(CASE WHEN shown > 0 THEN 1 ELSE 0 END),
               sum(clicks),
               sum(CASE WHEN shown > 0 AND clicks > 0 THEN 1 ELSE 0 END)
        FROM answers GROUP BY 1, 2 ORDER BY 1, 2
    """
    params: list[Any] = [
        *p1, *p2, REC_SHOWN, REC_CLICKED, since, until,
        REC_SHOWN, REC_SHOWN, REC_SHOWN, REC_CLICKED,
    ]  # fmt: skip
    rows = store.select(sql, params)
    totals: dict[str, list[int]] = {}
    series = []
    for at, name, shown, clicks, clicked in rows:
        shown, clicks, clicked = int(shown or 0), int(clicks or 0), int(clicked or 0)
        series.append(
            StatsPoint(
                time=at, recommender=name, impressions=shown, clicks=clicks,
                ctr=clicked / shown if shown else None,
            )
        )  # fmt: skip
        total = totals.setdefault(name, [0, 0, 0])
        total[0] += shown
        total[1] += clicks
        total[2] += clicked
    recommenders = []
    for name, (shown, clicks, clicked) in sorted(totals.items()):
        interval = wilson(clicked, shown)
        recommenders.append(
            RecommenderStats(
                recommender=name, impressions=shown, clicks=clicks, clicked_impressions=clicked,
                ctr=clicked / shown if shown else None,
                ctr_low=interval[0] if interval else None,
                ctr_high=interval[1] if interval else None,
            )
        )  # fmt: skip
    return Stats(since=since, until=until, bucket=bucket, recommenders=recommenders, series=series)
