"""Every session detector (anomaly/detectors.py) keeps the contract of anomaly/base.py."""

from __future__ import annotations

import numpy as np
import pytest

from usertide.anomaly.base import Detector
from usertide.anomaly.detectors import DETECTORS, detector


@pytest.fixture(params=sorted(DETECTORS))
def made(request: pytest.FixtureRequest) -> Detector:
    return DETECTORS[request.param]()


def sessions(seed: int = 0, n: int = 1500) -> np.ndarray:
    rng = np.random.default_rng(seed)
    X = np.abs(rng.normal(loc=[3, 5, 60], scale=[1, 2, 20], size=(n, 3)))
    return X


def test_scores_one_row_as_many_rows(made: Detector) -> None:
    X = sessions()
    model = made.fit(X)
    many = model.score_many(X[:200])
    assert model.n_features == 3
    assert [model.score(list(row)) for row in X[:200]] == pytest.approx(many, abs=1e-12)


def test_outliers_score_higher(made: Detector) -> None:
    model = made.fit(sessions())
    normal = model.score_many(sessions(seed=1, n=300))
    outliers = model.score_many(np.array([[40.0, 300.0, 2.0], [25.0, 1.0, 900.0]]))
    assert outliers.min() > np.quantile(normal, 0.99)


def test_bytes_round_trip_scores_the_same(made: Detector) -> None:
    X = sessions()
    model = made.fit(X)
    again = made.load(model.to_bytes())
    assert again.kind == model.kind
    assert np.array_equal(again.score_many(X[:300]), model.score_many(X[:300]))
    assert again.score([3.0, 5.0, 60.0]) == model.score([3.0, 5.0, 60.0])


@pytest.mark.parametrize("data", [b"", b"not a model", b"PK\x03\x04garbage"])
def test_load_refuses_what_it_did_not_write(made: Detector, data: bytes) -> None:
    with pytest.raises(ValueError):
        made.load(data)


def test_fitting_is_deterministic(made: Detector) -> None:
    X = sessions()
    assert made.fit(X).to_bytes() == type(made)().fit(X).to_bytes()


def test_fitting_needs_rows(made: Detector) -> None:
    with pytest.raises(ValueError):
        made.fit(np.zeros((1, 3)))


def test_unknown_kind_is_named() -> None:
    with pytest.raises(ValueError, match="unknown anomaly detector 'nope'"):
        detector("nope")
