"""Isolation-forest scoring: ``CompiledForest`` against scikit-learn's ``score_samples``.

The model is ``IsolationForest(n_estimators=100, max_samples=256)`` fitted on 20,000
synthetic sessions of 16 behaviour features (counts, durations, gaps, flags). Single
session: the median of many timed ``score_one`` calls (the engine's hot path) against
the median of scikit-learn's ``score_samples`` on one row. Batch: 10,000 rows, median
of three runs. Every score is checked against scikit-learn's before timing.

    python -m benchmarks --only forest --write
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

import numpy as np
from sklearn.ensemble import IsolationForest  # type: ignore[import-untyped]

from benchmarks.common import Context, Row, log
from usertide.anomaly.forest import CompiledForest

NAME = "forest"
TITLE = "isolation forest scoring"


def sessions(count: int, seed: int) -> np.ndarray:
    """Session-like rows: events, pages, distinct pages, clicks, searches, cart adds,
    purchases, errors, failed sign-ins (counts); duration, mean and max gap, revenue
    (heavy-tailed); country changes, new device, night-time, bot-like UA (rare flags)."""
    rng = np.random.default_rng(seed)
    events = rng.poisson(25, count) + 1
    columns = [
        events, rng.binomial(events, 0.6), rng.binomial(events, 0.3), rng.binomial(events, 0.4),
        rng.poisson(2, count), rng.poisson(1, count), rng.poisson(0.1, count),
        rng.poisson(0.3, count), rng.poisson(0.05, count),
        rng.lognormal(6, 1, count), rng.lognormal(3, 0.8, count), rng.lognormal(4.5, 1, count),
        rng.lognormal(3, 1.5, count) * (rng.random(count) < 0.1),
        rng.poisson(0.02, count), rng.random(count) < 0.05, rng.random(count) < 0.2,
    ]  # fmt: skip
    return np.column_stack(columns).astype(np.float64)


def _median_call(
    work: Callable[[list[float]], object], rows: list[list[float]], calls: int
) -> float:
    """Median seconds of one call over ``calls`` calls cycling through ``rows``."""
    times = []
    for i in range(calls):
        row = rows[i % len(rows)]
        t0 = time.perf_counter()
        work(row)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def _median_run(work: Callable[[], object], runs: int = 3) -> float:
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        work()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def run(ctx: Context) -> list[Row]:
    model = IsolationForest(n_estimators=100, max_samples=256, random_state=0)
    model.fit(sessions(20_000, seed=1))
    t0 = time.perf_counter()
    forest = CompiledForest.from_sklearn(model)
    forest.score_one([0.0] * forest.n_features)  # builds the single-row scorer
    built = time.perf_counter() - t0
    test = sessions(10_000, seed=2)
    rows = test.tolist()
    expected = model.score_samples(test)
    if not np.array_equal(forest.score_samples(test), expected):
        raise RuntimeError("batch scores differ from scikit-learn's")
    worst = max(abs(forest.score_one(r) - e) for r, e in zip(rows, expected, strict=True))
    if worst > 1e-9:
        raise RuntimeError(f"single-row scores differ from scikit-learn's by {worst}")

    ours_s = _median_call(forest.score_one, rows, 5_000 if ctx.quick else 20_000)
    sklearn_s = _median_call(lambda r: model.score_samples([r]), rows, 50 if ctx.quick else 200)
    ours_batch = len(test) / _median_run(lambda: forest.score_samples(test))
    sklearn_batch = len(test) / _median_run(lambda: model.score_samples(test))
    log(
        f"  · score_one {ours_s * 1e6:.1f} µs vs sklearn {sklearn_s * 1e6:.0f} µs; batch "
        f"{ours_batch:,.0f} vs {sklearn_batch:,.0f} rows/s"
    )
    note = (
        f"100 trees of max 256 samples, 16 session features, depth {forest.max_depth}; "
        f"compiled in {built * 1e3:.0f} ms; single-row scores within {worst:.1e} of "
        "scikit-learn's, batch scores equal to the bit"
    )
    return [
        Row(TITLE, "one session, score_one", ours_s * 1e6, "µs", baseline=sklearn_s * 1e6,
            target=20, higher_is_better=False, note=note),
        Row(TITLE, "10,000 sessions, score_samples", ours_batch, "rows/s",
            baseline=sklearn_batch),
    ]  # fmt: skip
