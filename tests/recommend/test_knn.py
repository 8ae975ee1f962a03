"""Session-kNN (V-SKNN, STAN, V-STAN) against hand-computed toy examples."""

from __future__ import annotations

import math

import pytest

from usertide.recommend import STAN, VSKNN, VSTAN, STANConfig, VSKNNConfig, load
from usertide.recommend.base import Recommender

DAY = 86_400.0


def learn(recommender: Recommender, sessions: dict[str, tuple[str, float]]) -> Recommender:
    """Sessions as {id: (items, time of all its events)}."""
    for session_id, (items, time) in sessions.items():
        for item in items:
            recommender.learn(session_id, item, time)
    return recommender


def evidence(recommender: Recommender, session: list[str], **kw: str) -> dict[str, float]:
    """The items with a positive score (the rest is the popularity fallback)."""
    answer = recommender.recommend(session, 100, **kw)  # type: ignore[arg-type]
    return {item: score for item, score in answer if score > 0}


TOY = {"s0": ("ab", 1.0), "s1": ("bc", 2.0), "s2": ("cd", 3.0)}


def test_vsknn_on_three_sessions() -> None:
    # query [a, c]: quadratic weights a (1/2)**2 = 0.25, c 1; similarity = weighted
    # overlap / 2 distinct items: s0 0.125, s1 0.5, s2 0.5. s0 matched only "a", the
    # second latest item: its items count 1/2. Scores: a 0.0625, b 0.0625 + 0.5,
    # c 0.5 + 0.5, d 0.5.
    knn = learn(VSKNN(VSKNNConfig(idf_weighting=0)), TOY)
    assert knn.recommend(["a", "c"], 4) == [
        ("c", 1.0),
        ("b", pytest.approx(0.5625)),
        ("d", pytest.approx(0.5)),
        ("a", pytest.approx(0.0625)),
    ]


def test_vsknn_idf_weighting() -> None:
    # each score times 1 + 5 * log(3 sessions / events of the item)
    knn = learn(VSKNN(VSKNNConfig(idf_weighting=5.0)), TOY)
    raw = {
        "a": 0.0625 * (1 + 5 * math.log(3)),
        "b": 0.5625 * (1 + 5 * math.log(1.5)),
        "c": 1.0 * (1 + 5 * math.log(1.5)),
        "d": 0.5 * (1 + 5 * math.log(3)),
    }
    best = max(raw.values())
    assert evidence(knn, ["a", "c"]) == pytest.approx({k: v / best for k, v in raw.items()})
    assert [item for item, _ in knn.recommend(["a", "c"], 4)] == ["d", "c", "b", "a"]


def test_vsknn_without_reminders_skips_the_session_items() -> None:
    knn = learn(VSKNN(VSKNNConfig(idf_weighting=0, remind=False)), TOY)
    assert evidence(knn, ["a", "c"]) == {"b": 1.0, "d": pytest.approx(0.5 / 0.5625)}


def test_stan_weighs_items_by_their_distance_in_the_neighbour() -> None:
    stan = learn(STAN(STANConfig(lambda_inh=2.05)), {"s0": ("abc", 0.0)})
    far = math.exp(-1 / 2.05)
    assert stan.recommend(["b"], 3) == [("b", 1.0), ("a", pytest.approx(far)), ("c", far)]


def test_stan_decays_older_neighbours() -> None:
    stan = learn(
        STAN(STANConfig(lambda_snh=1.0, lambda_inh=None)),
        {"old": ("ax", 0.0), "new": ("ay", DAY)},
    )
    # ages 1 day and 0 (from the latest event): weights e^-1 and 1
    total = 1 + math.exp(-1)
    assert evidence(stan, ["a"]) == pytest.approx(
        {"a": 1.0, "y": 1 / total, "x": math.exp(-1) / total}
    )


def test_stan_cosine_and_position_weights() -> None:
    config = STANConfig(lambda_spw=1.0, lambda_snh=None, lambda_inh=None)
    plain = learn(STAN(config), {"s0": ("ax", 0.0), "s1": ("by", 0.0)})
    # query [a, b]: a weighs e^-1, b 1: s0's similarity is e^-1 times s1's
    assert evidence(plain, ["a", "b"]) == pytest.approx(
        {"b": 1.0, "y": 1.0, "a": math.exp(-1), "x": math.exp(-1)}
    )
    # V-STAN also weighs a neighbour by the position of its match in the session: e^-1
    vstan = learn(
        VSTAN(STANConfig(lambda_spw=1.0, lambda_snh=None, lambda_inh=None, lambda_ipw=1.0)),
        {"s0": ("ax", 0.0), "s1": ("by", 0.0)},
    )
    assert vstan.recommend(["a", "b"], 4) == [
        ("b", 1.0),
        ("y", 1.0),
        ("a", pytest.approx(math.exp(-2))),
        ("x", pytest.approx(math.exp(-2))),
    ]


@pytest.mark.parametrize("make", [VSKNN, STAN, VSTAN])
def test_a_session_being_learned_is_not_its_own_neighbour(make: type[Recommender]) -> None:
    knn = learn(make(), {"s0": ("ab", 1.0), "live": ("az", 2.0)})
    assert set(evidence(knn, ["a"], session_id="live")) == {"a", "b"}
    assert set(evidence(knn, ["a"])) == {"a", "b", "z"}


def test_only_the_most_recent_candidates_are_compared() -> None:
    knn = learn(
        VSKNN(VSKNNConfig(sample_size=1, idf_weighting=0)),
        {"old": ("ax", 1.0), "new": ("ay", 2.0)},
    )
    assert set(evidence(knn, ["a"])) == {"a", "y"}


def test_only_the_k_most_similar_are_neighbours() -> None:
    knn = learn(
        VSKNN(VSKNNConfig(k=1, idf_weighting=0)), {"close": ("abc", 1.0), "far": ("ad", 2.0)}
    )
    assert set(evidence(knn, ["a", "b"])) == {"a", "b", "c"}


def test_the_index_keeps_the_most_recent_sessions() -> None:
    knn = VSKNN(VSKNNConfig(max_sessions=8, idf_weighting=0))
    for n in range(20):
        learn(knn, {f"s{n}": (("common", f"only{n}"), float(n))})
        assert len(knn.index) <= 9
    kept = {item for item in evidence(knn, ["common"]) if item != "common"}
    assert {f"only{n}" for n in range(12, 20)} <= kept
    assert not kept & {f"only{n}" for n in range(10)}
    again = load(knn.to_bytes())
    assert again.recommend(["common"], 30) == knn.recommend(["common"], 30)


@pytest.mark.parametrize("make", [VSKNN, STAN, VSTAN])
def test_sessions_that_grow_interleaved_move_and_compact_in_the_slab(
    make: type[Recommender],
) -> None:
    knn = make()
    assert isinstance(knn, VSKNN | STAN)
    compactions = 0
    for step in range(400):  # 20 sessions growing in turn, items repeated now and then
        session, item = f"s{step % 20}", f"i{(step * 7) % 53}"
        abandoned = knn.index._abandoned
        knn.learn(session, item, float(step))
        compactions += knn.index._abandoned < abandoned
        if step == 150:
            for gone in range(8):  # most of the slab abandoned, not yet a rebuild
                knn.forget_session(f"s{gone}")
    assert compactions, "the slab was never compacted"
    index = knn.index
    assert index.slab_items.size <= 2 * sum(index.capacity) + 4 * 20
    for number in index.where.values():  # each run holds the session's own items
        held = index.positions_of(number)
        assert list(held) == list(index.latest[number])
        assert max(held.values()) <= index.lengths[number]
    again = load(knn.to_bytes())
    assert again.to_bytes() == knn.to_bytes()
    for probe in (["i0"], ["i7", "i14"], ["i21", "i0", "i49"]):
        assert again.recommend(probe, 30) == knn.recommend(probe, 30)


@pytest.mark.parametrize("make", [VSKNN, STAN, VSTAN])
def test_a_forgotten_session_is_no_neighbour(make: type[Recommender]) -> None:
    knn = learn(make(), {"s0": ("ab", 1.0), "s1": ("ac", 2.0), "s2": ("ad", 3.0)})
    knn.forget_session("s0")
    assert set(evidence(knn, ["a"])) == {"a", "c", "d"}
    knn.forget_session("s1")  # now more forgotten than kept: the index is rebuilt
    assert set(evidence(knn, ["a"])) == {"a", "d"}
    assert load(knn.to_bytes()).recommend(["a"], 5) == knn.recommend(["a"], 5)
    learn(knn, {"s0": ("ae", 4.0)})  # the same id again is a new session
    assert set(evidence(knn, ["a"])) == {"a", "d", "e"}


def test_configurations_are_checked() -> None:
    for bad in ({"k": 0}, {"sample_size": 0}, {"lambda_spw": 0.0}, {"lambda_inh": -1.0}):
        with pytest.raises(ValueError):
            STANConfig(**bad)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        VSKNNConfig(idf_weighting=-1.0)
