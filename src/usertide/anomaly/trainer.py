"""Trains the session model in the background from the stored sessions.

Every ``interval`` seconds (or when asked: ``usertide train``, ``POST
/v1/models/session_anomaly/train``) the latest sessions' features are read from the
store, a detector fits a new version, its card (thresholds, percentiles) is computed
from the training scores, the version is stored in the registry, and a ``$model`` event
is appended so the engine switches to it at that point of the log.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import msgspec
import numpy as np

from usertide.anomaly.base import AnomalyModel, Detector
from usertide.anomaly.card import ModelCard, build_card
from usertide.anomaly.detectors import detector
from usertide.anomaly.session import (
    BASIC_FEATURES,
    BASIC_MODEL,
    MODEL_NAME,
    SessionModel,
    SessionModels,
)
from usertide.engine.core import model_event
from usertide.events import Event
from usertide.models.registry import ModelRegistry
from usertide.models.schedule import Schedule
from usertide.processors.features import FEATURES

log = logging.getLogger(__name__)

MIN_ROWS = 200  # fewer sessions than this and there is nothing to learn from yet
MAX_ROWS = 100_000


class NotEnoughData(Exception):
    pass


class SessionTrainer:
    def __init__(
        self,
        registry: ModelRegistry,
        models: SessionModels,
        detector: Detector,
        *,
        interval: float = 900.0,
        min_rows: int = MIN_ROWS,
        max_rows: int = MAX_ROWS,
    ) -> None:
        self.registry = registry
        self.models = models
        self.detector = detector
        self.interval = interval
        self.min_rows = min_rows
        self.max_rows = max_rows
        # Appends the event that activates a new version (unset: active at once).
        self.announce: Callable[[Event], object] | None = None
        self.schedule = Schedule("session model", interval, self.train_once, (NotEnoughData,))
        self._training = threading.Lock()

    def load(self, version: int) -> SessionModel | None:
        """A stored version (what :class:`SessionModels` reads on activation)."""
        stored = self.registry.get(MODEL_NAME, version)
        if stored is None:
            log.error("session model v%d is not stored", version)
            return None
        card = msgspec.convert(stored.info.meta.get("card"), ModelCard)
        if card.features != list(FEATURES):  # trained before the features changed
            log.error("session model v%d reads other features; not activated", version)
            return None
        model = self.detector_for(stored.info.meta).load(stored.data)
        basic = None
        companion = self.registry.get(BASIC_MODEL, version)
        if companion is not None:
            basic = (
                self.detector_for(companion.info.meta).load(companion.data),
                msgspec.convert(companion.info.meta.get("card"), ModelCard),
            )
        return SessionModel(version, model, card, basic)

    def detector_for(self, meta: dict[str, object]) -> Detector:
        kind = meta.get("kind")
        return self.detector if kind == self.detector.kind else detector(str(kind))

    def train_once(self) -> SessionModel:
        """Fit, store and announce a new version; raises NotEnoughData below min_rows."""
        with self._training:
            started = time.perf_counter()
            rows = self.registry.store.session_features(None, self.max_rows)
            usable = [(ended, f) for ended, f in rows if all(n in f for n in FEATURES)]
            if len(usable) < self.min_rows:
                raise NotEnoughData(
                    f"{len(usable)} sessions with features stored; training needs {self.min_rows}"
                )
            X = np.array([[f[n] for n in FEATURES] for _, f in usable], dtype=np.float64)
            fitted = fit_session_model(
                self.detector,
                X,
                trained_from=_iso(usable[0][0]),
                trained_to=_iso(usable[-1][0]),
            )
            model, card, basic = fitted.model, fitted.card, fitted.basic
            assert basic is not None
            card.metrics["fit_seconds"] = round(time.perf_counter() - started, 3)
            meta = {
                "kind": self.detector.kind,
                "features": list(FEATURES),
                "rows": len(X),
                "trained_from": card.trained_from,
                "trained_to": card.trained_to,
                "metrics": card.metrics,
                "card": card.to_builtins(),
            }
            version = self.registry.put(MODEL_NAME, model.to_bytes(), meta)
            self._store_basic(basic, version, card)
            trained = SessionModel(version, model, card, basic)
            self.models.add(trained)
            log.info("session model v%d (%s) from %d sessions", version, model.kind, len(X))
        if self.announce is None:
            self.models.activate(version)
        else:
            self.announce(model_event(MODEL_NAME, version, datetime.now(UTC)))
        return trained

    def _store_basic(
        self, basic: tuple[AnomalyModel, ModelCard], version: int, main: ModelCard
    ) -> None:
        model, card = basic
        card.trained_from, card.trained_to = main.trained_from, main.trained_to
        meta = {
            "kind": self.detector.kind,
            "features": list(BASIC_FEATURES),
            "rows": card.rows,
            "trained_from": card.trained_from,
            "trained_to": card.trained_to,
            "metrics": card.metrics,
            "card": card.to_builtins(),
            "companion_of": MODEL_NAME,
        }
        self.registry.put(BASIC_MODEL, model.to_bytes(), meta, version=version)

    def start(self) -> None:
        """Retrain every ``interval`` seconds (0: only when asked)."""
        self.schedule.start()

    def stop(self) -> None:
        self.schedule.stop()


def fit_session_model(
    detector: Detector, X: np.ndarray, version: int = 0, **card_extra: Any
) -> SessionModel:
    """A session model fitted on rows of FEATURES, as every version is: the full model,
    its companion on BASIC_FEATURES, and the card whose thresholds are quantiles of the
    combined training scores (``SessionModel.score``)."""
    model = detector.fit(X)
    rows = X[:, [FEATURES.index(name) for name in BASIC_FEATURES]]
    companion = detector.fit(rows)
    basic_card = build_card(
        BASIC_FEATURES, rows, companion.score_many(rows), metrics={"sessions": float(len(rows))}
    )
    scores = np.maximum(model.score_many(X), companion.score_many(rows))
    card = build_card(FEATURES, X, scores, metrics={"sessions": float(len(X))}, **card_extra)
    return SessionModel(version, model, card, (companion, basic_card))


def _iso(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).isoformat().replace("+00:00", "Z")
