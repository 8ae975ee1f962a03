"""The conversion model: versions in force, fitting, and batch scoring of sessions."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

import numpy as np
from sklearn.metrics import roc_auc_score  # type: ignore[import-untyped]

from usertide.engine.core import model_event
from usertide.events import Event
from usertide.models.registry import ModelRegistry
from usertide.models.schedule import Schedule
from usertide.propensity.boosted import BoostedTrees
from usertide.propensity.tracker import INPUTS

log = logging.getLogger(__name__)

MODEL_NAME: Final = "conversion"
KIND: Final = "hist_gradient_boosting"
MIN_ROWS: Final = 200
MIN_POSITIVES: Final = 10


class NotEnoughConversions(Exception):
    pass


@dataclass(frozen=True)
class ConversionModel:
    version: int
    trees: BoostedTrees

    def probabilities(self, rows: Sequence[Sequence[float]]) -> list[float]:
        if not rows:
            return []
        return [float(p) for p in self.trees.probability(np.asarray(rows, dtype=np.float64))]


class ConversionModels:
    """The version in force (the engine's ``$model`` events switch it)."""

    def __init__(self, load: Callable[[int], ConversionModel | None]) -> None:
        self._load = load
        self.current: ConversionModel | None = None
        self._trained: dict[int, ConversionModel] = {}
        self._lock = threading.Lock()

    def add(self, model: ConversionModel) -> None:
        with self._lock:
            self._trained[model.version] = model

    def activate(self, version: int) -> None:
        if version <= 0:
            self.current = None
            return
        with self._lock:
            model = self._trained.pop(version, None)
        self.current = model or self._load(version) or self.current

    @property
    def version(self) -> int:
        return self.current.version if self.current is not None else 0


def fit(X: np.ndarray, y: np.ndarray, seed: int = 0) -> tuple[BoostedTrees, dict[str, float]]:
    """HistGradientBoosting with early stopping on the latest 20 % (rows oldest first)."""
    from sklearn.ensemble import HistGradientBoostingClassifier  # type: ignore[import-untyped]

    cut = int(len(X) * 0.8)
    model = HistGradientBoostingClassifier(
        learning_rate=0.1, max_leaf_nodes=15, min_samples_leaf=20, l2_regularization=1.0,
        max_iter=200, early_stopping=True, validation_fraction=0.2, random_state=seed,
    )  # fmt: skip
    model.fit(X, y)
    metrics: dict[str, float] = {"rows": float(len(X)), "positives": float(y.sum())}
    held_y = y[cut:]
    if 0 < held_y.sum() < len(held_y):  # the latest part, for the card (it was trained on)
        probabilities = model.predict_proba(X[cut:])[:, 1]
        metrics["roc_auc_latest_fifth"] = float(roc_auc_score(held_y, probabilities))
    return BoostedTrees.from_sklearn(model), metrics


class ConversionTrainer:
    def __init__(
        self, registry: ModelRegistry, models: ConversionModels, *, interval: float = 3600.0
    ) -> None:
        self.registry = registry
        self.models = models
        self.interval = interval
        self.announce: Callable[[Event], object] | None = None
        self.schedule = Schedule(
            "conversion model", interval, self.train_once, (NotEnoughConversions,)
        )

    def load(self, version: int) -> ConversionModel | None:
        stored = self.registry.get(MODEL_NAME, version)
        if stored is None or stored.info.meta.get("features") != list(INPUTS):
            log.error("conversion model v%d is not stored or reads other inputs", version)
            return None
        return ConversionModel(version, BoostedTrees.from_bytes(stored.data))

    def rows(self) -> tuple[np.ndarray, np.ndarray, float, float]:
        """Finished sessions, oldest first: their inputs when they converted (else at their
        end), and whether they converted."""
        records = self.registry.store.closed_conversions(100_000)
        X, y, ended = [], [], []
        for end, conversion in records:
            inputs = conversion.get("at_goal") or conversion.get("inputs")
            if isinstance(inputs, list) and len(inputs) == len(INPUTS):
                X.append(inputs)
                y.append(1 if conversion.get("converted") else 0)
                ended.append(end)
        if len(X) < MIN_ROWS or sum(y) < MIN_POSITIVES:
            raise NotEnoughConversions(
                f"{len(X)} finished sessions, {sum(y)} converted; training needs {MIN_ROWS} "
                f"and {MIN_POSITIVES}"
            )
        return np.asarray(X), np.asarray(y), min(ended), max(ended)

    def train_once(self) -> ConversionModel:
        started = time.perf_counter()
        X, y, first, last = self.rows()
        trees, metrics = fit(X, y)
        metrics["fit_seconds"] = round(time.perf_counter() - started, 3)
        meta: dict[str, Any] = {
            "kind": KIND,
            "features": list(INPUTS),
            "rows": len(X),
            "trained_from": _iso(first),
            "trained_to": _iso(last),
            "metrics": metrics,
        }
        version = self.registry.put(MODEL_NAME, trees.to_bytes(), meta)
        model = ConversionModel(version, trees)
        self.models.add(model)
        if self.announce is None:
            self.models.activate(version)
        else:
            self.announce(model_event(MODEL_NAME, version, datetime.now(UTC)))
        return model

    def start(self) -> None:
        """Retrain every ``interval`` seconds (0: only when asked)."""
        self.schedule.start()

    def stop(self) -> None:
        self.schedule.stop()


def _iso(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).isoformat().replace("+00:00", "Z")
