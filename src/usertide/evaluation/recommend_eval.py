"""Next-item recommendation: ``usertide eval recommend`` (issue 12).

Session files (``--train F --test F``, session-rec's TSV), session-rec's protocol:

1. Each recommender learns the training events in file order (its own fresh copy).
2. Test events of items unseen in training are dropped, then test sessions left with
   fewer than two events.
3. Every prefix of every test session (sessions in order of first appearance, each in
   time order) asks for the top 20 of all training items, no sampling; the next item is
   the answer. HR@K (the answer is in the top K), MRR@K (1/rank, 0 beyond K) and NDCG@K
   (1/log2(rank + 1)) for K in 5, 10, 20 are averaged over all those prediction points.
   Coverage@20: the share of training items that appear in any top 20; popularity@20:
   the mean, over the points, of a top 20's mean popularity (training events of the item
   divided by the most popular item's).
4. By default nothing is learned from the test (session-rec's protocol). ``--online``
   learns each test event right after it was predicted, as the live service does: the
   session's own earlier events are then in the index, and a session is never its own
   neighbour.

User-sequence files (``--sequences F``, ``user item`` lines in time order), SASRec's
leave-one-out: every user's items but the last two train; the input is every item but
the last, which is the answer. Full ranking over every item (the user's own earlier
items excluded, as they are when serving) and the sampled protocol: the answer ranked
among 100 items the user never had, drawn uniformly (seeded); HR@10 and NDCG@10.

A recommender with a ``fit_sequences(events, validation)`` method (a trained model:
``sasrec``) is given the training events through it instead of ``fit``, so that it
trains once on them; for user sequences, ``validation`` is every user's second-last
item after the items before it (what it may choose its epochs by), never the last. For
session files there is no validation (``None``).

Latency is the wall time of each ``recommend`` call (p50, p99, mean), and ``learn`` the
mean time per learned event (the training events, and the test's with ``--online``;
a trained model's training time is in it).
"""

from __future__ import annotations

import io
import sys
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Final, Protocol, runtime_checkable

import msgspec
import numpy as np
from rich.console import Console
from rich.table import Table

from usertide.evaluation.recommend_data import (
    Event,
    Session,
    is_session_file,
    leave_one_out,
    prepare_test,
    read_events,
    read_sequences,
    sessions,
)
from usertide.recommend import DEFAULT, RECOMMENDERS, Recommender

CUTOFFS: Final = (5, 10, 20)
LIST_LENGTH: Final = max(CUTOFFS)
NEGATIVES: Final = 100
SEED: Final = 42
SAMPLED_CUTOFF: Final = 10


class SessionProtocol(msgspec.Struct, kw_only=True):
    points: int  # prediction points: test events after the first of their session
    online: bool
    kind: str = "next-item"
    train: str
    test: str
    train_events: int
    train_sessions: int
    items: int  # training items: what is ranked
    test_sessions: int
    test_events: int
    dropped_unseen_events: int
    dropped_short_sessions: int
    cutoffs: list[int]


class SequenceProtocol(msgspec.Struct, kw_only=True):
    points: int  # users with a test item
    online: bool = False
    kind: str = "leave-one-out"
    file: str
    users: int
    items: int
    train_events: int
    negatives: int
    seed: int
    cutoffs: list[int]


class Result(msgspec.Struct, kw_only=True):
    recommender: str
    default: bool
    metrics: dict[str, float]
    latency_ms: dict[str, float]


class Report(msgspec.Struct, kw_only=True):
    protocol: SessionProtocol | SequenceProtocol
    results: list[Result]

    def to_json(self) -> bytes:
        return msgspec.json.format(msgspec.json.encode(self), indent=2)


def rank_metrics(ranks: Sequence[int], cutoffs: Iterable[int] = CUTOFFS) -> dict[str, float]:
    """HR@K, MRR@K and NDCG@K from 1-based ranks (0: not in the list)."""
    r = np.asarray(ranks, dtype=np.float64)
    out: dict[str, float] = {}
    for metric in ("HR", "MRR", "NDCG"):
        for k in cutoffs:
            inside = (r >= 1) & (r <= k)
            if metric == "HR":
                value = inside
            elif metric == "MRR":
                value = np.where(inside, 1.0 / np.maximum(r, 1.0), 0.0)
            else:
                value = np.where(inside, 1.0 / np.log2(np.maximum(r, 1.0) + 1.0), 0.0)
            out[f"{metric}@{k}"] = float(value.mean()) if len(r) else 0.0
    return out


def _latency(seconds: list[float], learn_seconds: float, learned: int) -> dict[str, float]:
    ms = np.asarray(seconds) * 1000.0
    return {
        "p50": float(np.percentile(ms, 50)) if len(ms) else 0.0,
        "p99": float(np.percentile(ms, 99)) if len(ms) else 0.0,
        "mean": float(ms.mean()) if len(ms) else 0.0,
        "learn_mean": learn_seconds * 1000.0 / max(1, learned),
    }


Validation = Sequence[tuple[Sequence[str], str]]  # (history, the item that followed)


@runtime_checkable
class TrainsOnSequences(Protocol):
    """A recommender that trains once on all its training events (``sasrec``)."""

    def fit_sequences(
        self, events: Iterable[Event], validation: Validation | None = None
    ) -> object: ...


def _fitted(
    name: str, events: Sequence[Event], validation: Validation | None = None
) -> tuple[Recommender, float]:
    recommender = RECOMMENDERS[name]()
    start = time.perf_counter()
    if isinstance(recommender, TrainsOnSequences):
        recommender.fit_sequences(events, validation)
    else:
        recommender.fit(events)
    return recommender, time.perf_counter() - start


def evaluate_sessions(
    train: Sequence[Event],
    test: Sequence[Session],
    names: Sequence[str],
    online: bool = False,
    train_name: str = "train",
    test_name: str = "test",
) -> Report:
    """Every recommender in ``names`` on the next-item protocol (the module docstring)."""
    known = {item for _, item, _ in train}
    split = prepare_test(test, known)
    counts: dict[str, int] = {}
    for _, item, _ in train:
        counts[item] = counts.get(item, 0) + 1
    most = max(counts.values(), default=1)
    popularity = {item: c / most for item, c in counts.items()}
    results = []
    points = 0
    for name in names:
        recommender, learn_seconds = _fitted(name, train)
        ranks: list[int] = []
        seconds: list[float] = []
        shown: set[str] = set()
        bias = 0.0
        learned = len(train)
        for session in split.sessions:
            for position, (item, timestamp) in enumerate(
                zip(session.items, session.times, strict=True)
            ):
                if position:
                    start = time.perf_counter()
                    answer = recommender.recommend(
                        session.items[:position], LIST_LENGTH, session_id=session.session_id
                    )
                    seconds.append(time.perf_counter() - start)
                    listed = [i for i, _ in answer]
                    ranks.append(listed.index(item) + 1 if item in listed else 0)
                    shown.update(listed)
                    bias += sum(popularity[i] for i in listed) / max(1, len(listed))
                if online:
                    start = time.perf_counter()
                    recommender.learn(session.session_id, item, timestamp)
                    learn_seconds += time.perf_counter() - start
                    learned += 1
        points = len(ranks)
        metrics = rank_metrics(ranks)
        metrics[f"Coverage@{LIST_LENGTH}"] = len(shown) / max(1, len(known))
        metrics[f"Popularity@{LIST_LENGTH}"] = bias / max(1, points)
        results.append(
            Result(
                recommender=name,
                default=name == DEFAULT,
                metrics=metrics,
                latency_ms=_latency(seconds, learn_seconds, learned),
            )
        )
    protocol = SessionProtocol(
        points=points,
        online=online,
        train=train_name,
        test=test_name,
        train_events=len(train),
        train_sessions=len({s for s, _, _ in train}),
        items=len(known),
        test_sessions=len(split.sessions),
        test_events=sum(len(s.items) for s in split.sessions),
        dropped_unseen_events=split.unseen_events,
        dropped_short_sessions=split.short_sessions,
        cutoffs=list(CUTOFFS),
    )
    return Report(protocol=protocol, results=results)


def _negatives(
    universe: Sequence[str], avoid: set[str], count: int, rng: np.random.Generator
) -> list[str]:
    """``count`` distinct items drawn uniformly from ``universe`` outside ``avoid``."""
    available = len(universe) - len(avoid & set(universe))
    count = min(count, available)
    chosen: dict[str, None] = {}
    while len(chosen) < count:
        for i in rng.integers(0, len(universe), 2 * (count - len(chosen))).tolist():
            item = universe[i]
            if item not in avoid and item not in chosen:
                chosen[item] = None
                if len(chosen) == count:
                    break
    return list(chosen)


def evaluate_sequences(
    sequences: dict[str, list[str]],
    names: Sequence[str],
    negatives: int = NEGATIVES,
    seed: int = SEED,
    file_name: str = "sequences",
) -> Report:
    """Every recommender in ``names`` on SASRec's leave-one-out (the module docstring)."""
    split = leave_one_out(sequences)
    rng = np.random.default_rng(seed)
    drawn = [
        _negatives(split.items, {*history, answer}, negatives, rng)
        for _, history, answer in split.cases
    ]
    # every user's second-last item after the ones before it: never the test item
    validation = [(history[:-1], history[-1]) for _, history, _ in split.cases]
    results = []
    for name in names:
        recommender, learn_seconds = _fitted(name, split.train, validation)
        ranks: list[int] = []
        sampled: list[int] = []
        seconds: list[float] = []
        for (user, history, answer), others in zip(split.cases, drawn, strict=True):
            start = time.perf_counter()
            answer_list = recommender.recommend(
                history, LIST_LENGTH, exclude=set(history), session_id=user
            )
            seconds.append(time.perf_counter() - start)
            listed = [i for i, _ in answer_list]
            ranks.append(listed.index(answer) + 1 if answer in listed else 0)
            # the answer last: when it ties with unknown negatives, it ranks below them
            ordered = recommender.rank(history, [*others, answer], session_id=user)
            sampled.append(ordered.index(answer) + 1)
        metrics = rank_metrics(ranks)
        for key, value in rank_metrics(sampled, (SAMPLED_CUTOFF,)).items():
            if not key.startswith("MRR"):
                metrics[f"sampled_{key}"] = value
        results.append(
            Result(
                recommender=name,
                default=name == DEFAULT,
                metrics=metrics,
                latency_ms=_latency(seconds, learn_seconds, len(split.train)),
            )
        )
    protocol = SequenceProtocol(
        points=len(split.cases),
        file=file_name,
        users=len(sequences),
        items=len(split.items),
        train_events=len(split.train),
        negatives=negatives,
        seed=seed,
        cutoffs=list(CUTOFFS),
    )
    return Report(protocol=protocol, results=results)


def _name(result: Result) -> str:
    return result.recommender + (" (default)" if result.default else "")


def format_report(report: Report) -> str:
    console = Console(file=io.StringIO(), width=150, color_system=None)
    p = report.protocol
    if isinstance(p, SessionProtocol):
        console.print(
            f"train {p.train}: {p.train_events} events, {p.train_sessions} sessions, "
            f"{p.items} items; test {p.test}: {p.test_sessions} sessions, {p.test_events} "
            f"events ({p.dropped_unseen_events} events of unseen items and "
            f"{p.dropped_short_sessions} sessions shorter than 2 dropped); {p.points} "
            f"predictions, all items ranked, {'online' if p.online else 'offline'}",
            soft_wrap=True,
        )
    else:
        console.print(
            f"{p.file}: {p.users} users, {p.items} items, {p.train_events} training events; "
            f"leave-one-out for {p.points} users: full ranking (earlier items excluded) "
            f"and {p.negatives} sampled negatives (seed {p.seed})",
            soft_wrap=True,
        )
    keys = [k for k in report.results[0].metrics if "@" in k] if report.results else []
    accuracy = Table("recommender", *keys[:9], title="accuracy")
    extra = keys[9:]
    timing = Table("recommender", *extra, "p50 ms", "p99 ms", "learn µs/event")
    for r in report.results:
        accuracy.add_row(_name(r), *(f"{r.metrics[k]:.4f}" for k in keys[:9]))
        timing.add_row(
            _name(r),
            *(f"{r.metrics[k]:.4f}" for k in extra),
            f"{r.latency_ms['p50']:.3f}",
            f"{r.latency_ms['p99']:.3f}",
            f"{r.latency_ms['learn_mean'] * 1000:.1f}",
        )
    console.print(accuracy)
    console.print(timing)
    output = console.file
    assert isinstance(output, io.StringIO)
    return output.getvalue()


def run_eval_recommend(
    train: Path | None,
    test: Path | None,
    sequences: Path | None,
    online: bool,
    names: Sequence[str] | None,
    as_json: bool,
    negatives: int = NEGATIVES,
    seed: int = SEED,
) -> int:
    """``usertide eval recommend``: --train and --test (sessions), or --sequences."""
    chosen = list(names or RECOMMENDERS)
    try:
        unknown = [n for n in chosen if n not in RECOMMENDERS]
        if unknown:
            raise ValueError(
                f"unknown recommender {unknown[0]!r}; known: {', '.join(sorted(RECOMMENDERS))}"
            )
        if sequences is not None:
            if train is not None or test is not None or online:
                raise ValueError("--sequences takes one file (no --train/--test/--online)")
            _exists(sequences)
            report = evaluate_sequences(
                read_sequences(sequences), chosen, negatives, seed, str(sequences)
            )
        else:
            if train is None or test is None:
                raise ValueError("give --train F --test F (sessions), or --sequences F")
            for path in (train, test):
                _exists(path)
                if not is_session_file(path):
                    raise ValueError(f"{path}: not a session file (SessionId, ItemId, Time)")
            report = evaluate_sessions(
                read_events(train),
                sessions(read_events(test)),
                chosen,
                online,
                str(train),
                str(test),
            )
    except ValueError as exc:
        print(f"usertide eval recommend: {exc}", file=sys.stderr)
        return 2
    if as_json:
        sys.stdout.write(report.to_json().decode() + "\n")
    else:
        sys.stdout.write(format_report(report))
    return 0


def _exists(path: Path) -> None:
    if not path.is_file():
        raise ValueError(f"no such file: {path}")
