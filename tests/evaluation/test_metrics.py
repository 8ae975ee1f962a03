"""The metrics against scikit-learn's ``roc_auc_score`` and ``roc_curve`` as oracles."""

import numpy as np
import numpy.typing as npt
import pytest
from sklearn.metrics import roc_auc_score, roc_curve  # type: ignore[import-untyped]

from usertide.evaluation.metrics import (
    challenge_rate_at_recall,
    detection_rate_at_fpr,
    roc_auc,
)

Data = tuple[npt.NDArray[np.float64], npt.NDArray[np.bool_]]


def random_data(seed: int) -> Data:
    """Scores with a weak signal, heavy ties (rounded) on even seeds, class imbalance."""
    rng = np.random.default_rng(seed)
    n = int(rng.integers(20, 3000))
    labels = rng.random(n) < rng.uniform(0.02, 0.5)
    labels[0], labels[1] = True, False  # both classes present
    scores = rng.normal(size=n) + labels * rng.uniform(0, 2)
    if seed % 2 == 0:
        scores = np.round(scores, 1)
    return scores, labels


def oracle_detection(
    scores: npt.NDArray[np.float64], labels: npt.NDArray[np.bool_], fpr: float
) -> float:
    fprs, tprs, _ = roc_curve(labels, scores, drop_intermediate=False)
    return float(tprs[fprs <= fpr].max())


def oracle_challenge(
    scores: npt.NDArray[np.float64], labels: npt.NDArray[np.bool_], recall: float
) -> float:
    fprs, tprs, _ = roc_curve(labels, scores, drop_intermediate=False)
    return float(fprs[tprs >= recall].min())


SEEDS = range(12)


@pytest.mark.parametrize("seed", SEEDS)
def test_roc_auc_matches_sklearn(seed: int) -> None:
    scores, labels = random_data(seed)
    assert roc_auc(scores, labels) == pytest.approx(roc_auc_score(labels, scores), abs=1e-12)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("fpr", [0.0, 0.01, 0.05, 1.0])
def test_detection_rate_matches_sklearn_roc_curve(seed: int, fpr: float) -> None:
    scores, labels = random_data(seed)
    assert detection_rate_at_fpr(scores, labels, fpr) == pytest.approx(
        oracle_detection(scores, labels, fpr), abs=1e-12
    )


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("recall", [0.5, 0.99, 1.0])
def test_challenge_rate_matches_sklearn_roc_curve(seed: int, recall: float) -> None:
    scores, labels = random_data(seed)
    assert challenge_rate_at_recall(scores, labels, recall) == pytest.approx(
        oracle_challenge(scores, labels, recall), abs=1e-12
    )


def test_exact_budgets() -> None:
    # 100 legit at 0..99, so a 1 % budget allows exactly one false positive.
    legit = np.arange(100.0)
    attacks = np.array([98.5, 99.5, 100.5, 50.0])
    scores = np.concatenate((legit, attacks))
    labels = np.concatenate((np.zeros(100, bool), np.ones(4, bool)))
    assert detection_rate_at_fpr(scores, labels, 0.01) == 0.75  # above 98: flags legit 99
    assert detection_rate_at_fpr(scores, labels, 0.0) == 0.5  # above 99: no legit
    # Catching 3 of 4 attacks (75 %) needs a threshold at 98.5: 1 legit (99) challenged.
    assert challenge_rate_at_recall(scores, labels, 0.75) == 0.01
    assert challenge_rate_at_recall(scores, labels, 1.0) == 0.5  # down to 50: 50..99 challenged


def test_perfect_inverted_and_useless_scores() -> None:
    labels = np.array([0, 0, 0, 1, 1], dtype=bool)
    perfect = np.array([0.1, 0.2, 0.3, 0.8, 0.9])
    assert roc_auc(perfect, labels) == 1.0
    assert detection_rate_at_fpr(perfect, labels, 0.0) == 1.0
    assert challenge_rate_at_recall(perfect, labels, 1.0) == 0.0
    assert roc_auc(-perfect, labels) == 0.0
    constant = np.full(5, 0.5)
    assert roc_auc(constant, labels) == 0.5
    assert detection_rate_at_fpr(constant, labels, 0.5) == 0.0  # ties flag all or nothing
    assert challenge_rate_at_recall(constant, labels, 0.1) == 1.0


def test_plain_sequences_are_accepted() -> None:
    assert roc_auc([0.1, 0.9], [False, True]) == 1.0
    assert roc_auc([0.1, 0.9], [0, 1]) == 1.0


@pytest.mark.parametrize(
    ("scores", "labels"),
    [
        ([0.1, 0.2], [True, True]),  # no legit
        ([0.1, 0.2], [False, False]),  # no attack
        ([0.1, float("nan")], [False, True]),
        ([0.1, 0.2, 0.3], [False, True]),
    ],
)
def test_bad_input_is_refused(scores: list[float], labels: list[bool]) -> None:
    for metric in (roc_auc, detection_rate_at_fpr, challenge_rate_at_recall):
        with pytest.raises(ValueError):
            metric(scores, labels)


def test_rates_are_checked() -> None:
    with pytest.raises(ValueError):
        detection_rate_at_fpr([0.1, 0.2], [False, True], 1.5)
    with pytest.raises(ValueError):
        challenge_rate_at_recall([0.1, 0.2], [False, True], 0.0)
