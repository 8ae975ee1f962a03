"""Popularity, trending and the blend against hand-computed examples."""

from __future__ import annotations

import numpy as np
import pytest

from usertide.recommend import (
    AssociationRules,
    Blend,
    Popular,
    SequentialRules,
    Trending,
    TrendingConfig,
    load,
)
from usertide.recommend.base import best_first

HOUR = 3600.0


def test_popular_ranks_by_events_ties_by_first_appearance() -> None:
    popular = Popular().fit([("s", "a", 0.0), ("s", "b", 1.0), ("t", "b", 2.0), ("t", "c", 3.0)])
    assert popular.recommend(["c"], 3) == [("b", 1.0), ("a", 0.5), ("c", 0.5)]


def test_trending_halves_an_event_every_half_life() -> None:
    trending = Trending(TrendingConfig(half_life_hours=1.0))
    trending.fit([("s", "a", 0.0), ("t", "a", 0.0), ("u", "b", 2 * HOUR)])
    assert trending.recommend([], 2) == [("b", 1.0), ("a", 0.5)]  # 2 * 1/4 against 1


def test_trending_survives_long_gaps() -> None:
    trending = Trending(TrendingConfig(half_life_hours=1.0))
    trending.fit([("s", "a", 0.0), ("t", "b", 300 * HOUR), ("u", "b", 300 * HOUR)])
    (b, one), (a, tiny) = trending.recommend([], 2)
    assert (b, one, a) == ("b", 1.0, "a")
    assert tiny == pytest.approx(2.0**-301, rel=1e-9)
    assert load(trending.to_bytes()).recommend([], 2) == trending.recommend([], 2)


def test_blend_sums_normalised_scores_by_weight() -> None:
    # from "a": SR b 2, c 1/2 -> 1, 1/4; AR b 2, c 1 -> 1, 1/2
    blend = Blend([(SequentialRules(), 1.0), (AssociationRules(), 0.5)])
    blend.fit([("s", "a", 0), ("s", "b", 1), ("s", "c", 2), ("t", "a", 3), ("t", "b", 4)])
    assert blend.recommend(["a"], 2) == [("b", 1.0), ("c", pytest.approx(0.5 / 1.5))]
    again = load(blend.to_bytes())
    assert isinstance(again, Blend)
    assert [(p.name, w) for p, w in again.parts] == [("sr", 1.0), ("ar", 0.5)]
    assert again.recommend(["a"], 3) == blend.recommend(["a"], 3)


def test_blend_parts_are_checked() -> None:
    with pytest.raises(ValueError):
        Blend([])
    with pytest.raises(ValueError):
        Blend([(Popular(), 0.0)])
    with pytest.raises(ValueError):
        Blend([(Popular().fit([("s", "a", 0.0)]), 1.0)])
    with pytest.raises(ValueError):
        Blend([(Blend([(Popular(), 1.0)]), 1.0)])


def test_best_first_keeps_ties_at_the_cut_in_order() -> None:
    scores = np.array([1.0, 3.0, 2.0, 2.0, 2.0])
    popularity = np.array([0.0, 0.0, 1.0, 5.0, 1.0])
    appearance = -np.arange(5.0)
    assert best_first(scores, popularity, appearance, 3).tolist() == [1, 3, 2]
    assert best_first(scores, popularity, appearance, 10).tolist() == [1, 3, 2, 4, 0]
