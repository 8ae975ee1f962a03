from __future__ import annotations

import itertools
import math
import statistics

from factories import event
from usertide.engine import Engine
from usertide.processors import BehaviourFeatures, Sessionizer
from usertide.processors.features import WINDOW_CAP, distinct_pages, features_of


def features(events: list) -> dict:  # type: ignore[type-arg]
    e = Engine([Sessionizer(), BehaviourFeatures()])
    for ev in events:
        e.apply(ev)
    state = e.lookup("jane")
    assert state is not None
    return features_of(state.get(BehaviourFeatures))


def test_events_per_minute_counts_the_sliding_window() -> None:
    f = features([event(at=t) for t in (0, 10, 20, 70, 75, 80)])
    assert f["events_per_minute"] == 3  # the window is (20, 80]: 70, 75 and 80


def test_rate_extrapolates_past_the_window_cap() -> None:
    f = features([event(at=i * 0.25) for i in range(200)])  # 240 events per minute
    assert math.isclose(f["events_per_minute"], 240, rel_tol=0.05)
    assert WINDOW_CAP < 240


def test_gap_mean_and_cv_match_statistics() -> None:
    times = [0.0, 3.0, 4.0, 10.0, 12.0, 20.0]
    gaps = [b - a for a, b in itertools.pairwise(times)]
    f = features([event(at=t) for t in times])
    assert math.isclose(f["gap_mean_seconds"], statistics.mean(gaps), rel_tol=1e-3)
    cv = statistics.pstdev(gaps) / statistics.mean(gaps)
    assert math.isclose(f["gap_cv"], cv, rel_tol=1e-3)


def test_regular_bot_gaps_have_low_variability() -> None:
    assert features([event(at=i * 2.0) for i in range(30)])["gap_cv"] < 0.01


def test_distinct_pages_is_close_to_exact() -> None:
    pages = [f"/p/{i % 40}" for i in range(120)]
    f = features([event(at=i, type="page", path=p) for i, p in enumerate(pages)])
    assert abs(f["distinct_pages"] - 40) <= 4
    assert distinct_pages(b"") == 0


def test_features_reset_with_a_new_session() -> None:
    f = features([event(at=0, type="page", path="/a"), event(at=5000, type="page", path="/b")])
    assert f["distinct_pages"] == 1 and f["gap_mean_seconds"] == 0
