"""Per user: whether the current session reached the goal, what the session looked like
when it did, and the user's earlier sessions and conversions (the model's inputs)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar, Final

import msgspec

from usertide.engine.base import Output, Processor, UserState, closing
from usertide.events import Event
from usertide.processors.features import FEATURES, BehaviourFeatures, FeatureState, vector
from usertide.propensity.goal import Goal

# The model's inputs: the session's features without the purchases count (the usual
# goal itself), and the user's history.
INPUTS: Final[tuple[str, ...]] = (
    *(name for name in FEATURES if name != "purchases"),
    "sessions_before",
    "conversions_before",
)
_KEEP: Final = [i for i, name in enumerate(FEATURES) if name != "purchases"]


class ConversionState(msgspec.Struct, array_like=True):
    session_id: str = ""
    converted: bool = False
    at_goal: list[float] | None = None  # the inputs when the goal was reached
    sessions_before: int = 0
    conversions_before: int = 0


def inputs(features: FeatureState, state: ConversionState) -> list[float]:
    x = vector(features)
    return [*(x[i] for i in _KEEP), float(state.sessions_before), float(state.conversions_before)]


def inputs_of(features: dict[str, float], summary: dict[str, Any]) -> list[float] | None:
    """The inputs from a session record's features and this processor's summary."""
    if not all(name in features for name in FEATURES):
        return None
    return [
        *(features[FEATURES[i]] for i in _KEEP),
        float(summary.get("sessions_before") or 0),
        float(summary.get("conversions_before") or 0),
    ]


class ConversionTracker(Processor[ConversionState]):
    name: ClassVar[str] = "conversion"
    state_type: ClassVar[type[msgspec.Struct]] = ConversionState

    def __init__(self, goal: Goal | None = None) -> None:
        self.goal = goal or Goal()

    def initial(self) -> ConversionState:
        return ConversionState()

    def process(self, event: Event, state: ConversionState, user: UserState) -> Sequence[Output]:
        features = user.get(BehaviourFeatures)
        if state.session_id != features.session_id:
            closed = closing(user)
            if closed is not None and closed.session_id == state.session_id:
                closed.summary[self.name] = self.summary(state)
            if state.session_id:
                state.sessions_before += 1
                state.conversions_before += state.converted
            state.session_id, state.converted, state.at_goal = features.session_id, False, None
        if not state.converted and self.goal.matches(event):
            state.converted = True
            state.at_goal = inputs(features, state)
        return ()

    def summary(self, state: ConversionState) -> dict[str, Any]:
        return {
            "converted": state.converted,
            "at_goal": state.at_goal,
            "sessions_before": state.sessions_before,
            "conversions_before": state.conversions_before,
        }

    def merge(self, into: ConversionState, other: ConversionState) -> ConversionState:
        merged = msgspec.structs.replace(into)
        merged.sessions_before = into.sessions_before + other.sessions_before
        merged.conversions_before = into.conversions_before + other.conversions_before
        return merged

    def view(self, state: ConversionState) -> dict[str, Any]:
        return {
            "converted_this_session": state.converted,
            "sessions_before": state.sessions_before,
            "conversions_before": state.conversions_before,
        }
