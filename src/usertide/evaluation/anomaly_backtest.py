"""``usertide eval anomaly FILE``: what the session-anomaly alert would have raised.

A backtest before enabling the alert (or changing its threshold). The file's events
(Segment JSON lines, in time order) go through the collector's normalization and
enrichment into an engine with the service's session processors. The sessions that
start in the first ``--train-fraction`` of the file (by session start) train a model
exactly as the service's trainer does (same detector, same card, unsupervised); the
rest of the file is then replayed with that model in force, and every detection is
counted: sessions labelled Anomaly (the model's ``medium`` threshold, or
``--threshold``) and the alerts the default rule would raise (``high`` level), with the
users and the reasons. When the file has a ground-truth file beside it
(``FILE.truth.json``, session id → ``human`` or a bot type, as the session simulator
writes) precision and recall per type are reported too.
"""

from __future__ import annotations

import json
import sys
from collections import Counter, defaultdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import msgspec
import numpy as np

from usertide.anomaly.detectors import detector
from usertide.anomaly.session import MODEL_NAME, SessionAnomaly, SessionModel, SessionModels
from usertide.anomaly.trainer import fit_session_model
from usertide.capture.base import CaptureRequest
from usertide.capture.errors import CaptureError, ItemError
from usertide.capture.segment import normalize_item
from usertide.engine import Detection, Engine
from usertide.engine.core import model_event
from usertide.enrich import build_enrichers
from usertide.events import Event
from usertide.processors import BehaviourFeatures, Sessionizer
from usertide.processors.features import FEATURES
from usertide.processors.session_record import SessionRecorder

TOP_USERS = 20


def read_events(path: Path) -> list[Event]:
    request = CaptureRequest(endpoint="batch", received_at=datetime.now(UTC))
    enrichers = build_enrichers()
    events: list[Event] = []
    with path.open("rb") as lines:
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                event = normalize_item(msgspec.json.decode(line), request, {}, None, None)
            except (msgspec.DecodeError, ItemError, CaptureError) as exc:
                raise ValueError(f"line {number}: {exc}") from exc
            enrichers.enrich(event)
            events.append(event)  # no offsets: the replay below splits the file's order
    return events


def _session_key(event: Event) -> str:
    return event.session_id or event.user_id or event.anonymous_id or event.id


def backtest(
    events: list[Event],
    train_fraction: float = 0.5,
    threshold: float | None = None,
    kind: str = "isolation_forest",
    truth: dict[str, str] | None = None,
) -> dict[str, Any]:
    if not 0 < train_fraction < 1:
        raise ValueError("--train-fraction must be between 0 and 1")
    starts: dict[str, float] = {}
    for event in events:
        starts.setdefault(_session_key(event), event.timestamp.timestamp())
    cut = float(np.quantile(list(starts.values()), train_fraction)) if starts else 0.0
    train = [e for e in events if starts[_session_key(e)] < cut]
    test = [e for e in events if starts[_session_key(e)] >= cut]
    # 1. the training sessions' last features, as the service's store holds them
    models = SessionModels(lambda version: None)
    detector_ = SessionAnomaly(models)
    engine = Engine(
        [Sessionizer(), BehaviourFeatures(), detector_], models={MODEL_NAME: models.activate}
    )
    recorder = SessionRecorder({"anomaly": detector_})
    for event in train:
        engine.apply(event)
    # every user is dirty: the commit has each closed session and each live one once
    rows = [r.features for r in engine.take_commit(sessions=recorder).sessions if r.features]
    if len(rows) < 2:
        raise ValueError(f"the training part has {len(rows)} sessions with features")
    X = np.array([[f[n] for n in FEATURES] for f in rows], dtype=np.float64)
    model = fit_session_model(detector(kind), X, version=1)
    card = model.card
    if threshold is not None:
        card = msgspec.structs.replace(card, medium=threshold, high=max(card.high, threshold))
        model = SessionModel(1, model.model, card, model.basic)
    models.add(model)
    last = train[-1].timestamp if train else datetime.now(UTC)
    engine.apply(model_event(MODEL_NAME, 1, last))
    # 2. the rest, with the model in force
    flagged: dict[str, Detection] = {}
    alerts: list[Detection] = []
    for event in test:
        for output in engine.apply(event):
            if isinstance(output, Detection) and output.detector == "session_anomaly":
                session = str(output.data["session_id"])
                flagged.setdefault(session, output)
                if output.level == "high":
                    alerts.append(output)
    tested = {_session_key(e) for e in test}
    by_user: dict[str, list[Detection]] = defaultdict(list)
    for d in alerts:
        by_user[d.user_key].append(d)
    report: dict[str, Any] = {
        "protocol": {
            "train_sessions": len(X),
            "test_sessions": len(tested),
            "detector": kind,
            "threshold": card.medium,
            "high": card.high,
            "split": datetime.fromtimestamp(cut, UTC).isoformat(),
        },
        "flagged_sessions": len(flagged),
        "flagged_share": len(flagged) / len(tested) if tested else 0.0,
        "alerts": len(alerts),
        "alerted_users": len(by_user),
        "top_users": [
            {
                "user": user,
                "alerts": len(found),
                "score": max(d.score for d in found),
                "reasons": [r.message for r in found[0].reasons],
            }
            for user, found in sorted(by_user.items(), key=lambda kv: -max(d.score for d in kv[1]))[
                :TOP_USERS
            ]
        ],
    }
    if truth:
        report["by_type"] = _by_type(truth, tested, flagged)
    return report


def _by_type(
    truth: dict[str, str], tested: set[str], flagged: dict[str, Detection]
) -> dict[str, dict[str, float]]:
    totals = Counter(truth[s] for s in tested if s in truth)
    caught = Counter(truth[s] for s in flagged if s in truth)
    bots_flagged = sum(n for kind, n in caught.items() if kind != "human")
    out = {
        kind: {"sessions": float(n), "flagged": float(caught[kind]), "rate": caught[kind] / n}
        for kind, n in sorted(totals.items())
    }
    out["all bots"] = {
        "precision": bots_flagged / len(flagged) if flagged else 0.0,
        "recall": bots_flagged / max(1, sum(n for k, n in totals.items() if k != "human")),
    }
    return out


def format_report(report: dict[str, Any]) -> str:
    p = report["protocol"]
    lines = [
        f"trained {p['detector']} on {p['train_sessions']:,} sessions started before "
        f"{p['split']}; replayed {p['test_sessions']:,} later sessions",
        f"threshold {p['threshold']:.4f} (alerts at {p['high']:.4f})",
        f"sessions flagged Anomaly: {report['flagged_sessions']:,} "
        f"({report['flagged_share']:.2%} of sessions)",
        f"alerts the 'abnormal session' rule would raise: {report['alerts']:,} for "
        f"{report['alerted_users']:,} users",
    ]
    for user in report["top_users"]:
        lines.append(f"  {user['user']}: score {user['score']:.3f}; {'; '.join(user['reasons'])}")
    for kind, row in report.get("by_type", {}).items():
        if kind == "all bots":
            lines.append(
                f"bots: precision {row['precision']:.3f}, recall {row['recall']:.3f} "
                "(sessions flagged)"
            )
        else:
            share = f"{row['flagged']:.0f} of {row['sessions']:.0f} flagged"
            lines.append(f"  {kind}: {share} ({row['rate']:.1%})")
    return "\n".join(lines)


def run_eval_anomaly(
    path: Path, train_fraction: float, threshold: float | None, kind: str, as_json: bool
) -> int:
    if not path.is_file():
        print(f"usertide eval anomaly: no such file: {path}", file=sys.stderr)
        return 2
    truth_path = path.with_suffix(".truth.json")
    truth = json.loads(truth_path.read_text()) if truth_path.is_file() else None
    try:
        report = backtest(read_events(path), train_fraction, threshold, kind, truth)
    except ValueError as exc:
        print(f"usertide eval anomaly: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(report, indent=2) if as_json else format_report(report))
    return 0
