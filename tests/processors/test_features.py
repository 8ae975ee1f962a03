from __future__ import annotations

import itertools
import math
import statistics
from typing import Any

import pytest

from factories import event
from usertide.engine import Engine, SessionClosed
from usertide.events import Context, Device, Event, Geo
from usertide.processors import BehaviourFeatures, Sessionizer
from usertide.processors.features import (
    FEATURES,
    WINDOW_CAP,
    distinct_pages,
    features_of,
    named,
    vector,
)


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


def full(events: list) -> dict:  # type: ignore[type-arg]
    e = Engine([Sessionizer(), BehaviourFeatures()])
    for ev in events:
        e.apply(ev)
    state = e.lookup(events[-1].user_id or "jane")
    assert state is not None
    return named(vector(state.get(BehaviourFeatures)))


def paged(at: float, path: str, referrer: str | None = None, **context: Any) -> Event:
    ev = event(at=at, type="page", path=path)
    ev.context = Context(page_path=path, page_referrer=referrer, **context)
    return ev


def test_the_feature_vector_follows_features_order() -> None:
    f = full([paged(0, "/a", "https://google.com/"), paged(10, "/b"), paged(20, "/b")])
    assert list(f) == list(FEATURES)
    assert f["pages_per_session"] == 3 and f["session_duration_seconds"] == 20
    assert f["no_referrer_share"] == pytest.approx(2 / 3)
    assert f["distinct_pages_ratio"] == pytest.approx(2 / 3)
    assert f["session_clicks_per_minute"] == 3  # under a minute counts as one
    assert f["page_views_per_minute"] == 3


def test_peak_requests_per_second() -> None:
    times = [0.1, 0.2, 0.3, 0.9, 1.5, 5.0, 5.1]
    assert full([event(at=t) for t in times])["peak_requests_per_second"] == 4


def test_error_pages_by_status_or_path() -> None:
    f = full(
        [
            paged(0, "/ok"),
            paged(1, "/404"),
            paged(2, "/p/1", page_title="Page not found"),
            event(at=3, type="page", path="/x", properties={"status": 503}),
        ]
    )
    assert f["error_page_share"] == pytest.approx(3 / 4)


def test_night_share_uses_the_visitors_time_zone() -> None:
    # T0 is 12:00 UTC: 02:00 in Honolulu (night), 13:00 in Paris (day)
    hnl = paged(0, "/a", timezone="Pacific/Honolulu")
    paris = paged(0, "/a", timezone="Europe/Paris")
    assert full([hnl])["night_share"] == 1.0
    assert full([paris])["night_share"] == 0.0
    assert full([paged(0, "/a", timezone="Not/AZone")])["night_share"] == 0.0  # UTC noon


def test_automation_agent_and_data_centre_network() -> None:
    bot = paged(0, "/a", device=Device(is_headless=True), geo=Geo(as_org="DIGITALOCEAN-ASN"))
    f = full([bot])
    assert f["automation_agent"] == 1.0 and f["data_centre_network"] == 1.0
    home = paged(0, "/a", device=Device(browser="Chrome"), geo=Geo(as_org="COMCAST-7922"))
    g = full([home])
    assert g["automation_agent"] == 0.0 and g["data_centre_network"] == 0.0


def test_sign_in_failures_cart_and_purchases() -> None:
    f = full(
        [
            event(at=0, name="login", properties={"success": False}),
            event(at=1, name="login", properties={"success": False}),
            event(at=2, name="login", properties={"success": True}),
            event(at=3, name="Product Added"),
            event(at=4, name="Order Completed"),
        ]
    )
    assert (f["login_failures"], f["add_to_cart"], f["purchases"]) == (2, 1, 1)


def test_a_closed_session_leaves_its_last_features_in_its_summary() -> None:
    e = Engine([Sessionizer(), BehaviourFeatures()])
    for t in (0, 5, 10):
        e.apply(paged(t, f"/p/{t}"))
    out = e.apply(paged(5000, "/later"))
    (closed,) = [o for o in out if isinstance(o, SessionClosed)]
    summary = closed.summary["features"]
    assert summary["pages_per_session"] == 3 and summary["session_duration_seconds"] == 10
    assert e.closed == [closed]  # kept for the next commit's session records


def test_ad_click_share_counts_ad_events_and_pages_from_ads() -> None:
    ad = paged(1, "/p/1", "https://www.googleadservices.com/pagead/aclk?ai=x")
    landing = paged(2, "/p/2", "https://google.com/")
    landing.context.page_url = "https://shop.test/p/2?gclid=abc"
    f = full([event(at=0, name="Ad Clicked"), ad, landing, paged(3, "/p/3", "https://shop.test/")])
    assert f["ad_click_share"] == pytest.approx(3 / 4)
