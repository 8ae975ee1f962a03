"""Every recommender in the registry keeps the contract of recommend/base.py."""

from __future__ import annotations

import numpy as np
import pytest

from usertide.recommend import DEFAULT, RECOMMENDERS, Recommender, load, recommender
from usertide.recommend.base import Recommender as Base
from usertide.recommend.sasrec import SASRec, SASRecConfig

Event = tuple[str, str, float]
FACTORIES = dict(RECOMMENDERS)
if "sasrec" in FACTORIES:  # torch is installed: a tiny network, retrained inside learn()
    import torch

    torch.set_num_threads(1)
    FACTORIES["sasrec"] = lambda: SASRec(
        SASRecConfig(
            maxlen=8, hidden=16, dropout=0.2, lr=0.01, batch=32, epochs=20, retrain_every=200
        )
    )


def stream(seed: int = 3, sessions: int = 150) -> list[Event]:
    """Sessions browsing one of three item groups, with repeats and a few cross-overs."""
    rng = np.random.default_rng(seed)
    events = []
    t = 1_700_000_000.0
    for s in range(sessions):
        group = int(rng.integers(0, 3))
        for _ in range(int(rng.integers(1, 7))):
            item = group * 10 + int(rng.integers(0, 10)) if rng.random() < 0.9 else 40
            t += float(rng.exponential(30.0))
            events.append((f"s{s}", f"i{item}", t))
    return events


@pytest.fixture(params=sorted(RECOMMENDERS))
def name(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def fitted(name: str) -> Recommender:
    return FACTORIES[name]().fit(stream())


def test_the_default_is_registered() -> None:
    assert DEFAULT in RECOMMENDERS
    assert recommender().name == recommender(DEFAULT).name


def test_unknown_name_is_named() -> None:
    with pytest.raises(ValueError, match="unknown recommender 'nope'"):
        recommender("nope")


def test_answers_at_most_n_distinct_best_first(fitted: Recommender) -> None:
    for session in (["i1"], ["i1", "i2", "i1"], ["i25", "i40"], ["i0"] * 5):
        for n in (1, 5, 20, 100):
            answer = fitted.recommend(session, n)
            items = [item for item, _ in answer]
            scores = [score for _, score in answer]
            assert len(answer) == min(n, fitted.items())
            assert len(set(items)) == len(items)
            assert scores == sorted(scores, reverse=True)
            assert all(0.0 <= s <= 1.0 for s in scores)
    assert fitted.recommend(["i1"], 0) == []


def test_never_an_excluded_or_disallowed_item(fitted: Recommender) -> None:
    exclude = {"i1", "i2", "i3", "i40"}
    answer = fitted.recommend(["i1", "i2"], 30, exclude=exclude)
    assert not exclude & {item for item, _ in answer}
    assert len(answer) == fitted.items() - len(exclude)
    odd = fitted.recommend(["i1", "i2"], 30, allowed=lambda item: int(item[1:]) % 2 == 1)
    assert odd and all(int(item[1:]) % 2 == 1 for item, _ in odd)
    assert len(odd) == len({item for _, item, _ in stream() if int(item[1:]) % 2 == 1})
    assert fitted.recommend(["i1"], 10, allowed=lambda item: False) == []


def test_deterministic(name: str) -> None:
    a, b = FACTORIES[name]().fit(stream()), FACTORIES[name]().fit(stream())
    assert a.to_bytes() == b.to_bytes()
    for session in (["i1"], ["i11", "i12"], [], ["unknown"]):
        assert a.recommend(session, 20) == b.recommend(session, 20)


def test_fit_is_learning_each_event(name: str) -> None:
    one_by_one = FACTORIES[name]()
    for event in stream():
        one_by_one.learn(*event)
    assert one_by_one.to_bytes() == FACTORIES[name]().fit(stream()).to_bytes()


def test_a_new_item_is_recommendable_once_learned(fitted: Recommender) -> None:
    before = fitted.items()
    assert "new" not in {item for item, _ in fitted.recommend(["i1"], 1000)}
    fitted.learn("fresh", "i1", 1_800_000_000.0)
    fitted.learn("fresh", "new", 1_800_000_001.0)
    assert fitted.items() == before + 1
    assert "new" in {item for item, _ in fitted.recommend(["i1"], fitted.items())}
    assert "new" in {item for item, _ in fitted.recommend(["new"], fitted.items())}


def test_an_empty_or_unknown_session_gets_the_fallback(fitted: Recommender) -> None:
    for session in ([], ["never seen"]):
        answer = fitted.recommend(session, 5)
        assert len(answer) == 5
    assert FACTORIES[fitted.name]().recommend(["i1"], 5) == []  # nothing learned yet


def test_a_session_items_rank_what_follows(fitted: Recommender) -> None:
    """Group structure is learnable: after items of group 1, its items lead (except the
    session-independent recommenders)."""
    if fitted.name in ("popular", "trending"):
        pytest.skip("the same answer for every session")
    top = [item for item, _ in fitted.recommend(["i11", "i12"], 5)]
    assert sum(10 <= int(item[1:]) < 20 for item in top) >= 4


def test_similar_items_never_include_the_item(fitted: Recommender) -> None:
    answer = fitted.similar("i11", 10, exclude={"i12"})
    assert len(answer) == 10
    assert not {"i11", "i12"} & {item for item, _ in answer}


def test_rank_orders_as_recommend_does(fitted: Recommender) -> None:
    session = ["i21", "i22"]
    answer = [item for item, _ in fitted.recommend(session, fitted.items())]
    shuffled = [*reversed(answer), "never seen"]
    assert fitted.rank(session, shuffled) == [*answer, "never seen"]


def test_bytes_round_trip_recommends_the_same(fitted: Recommender) -> None:
    data = fitted.to_bytes()
    again = load(data)
    assert type(again) is type(fitted)
    assert again.to_bytes() == data
    for session in (["i1"], ["i11", "i12", "i11"], [], ["i40", "i3"]):
        assert again.recommend(session, 20) == fitted.recommend(session, 20)
    # and both keep learning the same way
    for r in (fitted, again):
        r.learn("later", "i5", 1_800_000_000.0)
        r.learn("later", "new", 1_800_000_010.0)
    assert again.to_bytes() == fitted.to_bytes()
    assert again.recommend(["i5"], 20) == fitted.recommend(["i5"], 20)


@pytest.mark.parametrize("data", [b"", b"not a snapshot", b"\x82\xa1a\x01\xa1b\x02"])
def test_load_refuses_what_it_did_not_write(data: bytes) -> None:
    with pytest.raises(ValueError):
        load(data)


def test_load_refuses_another_kind(fitted: Recommender) -> None:
    data = fitted.to_bytes()
    other = next(cls for n, cls in Base._classes.items() if n != fitted.name)
    with pytest.raises(ValueError, match="snapshot"):
        other.from_bytes(data)


def test_load_refuses_a_truncated_snapshot(fitted: Recommender) -> None:
    data = fitted.to_bytes()
    for cut in (len(data) // 3, len(data) - 1):
        with pytest.raises(ValueError):
            load(data[:cut])


def test_forgetting_a_session_keeps_answering(fitted: Recommender) -> None:
    fitted.forget_session("s3")
    fitted.forget_session("never there")
    assert len(fitted.recommend(["i1"], 10)) == 10
    assert load(fitted.to_bytes()).recommend(["i1"], 10) == fitted.recommend(["i1"], 10)
