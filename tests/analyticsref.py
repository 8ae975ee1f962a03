"""Independent reference computations for funnels and trends: plain Python over the
same events, by brute force (every increasing tuple of a person's events), not by
the greedy walk the SQL uses."""

from __future__ import annotations

import itertools
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any


@dataclass(frozen=True)
class Row:
    person: str
    ts: datetime
    offset: int
    name: str
    properties: dict[str, Any]


Match = Callable[[Row], bool]


def funnel(
    rows: Sequence[Row],
    steps: Sequence[Match],
    window_s: float,
    start: datetime,
    end: datetime,
    *,
    strict: bool = False,
    breakdown: Callable[[Row], Any] | None = None,
) -> dict[str, tuple[int, tuple[Row, ...]]]:
    """Per person: (depth, their conversion chain), by brute force."""
    by_person: dict[str, list[Row]] = defaultdict(list)
    for r in rows:
        if start <= r.ts < end:
            by_person[r.person].append(r)
    out: dict[str, tuple[int, tuple[Row, ...]]] = {}
    for person, events in by_person.items():
        events.sort(key=lambda r: (r.ts, r.offset))
        best: tuple[int, tuple[int, ...]] | None = None
        for depth in range(len(steps), 0, -1):
            candidates = []
            for idx in itertools.combinations(range(len(events)), depth):
                if strict and any(b != a + 1 for a, b in itertools.pairwise(idx)):
                    continue
                chain = [events[i] for i in idx]
                if not all(steps[k](chain[k]) for k in range(depth)):
                    continue
                if (chain[-1].ts - chain[0].ts).total_seconds() > window_s:
                    continue
                candidates.append(idx)
            if candidates:
                best = (depth, min(candidates))
                break
        if best is not None:
            out[person] = (best[0], tuple(events[i] for i in best[1]))
    return out


def step_users(result: dict[str, tuple[int, tuple[Row, ...]]], n: int) -> list[int]:
    return [sum(1 for depth, _ in result.values() if depth >= k) for k in range(1, n + 1)]
