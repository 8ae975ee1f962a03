"""The sign-in evaluation protocol: replay a labelled stream through scorers, online.

Each scorer sees every ``login`` event of the file once, in time order, and must score it
*before* it learns from it (``score`` then ``learn``), exactly as a live detector would.
The ground truth (``properties.label`` and ``properties.attack_type``) is removed from the
events the scorers see, so a scorer cannot peek at it.

The report compares, for each attack type and for all attacks together, that type's
attack attempts against *all* legitimate ones: ROC AUC, the detection rate at a 1 % false
positive rate, and the share of legitimate sign-ins challenged when the threshold catches
99 % of the attacks. It does so twice: over successful sign-ins only (the headline: an
account takeover is a successful sign-in) and over every attempt, failed ones included.
Throughput is the number of sign-ins a scorer handles per second (score + learn).

**After the sign-in.** A file may also hold the events of the sessions that follow
successful sign-ins (``simulate_sessions``: password or e-mail changes and the like,
unlabelled). A scorer that has ``follow(event)`` sees each of them in time order, between
the sign-ins, after it has learned from every earlier sign-in, as the live engine does;
it answers the alerts the event raises as (sign-in ``messageId``, score) pairs, naming
the sign-in each alert is about (the service's ``LoginAftermath`` detection names it in
``data["sign_in"]``). A sign-in's *session score* is then the highest of its own score
and those alerts' scores, and the report adds a third table, successful sign-ins by
session score: a takeover counts as detected at a threshold when the sign-in or any
alert raised later in its session reaches it. That alert comes minutes after the
attacker got in: it is a review or a forced sign-out, not a challenge at the door. The
sign-in tables never use these events; a scorer without ``follow`` never sees them.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final, Protocol, runtime_checkable

import msgspec
import numpy as np
import numpy.typing as npt

from usertide.evaluation.metrics import (
    challenge_rate_at_recall,
    detection_rate_at_fpr,
    roc_auc,
)

ALL_ATTACKS: Final = "all attacks"
_GROUND_TRUTH: Final = frozenset({"label", "attack_type"})


class LoginScorer(Protocol):
    name: str

    def score(self, event: dict[str, Any]) -> float:
        """How suspicious this sign-in attempt is (higher = more), before learning from it."""
        ...

    def learn(self, event: dict[str, Any], score: float) -> None:
        """Called right after ``score``; the scorer decides what, if anything, to learn."""
        ...


@runtime_checkable
class SessionScorer(LoginScorer, Protocol):
    """A scorer that also watches what accounts do after signing in."""

    def follow(self, event: dict[str, Any]) -> list[tuple[str, float]]:
        """A non-sign-in event: the alerts it raises, as (sign-in messageId, score)."""
        ...


class MetricRow(msgspec.Struct, kw_only=True):
    attack_type: str  # an attack type or ALL_ATTACKS
    attacks: int
    legit: int
    roc_auc: float | None  # None when there is no attack (or no legit) attempt to compare
    detection_rate: float | None
    challenge_rate: float | None


class ScorerResult(msgspec.Struct, kw_only=True):
    name: str
    seconds: float
    signins_per_second: float
    successful: list[MetricRow]  # the headline: successful sign-ins only
    all_attempts: list[MetricRow]
    # successful sign-ins by session score (see the module's docstring); None when the
    # scorer does not follow sessions or the file holds none
    with_session: list[MetricRow] | None = None
    session_alerts: int = 0  # alerts raised after sign-ins (follow's answers)


class EvalReport(msgspec.Struct, kw_only=True):
    path: str
    signins: int
    successful: int
    legit: int
    attacks_by_type: dict[str, int]
    fpr: float
    recall: float
    scorers: list[ScorerResult]

    def to_json(self) -> bytes:
        return msgspec.json.format(msgspec.json.encode(self), indent=2)


class GroundTruth(msgspec.Struct, kw_only=True, frozen=True):
    """The labels of a stream, one entry per event, in file order."""

    attack_types: tuple[str | None, ...]  # None = legitimate
    success: tuple[bool, ...]


def read_logins(path: Path) -> list[dict[str, Any]]:
    """The ``login`` track events of a JSON-lines file, in file (= time) order."""
    return [e for e in read_events(path) if is_sign_in(e)]


def read_events(path: Path) -> list[dict[str, Any]]:
    """Every ``track`` event of a JSON-lines file, in file (= time) order."""
    decoder = msgspec.json.Decoder(dict[str, Any])
    events: list[dict[str, Any]] = []
    with path.open("rb") as lines:
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                event = decoder.decode(line)
            except msgspec.DecodeError as exc:
                raise ValueError(f"{path}:{number}: not a JSON object: {exc}") from None
            if event.get("type") == "track":
                events.append(event)
    return events


def is_sign_in(event: dict[str, Any]) -> bool:
    return event.get("type") == "track" and event.get("event") == "login"


def ground_truth(events: Sequence[dict[str, Any]]) -> GroundTruth:
    attack_types: list[str | None] = []
    success: list[bool] = []
    for event in events:
        properties = event.get("properties") or {}
        label = properties.get("label")
        if label not in ("legit", "attack"):
            raise ValueError(f"event {event.get('messageId')}: label must be legit or attack")
        attack_type = properties.get("attack_type") if label == "attack" else None
        attack_types.append(str(attack_type or "unknown") if label == "attack" else None)
        success.append(properties.get("success") is True)
    return GroundTruth(attack_types=tuple(attack_types), success=tuple(success))


def without_ground_truth(event: dict[str, Any]) -> dict[str, Any]:
    """A copy of the event as a scorer may see it: no label, no attack type."""
    properties = event.get("properties") or {}
    hidden = {k: v for k, v in properties.items() if k not in _GROUND_TRUTH}
    return {**event, "properties": hidden}


def run_scorer(scorer: LoginScorer, events: Sequence[dict[str, Any]]) -> tuple[list[float], float]:
    """Score then learn each event in order; returns the scores and the seconds it took."""
    scores, _, seconds = run_sessions(scorer, events)
    return scores, seconds


def run_sessions(
    scorer: LoginScorer, events: Sequence[dict[str, Any]]
) -> tuple[list[float], list[float] | None, float]:
    """Score then learn each sign-in in order, and hand the other events to ``follow``
    when the scorer has it; returns the sign-ins' scores, their session scores (None
    without ``follow``) and the seconds it took."""
    follower = scorer if isinstance(scorer, SessionScorer) else None
    scores: list[float] = []
    index: dict[str, int] = {}
    started = time.perf_counter()
    session: list[float] | None = [] if follower is not None else None
    for event in events:
        if not is_sign_in(event):
            if follower is not None and session is not None:
                for sign_in, value in follower.follow(event):
                    at = index.get(sign_in)
                    if at is not None and value > session[at]:
                        session[at] = float(value)
            continue
        value = float(scorer.score(event))
        if not math.isfinite(value):
            raise ValueError(f"{scorer.name} returned {value} for {event.get('messageId')}")
        scorer.learn(event, value)
        index[str(event.get("messageId"))] = len(scores)
        scores.append(value)
        if session is not None:
            session.append(value)
    return scores, session, time.perf_counter() - started


def evaluate(
    path: Path,
    scorers: Sequence[LoginScorer],
    *,
    fpr: float = 0.01,
    recall: float = 0.99,
) -> EvalReport:
    """Run every scorer over the stream in ``path`` and measure how well it separates
    each attack type from the legitimate sign-ins."""
    everything = read_events(path)
    events = [e for e in everything if is_sign_in(e)]
    has_sessions = len(everything) > len(events)
    truth = ground_truth(events)
    results: list[ScorerResult] = []
    for scorer in scorers:
        # Fresh copies per scorer: one scorer mutating events cannot affect another.
        follows = has_sessions and isinstance(scorer, SessionScorer)
        visible = [
            without_ground_truth(msgspec.json.decode(msgspec.json.encode(e)))
            for e in (everything if follows else events)
        ]
        scores, session, seconds = run_sessions(scorer, visible)
        values = np.asarray(scores, dtype=np.float64)
        with_session = None
        raised = 0
        if follows and session is not None:
            after = np.asarray(session, dtype=np.float64)
            raised = int((after > values).sum())
            with_session = _rows(after, truth, fpr, recall, successful_only=True)
        results.append(
            ScorerResult(
                name=scorer.name,
                seconds=seconds,
                signins_per_second=len(events) / seconds if seconds > 0 else math.inf,
                successful=_rows(values, truth, fpr, recall, successful_only=True),
                all_attempts=_rows(values, truth, fpr, recall, successful_only=False),
                with_session=with_session,
                session_alerts=raised,
            )
        )
    attack_counts: dict[str, int] = {}
    for attack_type in truth.attack_types:
        if attack_type is not None:
            attack_counts[attack_type] = attack_counts.get(attack_type, 0) + 1
    return EvalReport(
        path=str(path),
        signins=len(events),
        successful=sum(truth.success),
        legit=sum(t is None for t in truth.attack_types),
        attacks_by_type=dict(sorted(attack_counts.items())),
        fpr=fpr,
        recall=recall,
        scorers=results,
    )


def _rows(
    scores: npt.NDArray[np.float64],
    truth: GroundTruth,
    fpr: float,
    recall: float,
    *,
    successful_only: bool,
) -> list[MetricRow]:
    kinds = np.asarray([t or "" for t in truth.attack_types])
    included = np.asarray(truth.success) if successful_only else np.ones(len(kinds), dtype=bool)
    legit = included & (kinds == "")
    attack_types = sorted({t for t in truth.attack_types if t is not None}, key=_type_order)
    groups = [(t, included & (kinds == t)) for t in attack_types]
    groups.append((ALL_ATTACKS, included & (kinds != "")))
    return [_row(name, scores, legit, attacks, fpr, recall) for name, attacks in groups]


def _row(
    name: str,
    scores: npt.NDArray[np.float64],
    legit: npt.NDArray[np.bool_],
    attacks: npt.NDArray[np.bool_],
    fpr: float,
    recall: float,
) -> MetricRow:
    n_attacks, n_legit = int(attacks.sum()), int(legit.sum())
    if n_attacks == 0 or n_legit == 0:
        return MetricRow(
            attack_type=name,
            attacks=n_attacks,
            legit=n_legit,
            roc_auc=None,
            detection_rate=None,
            challenge_rate=None,
        )
    selected = attacks | legit
    values, labels = scores[selected], attacks[selected]
    return MetricRow(
        attack_type=name,
        attacks=n_attacks,
        legit=n_legit,
        roc_auc=roc_auc(values, labels),
        detection_rate=detection_rate_at_fpr(values, labels, fpr),
        challenge_rate=challenge_rate_at_recall(values, labels, recall),
    )


_KNOWN_ORDER: Final = ("naive", "vpn", "targeted", "credential_stuffing", "brute_force")


def _type_order(attack_type: str) -> tuple[int, str]:
    known = _KNOWN_ORDER.index(attack_type) if attack_type in _KNOWN_ORDER else len(_KNOWN_ORDER)
    return known, attack_type


def format_report(report: EvalReport) -> str:
    """The report as plain-text tables, one pair (successful, all attempts) per scorer."""
    fpr_label = f"{report.fpr * 100:g}% FPR"
    recall_label = f"{report.recall * 100:g}% recall"
    header = (
        f"{report.path}: {report.signins} sign-in attempts ({report.successful} successful), "
        f"{report.legit} legitimate; attacks: "
        + ", ".join(f"{k} {v}" for k, v in report.attacks_by_type.items())
    )
    lines = [header]
    for result in report.scorers:
        lines.append("")
        lines.append(
            f"{result.name}: {result.signins_per_second:,.0f} sign-ins/s "
            f"({result.seconds:.1f} s for {report.signins})"
        )
        tables = [
            ("successful sign-ins", result.successful),
            ("all attempts", result.all_attempts),
        ]
        if result.with_session is not None:
            tables.append(
                (
                    "successful sign-ins, with alerts raised later in their session "
                    f"({result.session_alerts} sign-ins scored higher by one)",
                    result.with_session,
                )
            )
        for title, rows in tables:
            lines.append(f"  {title}")
            lines.extend(_table(rows, fpr_label, recall_label))
    return "\n".join(lines)


def _table(rows: list[MetricRow], fpr_label: str, recall_label: str) -> list[str]:
    columns = (
        "attack type",
        "attacks",
        "legit",
        "ROC AUC",
        f"detected @ {fpr_label}",
        f"challenged @ {recall_label}",
    )
    cells = [
        (
            row.attack_type,
            str(row.attacks),
            str(row.legit),
            _fmt(row.roc_auc, "{:.3f}"),
            _fmt(row.detection_rate, "{:.1%}"),
            _fmt(row.challenge_rate, "{:.1%}"),
        )
        for row in rows
    ]
    widths = [max(len(c[i]) for c in (columns, *cells)) for i in range(len(columns))]

    def align(i: int, cell: str) -> str:
        return cell.ljust(widths[i]) if i == 0 else cell.rjust(widths[i])

    return [
        "    " + "  ".join(align(i, cell) for i, cell in enumerate(line))
        for line in (columns, *cells)
    ]


def _fmt(value: float | None, pattern: str) -> str:
    return "—" if value is None else pattern.format(value)
