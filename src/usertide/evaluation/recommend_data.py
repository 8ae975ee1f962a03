"""Reading recommendation data: session files (session-rec's TSV) and user sequences.

A session file has a header naming ``SessionId``, ``ItemId`` and ``Time`` (unix seconds)
in any order, tab-separated. A user-sequence file has ``user item`` lines, each user's
lines in time order (the SASRec authors' format), without times.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection, Iterable
from pathlib import Path
from typing import NamedTuple

Event = tuple[str, str, float]  # session id, item id, unix seconds
COLUMNS = ("SessionId", "ItemId", "Time")


class Session(NamedTuple):
    session_id: str
    items: list[str]
    times: list[float]


def read_events(path: Path) -> list[Event]:
    """A session file's events, in file order."""
    with path.open(encoding="utf-8") as lines:
        header = next(lines, "").rstrip("\r\n").split("\t")
        missing = [c for c in COLUMNS if c not in header]
        if missing:
            raise ValueError(f"{path}: the header has no {', '.join(missing)} (session-rec TSV)")
        at = [header.index(c) for c in COLUMNS]
        events = []
        for number, line in enumerate(lines, start=2):
            fields = line.rstrip("\r\n").split("\t")
            if fields == [""]:
                continue
            try:
                events.append((fields[at[0]], fields[at[1]], float(fields[at[2]])))
            except (IndexError, ValueError):
                raise ValueError(f"{path}:{number}: not SessionId, ItemId, Time") from None
    return events


def sessions(events: Iterable[Event]) -> list[Session]:
    """Events grouped by session, sessions in order of first appearance, each session's
    events in time order (ties keep file order)."""
    grouped: dict[str, list[tuple[float, int, str]]] = {}
    for order, (session_id, item, time) in enumerate(events):
        grouped.setdefault(session_id, []).append((time, order, item))
    out = []
    for session_id, rows in grouped.items():
        rows.sort()
        out.append(Session(session_id, [r[2] for r in rows], [r[0] for r in rows]))
    return out


class TestSplit(NamedTuple):
    sessions: list[Session]
    unseen_events: int  # events of items not in the training data, dropped
    short_sessions: int  # sessions left with fewer than two events, dropped


def prepare_test(test: Iterable[Session], known: Collection[str]) -> TestSplit:
    """As session-rec loads a test set: events of items unseen in training are dropped,
    then sessions left shorter than two events."""
    kept, unseen, short = [], 0, 0
    for session in test:
        pairs = [(i, t) for i, t in zip(session.items, session.times, strict=True) if i in known]
        unseen += len(session.items) - len(pairs)
        if len(pairs) < 2:
            short += 1
            continue
        kept.append(Session(session.session_id, [p[0] for p in pairs], [p[1] for p in pairs]))
    return TestSplit(kept, unseen, short)


def read_sequences(path: Path) -> dict[str, list[str]]:
    """A user-sequence file: each user's items in order."""
    out: dict[str, list[str]] = {}
    with path.open(encoding="utf-8") as lines:
        for number, line in enumerate(lines, start=1):
            fields = line.split()
            if not fields:
                continue
            if len(fields) != 2:
                raise ValueError(f"{path}:{number}: not a 'user item' line")
            out.setdefault(fields[0], []).append(fields[1])
    return out


def is_session_file(path: Path) -> bool:
    with path.open(encoding="utf-8") as lines:
        header = next(lines, "").rstrip("\r\n").split("\t")
    return all(c in header for c in COLUMNS)


class LeaveOneOut(NamedTuple):
    train: list[Event]  # every user's items but the last two (all of them for fewer than 3)
    cases: list[tuple[str, list[str], str]]  # user, items but the last, the last item
    items: list[str]  # every item in the file, in order of first appearance


def leave_one_out(sequences: dict[str, list[str]]) -> LeaveOneOut:
    """SASRec's split: the last item is the test, the second last the validation (the
    recommenders are not tuned on it here, but it is the latest input at test time, as
    in SASRec); users with fewer than three items only train. No times are known, so
    every event is at time 0."""
    train: list[Event] = []
    cases = []
    for user, items in sequences.items():
        kept = items[:-2] if len(items) >= 3 else items
        train += [(user, item, 0.0) for item in kept]
        if len(items) >= 3:
            cases.append((user, items[:-1], items[-1]))
    everything = Counter(item for items in sequences.values() for item in items)
    return LeaveOneOut(train, cases, list(everything))
