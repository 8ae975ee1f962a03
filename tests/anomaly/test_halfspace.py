"""HalfSpaceModel scores exactly what River's HalfSpaceTrees scores, and follows drift."""

from __future__ import annotations

import io
from typing import Any

import numpy as np
import pytest
from river.anomaly import HalfSpaceTrees

from usertide.anomaly.halfspace import HalfSpaceModel, HalfSpaceTreesDetector


def traffic(seed: int, n: int, loc: list[float], scale: list[float]) -> np.ndarray:
    return np.abs(np.random.default_rng(seed).normal(loc=loc, scale=scale, size=(n, len(loc))))


def scaled(X: np.ndarray, rows: np.ndarray) -> list[dict[int, float]]:
    """``rows`` scaled with the range of ``X``, as River's input."""
    low, span = X.min(axis=0), X.max(axis=0) - X.min(axis=0)
    return [dict(enumerate(r)) for r in ((rows - low) / np.where(span > 0, span, 1.0)).tolist()]


def river_online(X: np.ndarray, **params: Any) -> Any:
    """River's half-space trees fed every row in order, from the first row that makes
    the last window end on the last row."""
    hst: Any = HalfSpaceTrees(**params)
    for x in scaled(X, X[len(X) % params["window_size"] :]):
        hst.learn_one(x)
    return hst


def probes(X: np.ndarray, seed: int) -> np.ndarray:
    """Rows like the training rows, wider ones, and far beyond the training range."""
    rng = np.random.default_rng(seed)
    spread = X.std(axis=0)
    wide = X.mean(axis=0) + rng.normal(size=(100, X.shape[1])) * spread * 4
    far = np.array([X.min(axis=0) - 1e6, X.max(axis=0) * 1e12, X.min(axis=0)])
    return np.concatenate([X[:300], rng.permutation(X)[:100], wide, far])


@pytest.fixture(scope="module")
def stream() -> np.ndarray:
    return traffic(0, 1610, loc=[3, 5, 60, 0.2], scale=[1, 2, 20, 0.1])


@pytest.fixture(scope="module")
def fitted(stream: np.ndarray) -> HalfSpaceModel:
    return HalfSpaceTreesDetector().fit(stream)


def test_scores_equal_river_learning_online(stream: np.ndarray, fitted: HalfSpaceModel) -> None:
    hst = river_online(stream, n_trees=25, height=10, window_size=250, seed=0)
    rows = probes(stream, 1)
    expected = [hst.score_one(x) for x in scaled(stream, rows)]
    # integer totals: equal to the bit, not just within 1e-9
    assert [fitted.score(r) for r in rows.tolist()] == expected
    assert fitted.score_many(rows).tolist() == expected
    assert fitted.score(rows[0]) == expected[0]  # a numpy row too
    assert 0.0 <= min(expected) < max(expected) <= 1.0


def test_only_reachable_nodes_are_kept(fitted: HalfSpaceModel) -> None:
    full = fitted.n_trees * (2 ** (fitted.height + 1) - 1)
    assert fitted.n_trees == 25 and len(fitted.feature) < full / 20
    assert len(fitted.to_bytes()) < 50_000


def test_fewer_rows_than_the_window_make_the_window() -> None:
    X = traffic(2, 120, loc=[1, 10, 100], scale=[0.5, 3, 30])
    model = HalfSpaceTreesDetector(n_trees=10, height=8, seed=3).fit(X)
    hst = river_online(X, n_trees=10, height=8, window_size=120, seed=3)
    rows = probes(X, 2)
    assert model.window_size == 120
    assert model.score_many(rows).tolist() == [hst.score_one(x) for x in scaled(X, rows)]


def test_a_feature_constant_in_training_is_shifted_not_scaled() -> None:
    X = traffic(3, 600, loc=[3, 5, 60], scale=[1, 2, 20])
    X[:, 1] = 0.0  # e.g. no failed sign-in among the training sessions
    model = HalfSpaceTreesDetector(height=10).fit(X)
    hst = river_online(X, n_trees=25, height=10, window_size=250, seed=0)
    rows = probes(X, 3)
    assert model.score_many(rows).tolist() == [hst.score_one(x) for x in scaled(X, rows)]
    usual = [3.0, 0.0, 60.0]
    assert model.score([3.0, 1.0, 60.0]) > model.score(usual)


def test_after_a_drift_the_new_normal_is_normal() -> None:
    before = traffic(4, 2000, loc=[3, 5, 60], scale=[1, 2, 20])
    after = traffic(5, 2000, loc=[8, 14, 160], scale=[1, 2, 20])
    # the default height only costs time here (River builds every node of every tree)
    model = HalfSpaceTreesDetector(height=10).fit(np.concatenate([before, after]))
    recent = np.quantile(model.score_many(after[-250:]), 0.99)
    new_normal = model.score_many(traffic(6, 500, loc=[8, 14, 160], scale=[1, 2, 20]))
    old_normal = model.score_many(traffic(7, 500, loc=[3, 5, 60], scale=[1, 2, 20]))
    assert np.mean(new_normal > recent) < 0.05
    assert np.median(old_normal) > recent  # the traffic of before the drift stands out


def test_a_stored_model_scores_the_same(stream: np.ndarray, fitted: HalfSpaceModel) -> None:
    loaded = HalfSpaceTreesDetector().load(fitted.to_bytes())
    rows = probes(stream, 4)
    assert loaded.score_many(rows).tolist() == fitted.score_many(rows).tolist()
    assert [loaded.score(r) for r in rows[:50].tolist()] == [
        fitted.score(r) for r in rows[:50].tolist()
    ]
    assert (loaded.height, loaded.window_size, loaded.n_features) == (10, 250, 4)


def test_load_refuses_what_it_did_not_write() -> None:
    model = HalfSpaceTreesDetector(n_trees=3, height=6).fit(traffic(8, 400, [1, 2], [1, 1]))
    good = dict(np.load(io.BytesIO(model.to_bytes()), allow_pickle=False))

    def archive(**changes: Any) -> bytes:
        buffer = io.BytesIO()
        np.savez(buffer, **{**good, **changes})
        return buffer.getvalue()

    def changed(name: str, index: int, value: Any) -> bytes:
        array = good[name].copy()
        array[index] = value
        return archive(**{name: array})

    def header(text: str) -> bytes:
        return archive(header=np.frombuffer(text.encode(), dtype=np.uint8))

    inner = int(np.flatnonzero(good["feature"] >= 0)[0])
    child = int(good["left"][inner])
    blobs = [
        changed("left", inner, inner),  # a cycle
        changed("left", inner, len(good["left"])),  # out of the table
        changed("feature", inner, 2),  # there are two features
        changed("threshold", inner, 1.5),
        changed("threshold", inner, np.nan),
        changed("mass", child, good["mass"][child] + 1),  # children no longer add up
        changed("mass", 0, 0),
        changed("scale", 0, 0.0),
        changed("low", 1, np.inf),
        archive(feature=np.array([{"x": 1}], dtype=object)),  # would need pickle to load
        archive(mass=good["mass"].astype(np.float64)),
        header('{"version": 99, "kind": "half_space_trees", "height": 6, "window_size": 250}'),
        header('{"version": 1, "kind": "isolation_forest", "height": 6, "window_size": 250}'),
        header('{"version": 1, "kind": "half_space_trees", "height": "6", "window_size": 250}'),
        header('{"version": 1, "kind": "half_space_trees", "height": 5, "window_size": 250}'),
        header("[1]"),
    ]
    for blob in [b"", b"not a model", *blobs]:
        with pytest.raises(ValueError):
            HalfSpaceModel.from_bytes(blob)


def test_nan_wrong_width_and_non_finite_training_are_refused(fitted: HalfSpaceModel) -> None:
    row = [3.0, 5.0, np.nan, 0.2]
    with pytest.raises(ValueError, match="feature 2 is NaN"):
        fitted.score(row)
    with pytest.raises(ValueError, match="feature 2 is NaN"):
        fitted.score_many(np.array([row]))
    with pytest.raises(ValueError, match="4 features"):
        fitted.score([1.0] * 3)
    with pytest.raises(ValueError, match="4 features"):
        fitted.score_many(np.ones((2, 5)))
    both_infinities = [np.inf, -np.inf, 60.0, 0.2]  # sums to NaN, but holds no NaN
    assert fitted.score(both_infinities) == fitted.score_many(np.array([both_infinities]))[0]
    with pytest.raises(ValueError, match="finite"):
        HalfSpaceTreesDetector().fit(np.array([[1.0, np.inf], [2.0, 3.0]]))
