"""Session anomaly in the engine: every event of a session is scored by the session
model in force, and a session that crosses the model's thresholds is a detection.

The model is global (trained on everyone's sessions) and changes only at ``$model``
events in the log (see ``engine/core.py``), so a replay scores each event with the
version that scored it the first time. The state per user is the current session's
latest score and the level already reported (one detection per level per session).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, ClassVar, Final

import msgspec
import numpy as np

from usertide.anomaly.base import AnomalyModel, Matrix
from usertide.anomaly.card import ModelCard
from usertide.engine.base import Detection, Output, Processor, Reason, UserState, closing
from usertide.events import Event
from usertide.processors.features import FEATURES, BehaviourFeatures, named, vector

MODEL_NAME: Final = "session_anomaly"
# The original design's two features: each version also fits a companion model on them
# alone. A session's score is the higher of the two forests' (a session extreme only in
# volume is not diluted by sixteen ordinary features), and the companion alone answers
# /predict_behavior when a caller gives no other feature.
BASIC_MODEL: Final = "session_anomaly_basic"
BASIC_FEATURES: Final = ("clicks_per_minute", "pages_per_session")
_B0, _B1 = (FEATURES.index(name) for name in BASIC_FEATURES)
DETECTOR: Final = "session_anomaly"
RANK: Final = {"medium": 1, "high": 2}
MIN_EVENTS: Final = 3  # a session is judged from its third event on


@dataclass(frozen=True)
class SessionModel:
    """One version of the session model: the scorer and what it knows of its data."""

    version: int
    model: AnomalyModel
    card: ModelCard
    basic: tuple[AnomalyModel, ModelCard] | None = None  # on BASIC_FEATURES only
    _volume: Callable[[float, float], float] | None = field(
        default=None, init=False, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        if self.basic is not None:
            companion = self.basic[0]
            # Its two inputs are mostly small whole numbers (events in the last minute,
            # pages), so most sessions ask for a pair scored before: remember them.
            volume = lru_cache(maxsize=65_536)(lambda a, b: companion.score((a, b)))
            object.__setattr__(self, "_volume", volume)

    def score(self, x: Sequence[float]) -> float:
        """The session's score: the higher of the full model's and the companion's."""
        score = self.model.score(x)
        if self._volume is not None:
            volume = self._volume(x[_B0], x[_B1])
            if volume > score:
                return volume
        return score

    def score_many(self, X: Matrix) -> Matrix:
        scores = self.model.score_many(X)
        if self.basic is not None:
            scores = np.maximum(scores, self.basic[0].score_many(X[:, [_B0, _B1]]))
        return scores

    def reasons(self, x: Sequence[float], score: float) -> tuple[Reason, ...]:
        level = "99.9th" if score >= self.card.high else "99th"
        bound = self.card.high if score >= self.card.high else self.card.medium
        head = Reason(
            code="abnormal_session",
            message=(
                f"session anomaly score {score:.3f}, above the {level} percentile of "
                f"the {self.card.rows:,} sessions model v{self.version} learned from "
                f"({bound:.3f})"
            ),
            data={"score": score, "bound": bound, "model_version": self.version},
        )
        return (head, *self.card.reasons(x))


Loader = Callable[[int], SessionModel | None]


class SessionModels:
    """The version in force and recently used ones (to explain older scores)."""

    def __init__(self, load: Loader, keep: int = 8) -> None:
        self._load = load
        self.current: SessionModel | None = None
        self._cache: OrderedDict[int, SessionModel] = OrderedDict()
        self._keep = keep
        self._lock = threading.Lock()

    def add(self, model: SessionModel) -> None:
        """A version just trained (so activating it reads nothing from the store)."""
        with self._lock:
            self._cache[model.version] = model
            self._trim()

    def get(self, version: int) -> SessionModel | None:
        if version <= 0:
            return None
        with self._lock:
            found = self._cache.get(version)
            if found is not None:
                self._cache.move_to_end(version)
                return found
        loaded = self._load(version)
        if loaded is not None:
            self.add(loaded)
        return loaded

    def activate(self, version: int) -> None:
        """Make ``version`` the one in force (the engine calls it between events;
        version 0 is "no model yet")."""
        self.current = self.get(version) if version else None

    @property
    def version(self) -> int:
        return self.current.version if self.current is not None else 0

    def _trim(self) -> None:
        while len(self._cache) > self._keep:
            self._cache.popitem(last=False)


class AnomalyState(msgspec.Struct, array_like=True):
    session_id: str = ""
    score: float = -1.0  # the latest score; -1 before any
    version: int = 0  # the model version that gave it
    reported: int = 0  # the highest level already detected in this session (RANK)


class SessionAnomaly(Processor[AnomalyState]):
    name: ClassVar[str] = "session_anomaly"
    state_type: ClassVar[type[msgspec.Struct]] = AnomalyState

    def __init__(self, models: SessionModels, min_events: int = MIN_EVENTS) -> None:
        self.models = models
        self.min_events = min_events

    def initial(self) -> AnomalyState:
        return AnomalyState()

    def process(self, event: Event, state: AnomalyState, user: UserState) -> Sequence[Output]:
        features = user.get(BehaviourFeatures)
        if state.session_id != features.session_id:
            closed = closing(user)
            if closed is not None and closed.session_id == state.session_id:
                closed.summary[self.name] = self.summary(state)
            state.session_id = features.session_id
            state.score, state.version, state.reported = -1.0, 0, 0
        model = self.models.current
        if model is None:
            return ()
        x = vector(features)
        score = model.score(x)
        state.score, state.version = score, model.version
        level = model.card.level(score)
        if level is None or RANK[level] <= state.reported or features.events < self.min_events:
            return ()
        state.reported = RANK[level]
        return (
            Detection(
                detector=DETECTOR,
                user_key=user.key,
                event_id=event.id,
                timestamp=event.timestamp.timestamp(),
                score=score,
                level=level,
                reasons=model.reasons(x, score),
                data={
                    "session_id": state.session_id,
                    "model_version": model.version,
                    "features": named(x),
                },
            ),
        )

    def summary(self, state: AnomalyState) -> dict[str, Any] | None:
        """The session's anomaly as its record shows it: score, label, model version."""
        if state.version == 0:
            return None
        model = self.models.get(state.version)
        label = model.card.label(state.score) if model is not None else None
        return {"score": state.score, "label": label, "model_version": state.version}

    def merge(self, into: AnomalyState, other: AnomalyState) -> AnomalyState:
        return into  # the merged user's session is rescored at its next event

    def view(self, state: AnomalyState) -> dict[str, Any]:
        return self.summary(state) or {"score": None, "label": None, "model_version": None}
