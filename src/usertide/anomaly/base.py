"""The session-anomaly extension point: a detector fits a model; a model scores sessions.

A model is immutable once fitted: the engine scores with it on every session update
and a new version replaces it whole (so a score is a pure function of the features and
the version). Models are stored as data (``to_bytes``; never pickle) in the model
registry. Scores are "higher is more anomalous"; each model brings its own thresholds,
set at fitting time from the training scores. Every implementation passes the
contract suite in ``tests/anomaly/test_detector_contract.py``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import ClassVar

import numpy as np
import numpy.typing as npt

Matrix = npt.NDArray[np.float64]


class AnomalyModel(ABC):
    kind: ClassVar[str]

    @property
    @abstractmethod
    def n_features(self) -> int: ...

    @abstractmethod
    def score(self, x: Sequence[float]) -> float:
        """One session's score (the hot path: microseconds, no numpy call)."""

    @abstractmethod
    def score_many(self, X: Matrix) -> Matrix:
        """The scores of many rows; equal to :meth:`score` row by row."""

    @abstractmethod
    def to_bytes(self) -> bytes:
        """A safe, self-describing encoding (data only)."""


class Detector(ABC):
    """How a model of one kind is fitted from the feature rows of recent sessions."""

    kind: ClassVar[str]

    @abstractmethod
    def fit(self, X: Matrix) -> AnomalyModel: ...

    @abstractmethod
    def load(self, data: bytes) -> AnomalyModel:
        """The model that ``to_bytes`` wrote; refuses anything else with ValueError."""
