"""The session records an engine commit writes: every live session of a user who
changed since the last commit, and every session that closed since (with what it ended
with, which the describing processors left in its ``SessionClosed.summary``)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, ClassVar, Protocol

import msgspec

from usertide.engine.base import SessionClosed, UserState
from usertide.engine.identity import ANON_PREFIX
from usertide.processors.features import BehaviourFeatures, FeatureState, named, vector
from usertide.processors.sessions import Sessionizer, SessionState
from usertide.propensity.tracker import inputs_of
from usertide.store.base import SessionRecord


class Describer(Protocol):
    """A processor whose slot says something about the current session."""

    name: ClassVar[str]

    def summary(self, state: Any) -> dict[str, Any] | None: ...


Scorer = Callable[[list[list[float]]], tuple[int, list[float]] | None]


class SessionRecorder:
    """``describers`` maps a record field (``anomaly``, ``conversion``) to the processor
    whose ``summary(slot)`` fills it. ``conversion``, when given, scores the records'
    conversion inputs in one batch per commit: ``(model version, probabilities)``, or
    ``None`` while no model is in force."""

    def __init__(
        self, describers: Mapping[str, Describer] | None = None, conversion: Scorer | None = None
    ) -> None:
        self.describers = dict(describers or {})
        self.conversion = conversion

    def finish(self, records: list[SessionRecord]) -> None:
        """Complete a commit's records: their conversion inputs and probabilities."""
        scored: list[tuple[dict[str, Any], list[float]]] = []
        for record in records:
            conversion = record.conversion
            if conversion is None or "sessions_before" not in conversion:
                continue
            x = inputs_of(record.features, conversion)
            if x is not None:
                conversion["inputs"] = x
                scored.append((conversion, x))
        if self.conversion is None or not scored:
            return
        answer = self.conversion([x for _, x in scored])
        if answer is None:
            return
        version, probabilities = answer
        for (conversion, _), probability in zip(scored, probabilities, strict=True):
            conversion["probability"] = probability
            conversion["model_version"] = version

    def live(self, state: UserState) -> SessionRecord | None:
        session = state.slots.get(Sessionizer.name)
        if not isinstance(session, SessionState) or not session.events:
            return None
        features = state.slots.get(BehaviourFeatures.name)
        values = (
            named(vector(features))
            if isinstance(features, FeatureState) and features.session_id == session.id
            else {}
        )
        described = {
            field: describer.summary(state.slots[describer.name])
            for field, describer in self.describers.items()
            if describer.name in state.slots
        }
        return _record(
            state.key, session.id, session.started, session.last, session.events,
            session.pages, False, values, described,
        )  # fmt: skip

    def closed(self, closed: SessionClosed) -> SessionRecord:
        summary = closed.summary
        described = {
            field: summary.get(describer.name) for field, describer in self.describers.items()
        }
        return _record(
            closed.user_key, closed.session_id, closed.started, closed.ended, closed.events,
            closed.pages, True, summary.get(BehaviourFeatures.name, {}), described,
        )  # fmt: skip


def _record(
    key: str,
    session_id: str,
    started: float,
    ended: float,
    events: int,
    pages: int,
    closed: bool,
    features: dict[str, float],
    described: dict[str, Any],
) -> SessionRecord:
    anonymous = key.startswith(ANON_PREFIX)
    return SessionRecord(
        session_id=session_id,
        user_key=key,
        user_id=None if anonymous else key,
        anonymous_id=key[len(ANON_PREFIX) :] if anonymous else None,
        started=started,
        ended=ended,
        events=events,
        pages=pages,
        closed=closed,
        features=features,
        anomaly=described.get("anomaly"),
        conversion=described.get("conversion"),
    )


def record_to_builtins(record: SessionRecord) -> dict[str, Any]:
    out: dict[str, Any] = msgspec.to_builtins(record)
    return out
