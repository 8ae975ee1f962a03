"""SASRec (recommend/sasrec.py): it learns, it round-trips as data, it is deterministic,
and ``usertide eval recommend`` trains it with validation that is never the test item."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

import msgspec
import numpy as np
import pytest

torch = pytest.importorskip("torch")

from usertide.evaluation import recommend_eval  # noqa: E402 - after the skip
from usertide.recommend import RECOMMENDERS, load  # noqa: E402
from usertide.recommend.base import Recommender  # noqa: E402
from usertide.recommend.sasrec import (  # noqa: E402
    Network,
    Progress,
    SASRec,
    SASRecConfig,
    train,
    train_network,
)

torch.set_num_threads(1)

TINY = SASRecConfig(maxlen=6, hidden=16, dropout=0.1, lr=0.01, batch=16, epochs=30, seed=7)


def pattern(copies: int = 40) -> list[list[str]]:
    """a -> b -> c, and noise sequences over other items."""
    rng = np.random.default_rng(0)
    noise = [[f"n{int(i)}" for i in rng.integers(0, 12, 4)] for _ in range(copies)]
    return [["a", "b", "c"] for _ in range(copies)] + noise


@pytest.fixture(scope="module")
def trained() -> SASRec:
    return train(pattern(), TINY)


def test_learns_what_follows(trained: SASRec) -> None:
    assert trained.network is not None and trained.network.epochs == TINY.epochs
    assert trained.recommend(["a", "b"], 1) == [("c", 1.0)]
    assert trained.recommend(["a"], 1)[0][0] == "b"
    assert trained.rank(["a", "b"], ["n1", "a", "c", "b"])[0] == "c"
    assert trained.similar("b", 1)[0][0] == "c"


def test_bytes_round_trip_gives_identical_scores(trained: SASRec) -> None:
    data = trained.to_bytes()
    again = load(data)
    assert isinstance(again, SASRec) and again.to_bytes() == data
    assert again.network is not None and trained.network is not None
    for session in (["a"], ["a", "b"], ["n3", "n4", "a"]):
        ids = [trained.catalogue.index[i] for i in session]
        assert np.array_equal(again.network.logits(ids), trained.network.logits(ids))
        assert again.recommend(session, 10) == trained.recommend(session, 10)


def _state(recommender: SASRec) -> dict[str, object]:
    envelope = msgspec.msgpack.decode(recommender.to_bytes())
    assert isinstance(envelope, dict)
    return envelope


def _with_state(envelope: dict[str, object], state: list[object]) -> bytes:
    return msgspec.msgpack.encode({**envelope, "state": state})


def test_refuses_bad_bytes(trained: SASRec) -> None:
    envelope = _state(trained)
    state = envelope["state"]
    assert isinstance(state, list)
    sessions, lengths, history, since, trainings, network = state
    items, epochs, names, weights = network
    position = names.index("item")
    wrong = [
        # a weight cut short, one of the wrong shape, one missing, one extra, NaN
        [*weights[:position], weights[position][:-4], *weights[position + 1 :]],
        [*weights[:position], weights[position] * 2, *weights[position + 1 :]],
        weights[:-1],
    ]
    for bad in wrong:
        with pytest.raises(ValueError):
            load(_with_state(envelope, [*state[:5], [items, epochs, names, bad]]))
    with pytest.raises(ValueError):
        load(_with_state(envelope, [*state[:5], [items, epochs, [*names, "x"], [*weights, b""]]]))
    nan = [*weights]
    nan[position] = np.full(len(weights[position]) // 4, np.nan, "<f4").tobytes()
    with pytest.raises(ValueError, match="not finite"):
        load(_with_state(envelope, [*state[:5], [items, epochs, names, nan]]))
    with pytest.raises(ValueError):  # more items than the catalogue holds
        load(_with_state(envelope, [*state[:5], [items + 1, epochs, names, weights]]))
    outside = np.frombuffer(history, "<i8").copy()
    outside[0] = trained.items()
    with pytest.raises(ValueError):  # a history naming an item outside the catalogue
        load(_with_state(envelope, [sessions, lengths, outside.tobytes(), *state[3:]]))
    with pytest.raises(ValueError):
        load(_with_state(envelope, [sessions, lengths, history, since, trainings]))


def test_same_seed_same_weights_other_seed_others() -> None:
    sequences = [[0, 1, 2, 3], [2, 3, 4], [4, 0, 1], [1, 2, 3, 4, 0]] * 5
    config = msgspec.structs.replace(TINY, epochs=3)
    a = train_network(sequences, 5, config)
    b = train_network(sequences, 5, config)
    c = train_network(sequences, 5, config, seed=8)
    assert all(np.array_equal(a.weights[k], b.weights[k]) for k in a.weights)
    assert not np.array_equal(a.weights["item"], c.weights["item"])
    # torch's global state is left as it was
    assert torch.get_num_threads() == 1 and not torch.are_deterministic_algorithms_enabled()


def test_learning_between_trainings_keeps_the_network(trained: SASRec) -> None:
    again = load(trained.to_bytes())
    assert isinstance(again, SASRec)
    before = again.network
    again.learn("later", "a", 1.0)
    again.learn("later", "fresh", 2.0)  # unknown to the network: the popularity fallback
    assert again.network is before
    answer = dict(again.recommend(["a", "b"], again.items()))
    assert answer["fresh"] == 0.0 and answer["c"] == 1.0
    assert again.recommend(["fresh", "a", "b"], 1) == [("c", 1.0)]  # skipped in the input
    assert again.recommend(["fresh"], 3) == again.recommend([], 3)
    assert again.training_sequences()[-1] == [again.catalogue.index[i] for i in ("a", "fresh")]
    again.retrain(epochs=1)  # a retrain covers the new item
    assert again.network is not None and again.network.items == again.items()
    assert again.recommend(["fresh"], 3) != again.recommend([], 3)


def test_retrain_every_trains_inside_learn() -> None:
    config = msgspec.structs.replace(TINY, epochs=2, retrain_every=10)
    recommender = SASRec(config)
    for number in range(25):
        recommender.learn(f"s{number // 5}", f"i{number % 5}", float(number))
        assert (recommender.network is None) == (number < 9)
    assert recommender.network is not None and recommender.network.items == 5
    snapshot = _state(recommender)["state"]
    assert isinstance(snapshot, list)
    assert snapshot[3:5] == [5, 2]  # five events since the second training


def test_validation_chooses_the_epochs() -> None:
    config = msgspec.structs.replace(TINY, epochs=60, eval_every=2, patience=3)
    checks: list[Progress] = []
    validation = [(["a", "b"], "c"), (["a"], "b")]
    model = train(pattern(), config, validation=validation, progress=checks.append)
    assert model.network is not None
    best = max(checks, key=lambda p: p.ndcg)
    assert model.network.epochs == best.epoch
    assert [p.epoch for p in checks] == list(range(2, checks[-1].epoch + 1, 2))
    # stopped after three checks without improvement, or ran out of epochs
    assert checks[-1].epoch == 60 or len(checks) - 1 - checks.index(best) == 3
    assert best.hr == 1.0 and best.full_hr == 1.0


def test_install_refuses_a_foreign_network(trained: SASRec) -> None:
    other = SASRec(msgspec.structs.replace(TINY, hidden=8))
    other.fit([("s", "a", 0.0), ("s", "b", 1.0)])
    with pytest.raises(ValueError):
        other.install(trained.network)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        Network(TINY, 3, {"item": np.zeros((4, 16), np.float32)})
    with pytest.raises(ValueError, match="outside"):
        train_network([[0, 5]], 3, TINY)


def test_settings_are_checked() -> None:
    for bad in ({"hidden": 10, "heads": 3}, {"dropout": 1.0}, {"maxlen": 0}, {"nope": 1}):
        with pytest.raises(ValueError):
            SASRec._configured({**msgspec.to_builtins(TINY), **bad})


def test_registered_with_torch() -> None:
    assert "sasrec" in RECOMMENDERS
    assert isinstance(RECOMMENDERS["sasrec"](), SASRec)
    assert Recommender._classes["sasrec"] is SASRec


def test_eval_trains_it_with_validation_never_the_test(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[tuple[list[tuple[str, str, float]], list[tuple[list[str], str]]]] = []

    class Spy(SASRec):
        def fit_sequences(
            self,
            events: Iterable[tuple[str, str, float]],
            validation: Sequence[tuple[Sequence[str], str]] | None = None,
            progress: object = None,
        ) -> SASRec:
            events = list(events)
            seen.append((events, [(list(h), a) for h, a in validation or ()]))
            return super().fit_sequences(events, validation)

    monkeypatch.setitem(RECOMMENDERS, "sasrec", lambda: Spy(TINY))
    path = tmp_path / "users.txt"
    lines = [f"u{u} {item}" for u in range(30) for item in ("a", "b", "c", "d")]
    path.write_text("\n".join(lines) + "\nv x\nv y\n")
    report = recommend_eval.evaluate_sequences(
        recommend_eval.read_sequences(path), ["sasrec"], negatives=3
    )
    events, validation = seen[0]
    assert validation == [(["a", "b"], "c")] * 30  # the second-last item, never "d"
    assert ("u0", "d", 0.0) not in events and ("v", "y", 0.0) in events
    assert report.protocol.points == 30 and report.results[0].recommender == "sasrec"
