"""The engine in process with every detector on, against the same engine without them.

Events: the session simulator's stream (real yoochoose human sessions and six bot
types, ``usertide.evaluation.session_sim``), normalized and enriched once beforehand,
so the timing is the engine's alone (``engine.apply`` on one core). Baseline: the
service's processors with no session model in force and no traffic series (what a new
service runs). Every detector on: the session model (an isolation forest trained on
the stream's own sessions, in force from the first event, so every event is scored)
and the four traffic-rate processors. Three alternating runs each; the medians.

    python -m benchmarks --only detectors --write
"""

from __future__ import annotations

import statistics
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
import numpy as np

from benchmarks.common import Context, Row, log
from usertide.anomaly.isolation import IsolationForestDetector
from usertide.anomaly.session import MODEL_NAME, SessionAnomaly, SessionModel, SessionModels
from usertide.anomaly.traffic import TrafficRate
from usertide.anomaly.trainer import fit_session_model
from usertide.capture.base import CaptureRequest
from usertide.capture.segment import normalize_item
from usertide.cli import tune_gc
from usertide.engine import Engine, Processor
from usertide.engine.core import model_event
from usertide.enrich import build_enrichers
from usertide.evaluation.session_sim import Simulated
from usertide.events import Event
from usertide.processors.features import FEATURES
from usertide.processors.session_record import SessionRecorder
from usertide.risk import LoginRisk, NetworkVelocity
from usertide.service import build_processors

NAME = "detectors"
TITLE = "engine with every detector"
RUNS = 3


def _events(humans: int) -> list[Event]:
    from usertide.evaluation.session_sim import SessionSimConfig, simulate

    return normalized(simulate(SessionSimConfig(humans=humans)))


def normalized(simulated: Simulated) -> list[Event]:
    """The simulator's events as the service would hold them: normalized and enriched."""
    request = CaptureRequest(endpoint="batch", received_at=datetime.now(UTC))
    enrichers = build_enrichers()
    out = []
    for item in simulated.events:
        event = normalize_item(item, request, {}, None, None)
        enrichers.enrich(event)
        out.append(event)
    return out


def _engine(model: SessionModel | None, traffic: bool) -> Engine:
    models = SessionModels(lambda version: None)
    processors: list[Processor[Any]] = build_processors(
        NetworkVelocity(), LoginRisk(), None, SessionAnomaly(models)
    )
    if not traffic:  # the service runs them; the baseline leaves them out
        processors = [p for p in processors if not isinstance(p, TrafficRate)]
    engine = Engine(processors, models={MODEL_NAME: models.activate})
    if model is not None:
        models.add(model)
        engine.apply(model_event(MODEL_NAME, model.version, datetime.now(UTC)))
    return engine


def _trained(events: list[Event]) -> SessionModel:
    """The session model the service's trainer would fit on these sessions."""
    _, X = session_features(events)
    return fit_session_model(IsolationForestDetector(), X, version=1)


def session_features(events: list[Event]) -> tuple[list[str], np.ndarray]:
    """The session ids and final features of every session of ``events`` (the engine's
    session records, as the trainer reads them from the store)."""
    engine = _engine(None, traffic=False)
    for event in events:
        engine.apply(event)
    detector = next(p for p in engine.processors if isinstance(p, SessionAnomaly))
    records = engine.take_commit(sessions=SessionRecorder({"anomaly": detector})).sessions
    kept = [r for r in records if r.features]
    X = np.array([[r.features[n] for n in FEATURES] for r in kept])
    return [r.session_id for r in kept], X


def _dense(events: list[Event], per_second: float) -> list[Event]:
    """The same events, in the same order, re-timed as if they arrived at
    ``per_second`` (what a site that needs this throughput sends)."""
    start = events[0].timestamp
    out = []
    for i, event in enumerate(events):
        when = start + timedelta(seconds=i / per_second)
        out.append(msgspec.structs.replace(event, timestamp=when, received_at=when))
    return out


def _rate(events: list[Event], model: SessionModel | None, traffic: bool) -> float:
    engine = _engine(model, traffic)
    t0 = time.perf_counter()
    for event in events:
        engine.apply(event)
    return len(events) / (time.perf_counter() - t0)


def run(ctx: Context) -> list[Row]:
    humans = 3_000 if ctx.quick else 17_794
    t0 = time.perf_counter()
    events = _events(humans)
    model = _trained(events)
    tune_gc()  # as `usertide serve` runs: what is alive now is frozen out of collection
    log(
        f"  {len(events):,} events prepared and a model trained in {time.perf_counter() - t0:.1f} s"
    )
    dense = _dense(events, 30_000)
    base: list[float] = []
    full: list[float] = []
    scored: list[float] = []
    busy: list[float] = []
    for _ in range(RUNS):  # alternating, so noise on the shared machine hits both alike
        base.append(_rate(events, None, traffic=False))
        full.append(_rate(events, model, traffic=True))
        scored.append(_rate(events, model, traffic=False))
        busy.append(_rate(dense, model, traffic=True))
    b, f, s, d = (statistics.median(x) for x in (base, full, scored, busy))
    ctx.note(
        f"{len(events):,} events of the session simulator ({humans:,} yoochoose human "
        f"sessions and its bots), normalized and enriched beforehand; engine.apply on one "
        f"core, garbage collection tuned as `usertide serve` tunes it; median of {RUNS} "
        "alternating runs (every detector on: "
        f"{', '.join(f'{x:,.0f}' for x in full)}; baseline: {', '.join(f'{x:,.0f}' for x in base)})"
    )
    per_event = (1 / f - 1 / b) * 1e6
    return [
        Row(TITLE, "engine events/s, every detector on", f, "ev/s", baseline=b, target=30_000,
            note="session model scoring every event + traffic rates per name, country, page, "
            "source; baseline = the service's processors with no model and no traffic series"),
        Row(TITLE, "engine events/s, session model only", s, "ev/s", baseline=b),
        Row(TITLE, "engine events/s, every detector on, busy site", d, "ev/s", baseline=b,
            note="the same events re-timed to 30,000 a second of event time: each traffic "
            "series then gets many events a minute, as on a site that needs this rate "
            "(the simulator's own stream has 0.5 a second, so nearly every event closes a "
            "minute of four sparse series)"),
        Row(TITLE, "engine µs/event added by the detectors", per_event, "µs",
            higher_is_better=False),
    ]  # fmt: skip
