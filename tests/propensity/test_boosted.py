"""BoostedTrees predicts what scikit-learn's HistGradientBoostingClassifier predicts."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.ensemble import HistGradientBoostingClassifier

from usertide.propensity.boosted import BoostedTrees


def fitted(seed: int = 0) -> tuple[HistGradientBoostingClassifier, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(3000, 6)) * [1, 10, 100, 0.1, 1, 5]
    X[rng.random(X.shape) < 0.05] = np.nan  # missing values take the learned side
    y = (np.nan_to_num(X[:, 0]) + np.nan_to_num(X[:, 1]) / 10 + rng.normal(size=3000)) > 1.5
    model = HistGradientBoostingClassifier(max_iter=60, random_state=seed).fit(X, y.astype(int))
    return model, X


def test_probabilities_match_predict_proba() -> None:
    model, X = fitted()
    trees = BoostedTrees.from_sklearn(model)
    probe = np.vstack([X[:500], np.full((1, 6), np.nan), np.full((1, 6), 1e9)])
    expected = model.predict_proba(probe)[:, 1]
    assert np.allclose(trees.probability(probe), expected, rtol=0, atol=1e-9)


def test_bytes_round_trip_and_refusals() -> None:
    model, X = fitted(1)
    trees = BoostedTrees.from_sklearn(model)
    again = BoostedTrees.from_bytes(trees.to_bytes())
    assert np.array_equal(again.probability(X[:200]), trees.probability(X[:200]))
    for data in (b"", b"garbage", b"PK\x03\x04x"):
        with pytest.raises(ValueError):
            BoostedTrees.from_bytes(data)
    with pytest.raises(ValueError, match="6 features"):
        trees.probability(np.zeros((2, 3)))
    with pytest.raises(TypeError):
        BoostedTrees.from_sklearn(object())
