"""Association and sequential rules against hand-counted examples."""

from __future__ import annotations

import pytest

from usertide.recommend import AssociationRules, RulesConfig, SequentialRules
from usertide.recommend.base import Recommender


def learn(recommender: Recommender, *sessions: str) -> Recommender:
    t = 0.0
    for number, items in enumerate(sessions):
        for item in items:
            t += 1.0
            recommender.learn(f"s{number}", item, t)
    return recommender


def rules(recommender: AssociationRules | SequentialRules) -> dict[str, dict[str, float]]:
    ids = recommender.catalogue.ids
    return {ids[a]: {ids[b]: w for b, w in row.items()} for a, row in recommender.rules.items()}


def test_sequential_rules_weigh_pairs_by_distance() -> None:
    sr = learn(SequentialRules(), "abc", "ab")
    assert rules(sr) == {"a": {"b": 2.0, "c": 0.5}, "b": {"c": 1.0}}
    assert sr.recommend(["x", "a"], 3) == [("b", 1.0), ("c", 0.25), ("a", 0.0)]


def test_sequential_rules_look_back_steps_only() -> None:
    sr = learn(SequentialRules(RulesConfig(steps=1)), "abc")
    assert rules(sr) == {"a": {"b": 1.0}, "b": {"c": 1.0}}
    quadratic = learn(SequentialRules(RulesConfig(weighting="quadratic")), "abcd")
    assert rules(quadratic)["a"] == {"b": 1.0, "c": 0.25, "d": pytest.approx(1 / 9)}


def test_sequential_rules_count_repeats() -> None:
    sr = learn(SequentialRules(), "aab")
    assert rules(sr) == {"a": {"a": 1.0, "b": 1.5}}


def test_association_rules_count_pairs_both_ways() -> None:
    ar = learn(AssociationRules(), "abc", "ab", "ca")
    assert rules(ar) == {
        "a": {"b": 2.0, "c": 2.0},
        "b": {"a": 2.0, "c": 1.0},
        "c": {"a": 2.0, "b": 1.0},
    }
    # from "b": a (2) before c (1); the session's earlier items do not matter
    assert ar.recommend(["c", "b"], 2) == [("a", 1.0), ("c", 0.5)]


def test_association_rules_count_a_repeat_with_itself_twice() -> None:
    ar = learn(AssociationRules(), "aa")
    assert rules(ar) == {"a": {"a": 2.0}}


def test_pruning_keeps_the_strongest_rules_when_answering() -> None:
    ar = learn(AssociationRules(RulesConfig(pruning=1)), "ab", "ab", "ac")
    assert ar.recommend(["a"], 1) == [("b", 1.0)]
    assert ar.recommend(["a"], 3) == [("b", 1.0), ("a", 0.0), ("c", 0.0)]  # then popular
    assert rules(ar)["a"] == {"b": 2.0, "c": 1.0}  # the counts themselves stay whole


def test_ties_go_to_the_more_popular_item() -> None:
    sr = learn(SequentialRules(), "ab", "ac", "c")
    assert sr.recommend(["a"], 2) == [("c", 1.0), ("b", 1.0)]


def test_histories_are_bounded() -> None:
    ar = learn(AssociationRules(RulesConfig(history=2, max_sessions=1)), "abcd")
    assert rules(ar)["d"] == {"b": 1.0, "c": 1.0}  # a had left the history
    ar.learn("other", "x", 50.0)  # one session kept: "s0" is dropped
    ar.learn("s0", "e", 99.0)
    assert "e" not in rules(ar)
