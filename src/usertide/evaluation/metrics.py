"""Ranking metrics for a detector's scores: higher score = more suspicious, label 1 = attack.

Every metric flags an attempt when its score is at or above a threshold and looks only at
the order of the scores, never their scale. Ties count as one threshold step (a detector
cannot flag half of a group of equal scores), as in scikit-learn's ``roc_curve``.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]


def _prepare(scores: npt.ArrayLike, labels: npt.ArrayLike) -> tuple[FloatArray, FloatArray]:
    """(attack scores, legit scores); raises ``ValueError`` unless both classes are present."""
    values = np.asarray(scores, dtype=np.float64)
    truth = np.asarray(labels).astype(bool)
    if values.ndim != 1 or values.shape != truth.shape:
        raise ValueError("scores and labels must be 1-d and of the same length")
    if not np.isfinite(values).all():
        raise ValueError("scores must be finite")
    positives, negatives = values[truth], values[~truth]
    if positives.size == 0 or negatives.size == 0:
        raise ValueError("needs at least one attack and one legitimate score")
    return positives, negatives


def roc_auc(scores: npt.ArrayLike, labels: npt.ArrayLike) -> float:
    """Area under the ROC curve: the chance that a random attack outscores a random
    legitimate attempt, ties counting one half (Mann-Whitney U with mid-ranks)."""
    positives, negatives = _prepare(scores, labels)
    combined = np.concatenate((positives, negatives))
    _, inverse, counts = np.unique(combined, return_inverse=True, return_counts=True)
    mid_ranks = np.cumsum(counts) - (counts - 1) / 2.0  # 1-based average rank of each value
    rank_sum = float(mid_ranks[inverse[: positives.size]].sum())
    n_pos, n_neg = positives.size, negatives.size
    return (rank_sum - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg)


def detection_rate_at_fpr(scores: npt.ArrayLike, labels: npt.ArrayLike, fpr: float = 0.01) -> float:
    """The largest share of attacks flagged by a threshold that flags at most ``fpr`` of
    the legitimate attempts."""
    if not 0.0 <= fpr <= 1.0:
        raise ValueError("fpr must be within [0, 1]")
    positives, negatives = _prepare(scores, labels)
    n_neg = negatives.size
    allowed = _largest_count_within(fpr, n_neg)  # false positives the budget allows
    if allowed >= n_neg:
        return 1.0
    # Flag only what scores strictly above the (allowed+1)-th highest legitimate score.
    cutoff = np.sort(negatives)[n_neg - 1 - allowed]
    return float(np.count_nonzero(positives > cutoff)) / positives.size


def challenge_rate_at_recall(
    scores: npt.ArrayLike, labels: npt.ArrayLike, recall: float = 0.99
) -> float:
    """The share of legitimate attempts challenged by the highest threshold that still
    flags at least ``recall`` of the attacks."""
    if not 0.0 < recall <= 1.0:
        raise ValueError("recall must be within (0, 1]")
    positives, negatives = _prepare(scores, labels)
    needed = _smallest_count_reaching(recall, positives.size)
    threshold = np.sort(positives)[positives.size - needed]  # the needed-th highest attack
    return float(np.count_nonzero(negatives >= threshold)) / negatives.size


def _largest_count_within(rate: float, total: int) -> int:
    """The largest k with k / total <= rate, computed as the float comparison is made."""
    k = min(total, math.floor(rate * total))
    while k < total and (k + 1) / total <= rate:
        k += 1
    while k > 0 and k / total > rate:
        k -= 1
    return k


def _smallest_count_reaching(rate: float, total: int) -> int:
    """The smallest k >= 1 with k / total >= rate, computed as the float comparison is made."""
    k = max(1, min(total, math.ceil(rate * total)))
    while k > 1 and (k - 1) / total >= rate:
        k -= 1
    while k < total and k / total < rate:
        k += 1
    return k
