"""Funnels in the store's SQL against a brute-force computation over the same events."""

from __future__ import annotations

import random
import statistics
from datetime import timedelta
from typing import Any

import pytest

from analyticsref import Row, funnel, step_users
from factories import T0, event
from usertide.analytics.errors import AnalyticsError
from usertide.analytics.funnels import parse_funnel, people, step_counts
from usertide.analytics.report import funnel_report
from usertide.store import Store

FROM, TO = T0 - timedelta(days=1), T0 + timedelta(days=3)
NAMES = ["view", "cart", "buy", "other"]


def _random_events(seed: int, people_count: int = 40) -> list[Any]:
    """People with short random histories: repeated steps, steps out of order, equal
    timestamps (ordered by arrival), events outside the range, a category each time."""
    rng = random.Random(seed)
    out = []
    for p in range(people_count):
        at = rng.uniform(-2 * 86400, 2 * 86400)
        for _ in range(rng.randint(1, 7)):
            at += rng.choice([0, 0, 30, 600, 3600, 86400, 2 * 86400])
            out.append(
                event(
                    name=rng.choice(NAMES),
                    user_id=f"p{p:02d}",
                    at=at,
                    properties={"category": rng.choice(["a", "b", "c"]), "n": rng.randint(0, 3)},
                )
            )
    rng.shuffle(out)  # arrival order is not time order
    return out


def _rows(store: Store) -> list[Row]:
    return [
        Row(e.user_id or "", e.timestamp, e.offset or 0, e.name or "", e.properties)
        for e in store.read_log(0, 100_000)
    ]


def _query(store: Store, **body: Any) -> Any:
    base = {"from": FROM.isoformat(), "to": TO.isoformat()}
    return parse_funnel({**base, **body}, store.dialect)


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("order", ["sequential", "strict"])
@pytest.mark.parametrize("window", ["1h", "1d", "3d"])
def test_step_counts_and_times_match_brute_force(
    store: Store, seed: int, order: str, window: str
) -> None:
    store.append_events(_random_events(seed))
    rows = _rows(store)
    q = _query(
        store,
        steps=[
            {"event": "view"},
            {"event": "cart"},
            {"event": "buy", "where": {"properties.n": {">": 0}}},
        ],
        order=order,
        window=window,
    )
    ref = funnel(
        rows,
        [
            lambda r: r.name == "view",
            lambda r: r.name == "cart",
            lambda r: r.name == "buy" and r.properties["n"] > 0,
        ],
        q.window.total_seconds(),
        FROM,
        TO,
        strict=order == "strict",
    )
    counts = step_counts(store, q)["$all"]
    assert [s["users"] for s in counts] == step_users(ref, 3)
    for k in (2, 3):
        gaps = [
            (chain[k - 1].ts - chain[k - 2].ts).total_seconds()
            for depth, chain in ref.values()
            if depth >= k
        ]
        ttc = counts[k - 1]["time_to_convert"]
        if not gaps:
            assert ttc is None
        else:
            assert ttc["median_s"] == pytest.approx(statistics.median(gaps))
    dropped = sorted(p for p, (depth, _) in ref.items() if depth == 1)
    assert people(store, q, 2, "dropped", 1000, None) == dropped
    converted = sorted(p for p, (depth, _) in ref.items() if depth >= 3)
    assert people(store, q, 3, "converted", 1000, None) == converted


@pytest.mark.parametrize("seed", range(4))
def test_breakdown_groups_people_by_the_first_step_of_their_conversion(
    store: Store, seed: int
) -> None:
    store.append_events(_random_events(seed, 60))
    q = _query(
        store,
        steps=[{"event": "view"}, {"event": "cart"}],
        window="2d",
        breakdown="properties.category",
    )
    ref = funnel(
        _rows(store), [lambda r: r.name == "view", lambda r: r.name == "cart"], 2 * 86400, FROM, TO
    )
    counts = step_counts(store, q)
    for value in ("a", "b", "c"):
        group = {p: v for p, v in ref.items() if v[1][0].properties["category"] == value}
        if group:
            assert [s["users"] for s in counts[value]] == step_users(group, 2)
    assert [s["users"] for s in counts["$all"]] == step_users(ref, 2)


def test_breakdown_keeps_the_top_values_and_folds_the_rest(store: Store) -> None:
    events = [
        event(name=n, user_id=f"{c}{i}", at=i, properties={"c": c})
        for c, users in (("x", 5), ("y", 3), ("z", 1))
        for i in range(users)
        for n in ("view", "cart")
    ]
    store.append_events(events)
    q = _query(
        store,
        steps=[{"event": "view"}, {"event": "cart"}],
        breakdown="properties.c",
        breakdown_limit=1,
    )
    report = funnel_report(store, q)
    assert [(b["value"], b["steps"][0]["users"]) for b in report["breakdown"]] == [
        ("x", 5),
        ("$other", 4),
    ]
    assert sum(b["probability_best"] for b in report["breakdown"]) == pytest.approx(1.0)


def test_report_has_posteriors_from_beta_counts(store: Store) -> None:
    from scipy.stats import beta  # type: ignore[import-untyped]

    events = []
    for i in range(50):
        events.append(event(name="view", user_id=f"u{i}", at=i))
        if i < 20:
            events.append(event(name="cart", user_id=f"u{i}", at=i + 100))
        if i < 5:
            events.append(event(name="buy", user_id=f"u{i}", at=i + 200))
    store.append_events(events)
    q = _query(store, steps=[{"event": "view"}, {"event": "cart"}, {"event": "buy"}])
    report = funnel_report(store, q)
    cart = report["steps"][1]
    assert (cart["users"], cart["dropped"]) == (20, 30)
    assert cart["conversion"]["from_previous"] == pytest.approx(0.4)
    post = cart["conversion"]["posterior"]
    assert post["mean"] == pytest.approx(21 / 52)
    assert post["low"] == pytest.approx(beta.ppf(0.025, 21, 31))
    assert post["high"] == pytest.approx(beta.ppf(0.975, 21, 31))
    assert report["overall"]["users"] == 5
    assert report["overall"]["posterior"]["mean"] == pytest.approx(21 / 52 * 6 / 22)


def test_events_at_the_same_time_count_in_arrival_order(store: Store) -> None:
    store.append_events(
        [event(name="cart", user_id="u", at=0), event(name="view", user_id="u", at=0)]
    )
    q = _query(store, steps=[{"event": "view"}, {"event": "cart"}])
    assert [s["users"] for s in step_counts(store, q)["$all"]] == [1, 0]
    q = _query(store, steps=[{"event": "cart"}, {"event": "view"}])
    assert [s["users"] for s in step_counts(store, q)["$all"]] == [1, 1]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"steps": [{"event": "a"}]}, "steps"),
        ({"steps": [{"event": "a"}, {"name": "b"}]}, "steps[1]"),
        ({"steps": [{"event": "a"}, {"event": "b"}], "order": "any"}, "order"),
        ({"steps": [{"event": "a"}, {"event": "b"}], "window": "3 fortnights"}, "window"),
        ({"steps": [{"event": "a"}, {"event": "b"}], "breakdown": "body"}, "breakdown"),
        (
            {"steps": [{"event": "a"}, {"event": "b", "where": {"properties.x": {"~": 1}}}]},
            "steps[1].where.properties.x",
        ),
        ({"steps": [{"event": "a"}, {"event": "b"}], "prior": [0, 1]}, "prior"),
    ],
)
def test_invalid_funnels_name_the_field(store: Store, body: dict[str, Any], field: str) -> None:
    with pytest.raises(AnalyticsError) as info:
        _query(store, **body)
    assert info.value.field == field


def test_hostile_property_names_and_values_are_bound_not_spliced(store: Store) -> None:
    name = "x'); DROP TABLE events; --\"."
    store.append_events([event(name="view", user_id="u", properties={'a"b': "'"})])
    q = _query(store, steps=[{"event": "view", "where": {'properties.a"b': "'"}}, {"event": name}])
    assert [s["users"] for s in step_counts(store, q)["$all"]] == [1, 0]
    assert store.count_events() == 1
