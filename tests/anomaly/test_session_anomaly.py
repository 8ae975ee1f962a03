"""Session anomaly in the engine: scored on every event by the version in force, one
detection per level per session, switched only at $model events, replayed alike."""

from __future__ import annotations

import random
from datetime import timedelta

import numpy as np

from factories import T0, event
from usertide.anomaly.card import build_card
from usertide.anomaly.isolation import IsolationForestDetector
from usertide.anomaly.session import MODEL_NAME, SessionAnomaly, SessionModel, SessionModels
from usertide.engine import Detection, Engine, SessionClosed
from usertide.engine.core import model_event
from usertide.events import Context, Device, Event
from usertide.processors import BehaviourFeatures, Sessionizer
from usertide.processors.features import FEATURES, vector
from usertide.processors.session_record import SessionRecorder


def page(user: str, at: float, path: str, bot: bool = False) -> Event:
    ev = event(user_id=user, at=at, type="page", path=path)
    ev.context = Context(
        page_path=path,
        page_referrer=None if bot else "https://example.com/",
        device=Device(is_headless=bot, browser="Chrome"),
    )
    return ev


def human(rng: random.Random, user: str, start: float) -> list[Event]:
    t, out = start, []
    for _ in range(rng.randint(1, 12)):
        out.append(page(user, t, f"/p/{rng.randint(1, 500)}"))
        t += rng.lognormvariate(3.0, 1.0)
    return out


def trained(seed: int = 0, version: int = 1) -> SessionModel:
    """A model fitted on 600 simulated human sessions' final features."""
    rng = random.Random(seed)
    engine = Engine([Sessionizer(), BehaviourFeatures()])
    for i in range(600):
        for ev in human(rng, f"h{i}", 0.0):
            engine.apply(ev)
    X = np.array([vector(s.get(BehaviourFeatures)) for s in engine.hot.values()])
    model = IsolationForestDetector(random_state=seed).fit(X)
    return SessionModel(version, model, build_card(FEATURES, X, model.score_many(X)))


def engine_with(models: SessionModels) -> Engine:
    return Engine(
        [Sessionizer(), BehaviourFeatures(), SessionAnomaly(models)],
        models={MODEL_NAME: models.activate},
    )


def bot_stream(user: str = "crawler", n: int = 120) -> list[Event]:
    return [page(user, 1000 + i * 1.0, f"/p/{i}", bot=True) for i in range(n)]


def stored(*models: SessionModel) -> SessionModels:
    by_version = {m.version: m for m in models}
    return SessionModels(by_version.get)


def test_without_a_model_nothing_is_scored() -> None:
    engine = engine_with(stored())
    outputs = [o for ev in bot_stream() for o in engine.apply(ev)]
    assert not [o for o in outputs if isinstance(o, Detection)]
    state = engine.lookup("crawler")
    assert state is not None and state.slots["session_anomaly"].version == 0


def test_a_crawler_is_detected_once_per_level_with_reasons() -> None:
    model = trained()
    models = stored(model)
    engine = engine_with(models)
    engine.apply(model_event(MODEL_NAME, 1, T0))
    detections = [o for ev in bot_stream() for o in engine.apply(ev) if isinstance(o, Detection)]
    assert [d.level for d in detections] == ["medium", "high"]
    high = detections[-1]
    assert high.detector == "session_anomaly" and high.data["model_version"] == 1
    codes = [r.code for r in high.reasons]
    assert codes[0] == "abnormal_session"
    assert "high_automation_agent" in codes or "high_no_referrer_share" in codes
    assert all(r.message for r in high.reasons)
    # humans like the training ones are rarely flagged
    rng = random.Random(99)
    flagged = 0
    for i in range(300):
        out = [o for ev in human(rng, f"new{i}", 5000.0) for o in engine.apply(ev)]
        flagged += any(isinstance(o, Detection) for o in out)
    assert flagged <= 9  # the medium threshold is the training sessions' 99th percentile


def test_the_model_switches_where_the_log_says_and_a_replay_agrees() -> None:
    v1, v2 = trained(seed=0, version=1), trained(seed=1, version=2)
    stream: list[Event] = [model_event(MODEL_NAME, 1, T0)]
    stream += bot_stream("a", 40)
    stream.append(model_event(MODEL_NAME, 2, T0 + timedelta(hours=1)))
    stream += bot_stream("b", 40)
    for offset, ev in enumerate(stream, start=1):
        ev.offset = offset

    def run(events: list[Event], engine: Engine) -> list[tuple[str, float, int]]:
        scores = []
        for ev in events:
            engine.apply(ev)
            if ev.user_id:
                slot = engine.lookup(ev.user_id).slots["session_anomaly"]  # type: ignore[union-attr]
                scores.append((ev.user_id, slot.score, slot.version))
        return scores

    whole = run(stream, engine_with(stored(v1, v2)))
    assert {v for u, _, v in whole if u == "a"} == {1}
    assert {v for u, _, v in whole if u == "b"} == {2}
    # stop after 30 events, checkpoint, restore in a new engine, go on
    first = engine_with(stored(v1, v2))
    head = run(stream[:30], first)
    commit = first.take_commit()
    resumed = engine_with(stored(v1, v2))
    resumed.restore(commit.offset, [(k, v) for k, v in commit.states.items() if v], {})
    tail = run(stream[30:], resumed)
    assert head + tail == whole


def test_session_records_carry_the_anomaly_live_and_at_close() -> None:
    models = stored(trained())
    detector = SessionAnomaly(models)
    engine = Engine(
        [Sessionizer(), BehaviourFeatures(), detector], models={MODEL_NAME: models.activate}
    )
    engine.apply(model_event(MODEL_NAME, 1, T0))
    for ev in bot_stream(n=30):
        engine.apply(ev)
    recorder = SessionRecorder({"anomaly": detector})
    state = engine.lookup("crawler")
    assert state is not None
    live = recorder.live(state)
    assert live is not None and not live.closed and live.user_id == "crawler"
    assert live.anomaly is not None and live.anomaly["model_version"] == 1
    assert live.anomaly["label"] == "Anomaly" and live.features["pages_per_session"] == 30
    engine.apply(page("crawler", 90_000, "/back"))  # a day later: a new session
    (closed,) = engine.closed
    assert isinstance(closed, SessionClosed)
    record = recorder.closed(closed)
    assert record.closed and record.session_id == live.session_id
    assert record.anomaly == live.anomaly and record.features == live.features
    commit = engine.take_commit(sessions=recorder)
    assert {r.session_id for r in commit.sessions} >= {live.session_id}
    assert engine.closed == []
