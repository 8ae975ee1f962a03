"""CompiledForest scores exactly what scikit-learn's IsolationForest scores."""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sklearn.ensemble import IsolationForest
from sklearn.metrics import roc_auc_score

from usertide.anomaly.forest import CompiledForest, float32_cut

CASES: list[dict[str, Any]] = [
    {},
    {"contamination": 0.05},
    {"contamination": 0.2, "max_samples": 64},
    {"max_features": 0.5, "bootstrap": False},
    {"max_features": 0.5, "bootstrap": True},
    {"max_features": 0.8, "bootstrap": True, "max_samples": 0.25},
    {"max_samples": 1000},
    {"max_samples": 2, "n_estimators": 7},
]


def fitted(seed: int, n_features: int = 8, **params: Any) -> tuple[IsolationForest, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(1500, n_features)) * rng.uniform(0.1, 100, size=n_features)
    X[:40] += rng.normal(scale=8, size=(40, n_features))  # a few outliers
    params = {"n_estimators": 40, "random_state": seed, **params}
    return IsolationForest(**params).fit(X), X


def test_float32_cut_decides_like_a_float32_cast() -> None:
    rng = np.random.default_rng(0)
    t = np.concatenate(
        [rng.normal(size=400) * 10.0 ** rng.integers(-40, 38, size=400),
         np.array([0.0, -0.0, 1.0, -1.0, 1e-45, -1e-45, 3.4028234e38, -3.4028234e38])]
    )  # fmt: skip
    cut = float32_cut(t)
    f32 = t.astype(np.float32)
    with np.errstate(over="ignore"):  # the float32 after the largest is infinite
        below = np.nextafter(f32, np.float32(-np.inf)).astype(np.float64)
        above = np.nextafter(f32, np.float32(np.inf)).astype(np.float64)
    mids = (f32.astype(np.float64) + np.where(np.isinf(above), 2.0**128, above)) / 2
    probes = [t, cut, np.nextafter(cut, np.inf), np.nextafter(cut, -np.inf), below, mids,
              (below + f32) / 2, f32.astype(np.float64), np.nextafter(t, np.inf)]  # fmt: skip
    with np.errstate(over="ignore"):
        for v in probes:
            np.testing.assert_array_equal(v.astype(np.float32) <= t, v <= cut)


@pytest.mark.parametrize("params", CASES)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_scores_equal_scikit_learn(seed: int, params: dict[str, Any]) -> None:
    model, X = fitted(seed, **params)
    forest = CompiledForest.from_sklearn(model)
    rows = np.concatenate([X[:300], np.random.default_rng(seed + 9).normal(size=(300, 8)) * 50])
    expected = model.score_samples(rows)
    # the same float operations in the same order: equal to the bit, not just close
    np.testing.assert_array_equal(forest.score_samples(rows), expected)
    ours = [forest.score_one(row) for row in rows.tolist()]
    np.testing.assert_allclose(ours, expected, rtol=0, atol=1e-12)
    assert forest.score_one(rows[0]) == ours[0]  # a numpy row too
    assert forest.offset == model.offset_


def test_values_on_and_around_the_thresholds() -> None:
    """Inputs are cast to float32 before the comparisons: values next to a threshold,
    beyond float32's range and infinite land in the same leaves as in scikit-learn."""
    model, _ = fitted(3, max_features=0.6)
    forest = CompiledForest.from_sklearn(model)
    inner = forest.feature >= 0
    rng = np.random.default_rng(3)
    rows = np.empty((600, 8))
    for column in range(8):
        t = forest.threshold[inner & (forest.feature == column)]
        near = np.concatenate([t, np.nextafter(t, np.inf), np.nextafter(t, -np.inf),
                               float32_cut(t), np.nextafter(float32_cut(t), np.inf)])  # fmt: skip
        rows[:, column] = rng.choice(near, size=600)
    rows[:20, 0] = [np.inf, -np.inf, 1e300, -1e300, 3.4028235e38, 3.40282357e38] * 3 + [0, -0.0]
    with np.errstate(over="ignore"):  # scikit-learn's float32 cast warns on 1e300
        expected = model.score_samples(rows)
    np.testing.assert_array_equal(forest.score_samples(rows), expected)
    ours = [forest.score_one(row) for row in rows.tolist()]
    np.testing.assert_allclose(ours, expected, rtol=0, atol=1e-12)


def test_a_stored_forest_scores_the_same() -> None:
    model, X = fitted(4, max_features=0.7, bootstrap=True)
    forest = CompiledForest.from_sklearn(model)
    loaded = CompiledForest.from_bytes(forest.to_bytes())
    np.testing.assert_array_equal(loaded.score_samples(X), forest.score_samples(X))
    assert [loaded.score_one(r) for r in X[:50].tolist()] == [
        forest.score_one(r) for r in X[:50].tolist()
    ]
    assert (loaded.n_features, loaded.max_samples, loaded.offset, loaded.max_depth) == (
        forest.n_features, forest.max_samples, forest.offset, forest.max_depth
    )  # fmt: skip
    named = CompiledForest.from_bytes(_with_names(forest, [f"f{i}" for i in range(8)]).to_bytes())
    assert named.feature_names == tuple(f"f{i}" for i in range(8))


def _with_names(forest: CompiledForest, names: list[str]) -> CompiledForest:
    return CompiledForest(
        feature=forest.feature, threshold=forest.threshold, left=forest.left,
        right=forest.right, value=forest.value, roots=forest.roots,
        n_features=forest.n_features, max_samples=forest.max_samples,
        offset=forest.offset, feature_names=names,
    )  # fmt: skip


def test_nan_and_wrong_width_are_refused() -> None:
    model, X = fitted(5)
    forest = _with_names(CompiledForest.from_sklearn(model), [f"f{i}" for i in range(8)])
    rows = X[:10].copy()
    rows[4, 3] = np.nan
    with pytest.raises(ValueError, match=r"feature 3 \('f3'\) is NaN"):
        forest.score_samples(rows)
    with pytest.raises(ValueError, match=r"feature 3 \('f3'\) is NaN"):
        forest.score_one(rows[4])
    with pytest.raises(ValueError, match="8 features"):
        forest.score_samples(X[:, :7])
    with pytest.raises(ValueError, match="8 features"):
        forest.score_samples(X[0])
    with pytest.raises(ValueError, match="8 features"):
        forest.score_one([1.0] * 9)
    both_infinities = [np.inf, -np.inf] + [0.0] * 6  # sums to NaN, but holds no NaN
    assert forest.score_one(both_infinities) == pytest.approx(
        model.score_samples([both_infinities])[0], abs=1e-12
    )


def test_from_bytes_refuses_what_it_did_not_write() -> None:
    forest = CompiledForest.from_sklearn(fitted(6, n_estimators=3)[0])
    good = dict(np.load(io.BytesIO(forest.to_bytes()), allow_pickle=False))

    def archive(**changes: Any) -> bytes:
        buffer = io.BytesIO()
        np.savez(buffer, **{**good, **changes})
        return buffer.getvalue()

    left = good["left"].copy()
    left[0] = 0  # a cycle back to the root
    objects = np.array([{"x": 1}], dtype=object)  # would need pickle to load
    threshold = good["threshold"].copy()
    threshold[0] = np.nan
    for blob in [b"", b"not a forest", archive(left=left), archive(feature=objects),
                 archive(threshold=threshold), archive(value=good["value"].astype(np.int64)),
                 archive(header=np.frombuffer(b'{"version": 99}', dtype=np.uint8))]:  # fmt: skip
        with pytest.raises(ValueError):
            CompiledForest.from_bytes(blob)


def test_from_sklearn_wants_a_fitted_isolation_forest() -> None:
    with pytest.raises(TypeError):
        CompiledForest.from_sklearn(IsolationForest())
    with pytest.raises(TypeError):
        CompiledForest.from_sklearn(object())


SHARED = Path(os.environ.get("USERTIDE_SHARED_DATA", "/work/shared/data")) / "adbench"
ADBENCH = sorted(SHARED.glob("*.npz")) if SHARED.is_dir() else []


@pytest.mark.skipif(not ADBENCH, reason=f"no ADBench data under {SHARED}")
def test_adbench_roc_auc_equals_scikit_learn() -> None:
    for path in ADBENCH:
        with np.load(path, allow_pickle=False) as data:
            X, y = data["X"], data["y"]
        model = IsolationForest(n_estimators=100, max_samples=256, random_state=0).fit(X)
        expected = model.score_samples(X)
        ours = CompiledForest.from_sklearn(model).score_samples(X)
        np.testing.assert_array_equal(ours, expected, err_msg=path.name)
        assert roc_auc_score(y, -ours) == roc_auc_score(y, -expected), path.name
