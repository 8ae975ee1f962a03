"""The isolation-forest detector's score is scikit-learn's, negated (higher = stranger)."""

from __future__ import annotations

import numpy as np
from sklearn.ensemble import IsolationForest

from usertide.anomaly.isolation import IsolationForestDetector


def test_score_is_minus_sklearn_score_samples_for_the_same_trees() -> None:
    rng = np.random.default_rng(3)
    X = np.abs(rng.normal(size=(2000, 17))) * rng.uniform(0.1, 50, size=17)
    ours = IsolationForestDetector(random_state=5).fit(X)
    trees = IsolationForestDetector().n_estimators
    theirs = IsolationForest(n_estimators=trees, max_samples=256, random_state=5).fit(X)
    probe = np.abs(rng.normal(size=(500, 17))) * 30
    assert np.allclose(ours.score_many(probe), -theirs.score_samples(probe), rtol=0, atol=1e-9)
    assert abs(ours.score(list(probe[0])) + theirs.score_samples(probe[:1])[0]) <= 1e-9
