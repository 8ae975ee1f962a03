"""Item-to-item rules from co-occurrence in sessions, as session-rec defines them.

Both answer from the session's most recent item alone, with the ``pruning`` strongest
rules from it (session-rec prunes once after fitting; here the counts stay whole, so
they keep learning, and the pruning happens when answering: the same rules).

- ``ar`` (association rules): every pair of events in a session counts once in each
  direction, whatever their order or distance.
- ``sr`` (sequential rules): an event counts for each of the ``steps`` events before it
  in its session, weighted by distance ``d``: ``1/d`` (``div``, session-rec's default),
  ``1`` (``same``), ``1 - d/10`` (``linear``), ``1/log10(d + 1.7)`` (``log``) or
  ``1/d**2`` (``quadratic``).

Rules need each session's earlier events: the latest ``history`` of them are kept for
the ``max_sessions`` sessions most recently active (older sessions are done).
"""

from __future__ import annotations

import math
from abc import abstractmethod
from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import Any, Final, Literal, Self

import msgspec
import numpy as np

from usertide.recommend.base import (
    EMPTY,
    IntArray,
    Recommender,
    Scores,
    best_first,
    configured,
    decode,
    pack,
    unpack,
)

Weighting = Literal["div", "same", "linear", "log", "quadratic"]
WEIGHTS: Final[dict[str, Callable[[int], float]]] = {
    "div": lambda d: 1.0 / d,
    "same": lambda d: 1.0,
    "linear": lambda d: max(0.0, 1.0 - 0.1 * d),
    "log": lambda d: 1.0 / math.log10(d + 1.7),
    "quadratic": lambda d: 1.0 / (d * d),
}


class RulesConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    pruning: int = 20  # rules kept per item when answering; 0: all
    steps: int = 10  # sr: how far back an event pairs
    weighting: Weighting = "div"  # sr: the weight of a pair by its distance
    history: int = 100  # ar: the earlier events of a session that pair with a new one
    max_sessions: int = 100_000  # sessions whose latest events are kept

    def __post_init__(self) -> None:
        if self.pruning < 0 or self.steps < 1 or self.history < 1 or self.max_sessions < 1:
            raise ValueError("pruning must be >= 0; steps, history, max_sessions >= 1")


class _RulesState(msgspec.Struct, array_like=True, forbid_unknown_fields=True):
    sources: bytes  # <i8, the rules in order: source item, target item, weight
    targets: bytes
    weights: bytes  # <f8
    sessions: list[str]  # least recently active first
    lengths: bytes  # <i8, each session's kept events
    history: bytes  # <i8, those events, session after session


class _Rules(Recommender):
    def __init__(self, config: RulesConfig | None = None) -> None:
        super().__init__()
        self.config = config or RulesConfig()
        self.rules: dict[int, dict[int, float]] = {}
        self._open: OrderedDict[str, list[int]] = OrderedDict()
        self._keep = self._kept_history()

    def _kept_history(self) -> int:
        return self.config.history

    @abstractmethod
    def _pairs(self, history: list[int], item: int) -> None:
        """Count the new event ``item`` against the session's earlier ones."""

    def _add(self, source: int, target: int, weight: float) -> None:
        if weight <= 0:
            return
        row = self.rules.setdefault(source, {})
        row[target] = row.get(target, 0.0) + weight

    def _learn(self, session_id: str, item: int, timestamp: float) -> None:
        history = self._open.get(session_id)
        if history is None:
            history = self._open[session_id] = []
            if len(self._open) > self.config.max_sessions:
                self._open.popitem(last=False)
        else:
            self._open.move_to_end(session_id)
        self._pairs(history, item)
        history.append(item)
        if len(history) > self._keep:
            del history[0]

    def forget_session(self, session_id: str) -> None:
        self._open.pop(session_id, None)

    def _scores(self, session: Sequence[int], session_id: str | None) -> Scores:
        row = self.rules.get(session[-1]) if session else None
        if not row:
            return EMPTY
        items: IntArray = np.fromiter(row.keys(), np.int64, len(row))
        weights = np.fromiter(row.values(), np.float64, len(row))
        if self.config.pruning and len(row) > self.config.pruning:
            counts = self.catalogue.counts[items].astype(np.float64)
            keep = best_first(weights, counts, -items.astype(np.float64), self.config.pruning)
            items, weights = items[keep], weights[keep]
        return items, weights

    def settings(self) -> Any:
        return msgspec.to_builtins(self.config)

    @classmethod
    def _configured(cls, settings: Any) -> Self:
        return cls(configured(settings, RulesConfig))

    def _state(self) -> Any:
        sources: list[int] = []
        targets: list[int] = []
        weights: list[float] = []
        for source, row in self.rules.items():
            sources += [source] * len(row)
            targets += list(row.keys())
            weights += list(row.values())
        histories = list(self._open.values())
        return _RulesState(
            pack(sources, "<i8"),
            pack(targets, "<i8"),
            pack(weights, "<f8"),
            list(self._open),
            pack([len(h) for h in histories], "<i8"),
            pack([item for h in histories for item in h], "<i8"),
        )

    def _restore(self, state: msgspec.Raw) -> None:
        loaded = decode(state, _RulesState)
        sources = unpack(loaded.sources, "<i8", "rule sources")
        targets = unpack(loaded.targets, "<i8", "rule targets", len(sources))
        weights = unpack(loaded.weights, "<f8", "rule weights", len(sources))
        lengths = unpack(loaded.lengths, "<i8", "history lengths", len(loaded.sessions))
        history = unpack(loaded.history, "<i8", "histories")
        items = np.concatenate((sources, targets, history))
        if len(items) and (items.min() < 0 or items.max() >= len(self.catalogue)):
            raise ValueError("rules name items outside the catalogue")
        if (lengths < 0).any() or lengths.sum() != len(history) or not (weights > 0).all():
            raise ValueError("rules: bad history lengths or weights")
        self.rules = {}
        for source, target, weight in zip(
            sources.tolist(), targets.tolist(), weights.tolist(), strict=True
        ):
            self.rules.setdefault(source, {})[target] = weight
        ends = np.cumsum(lengths).tolist()
        starts = [0, *ends[:-1]]
        values = history.tolist()
        self._open = OrderedDict(
            (session, values[start:end])
            for session, start, end in zip(loaded.sessions, starts, ends, strict=True)
        )


class AssociationRules(_Rules):
    name = "ar"

    def _pairs(self, history: list[int], item: int) -> None:
        for earlier in history:
            self._add(item, earlier, 1.0)
            self._add(earlier, item, 1.0)


class SequentialRules(_Rules):
    name = "sr"

    def _kept_history(self) -> int:
        return self.config.steps

    def _pairs(self, history: list[int], item: int) -> None:
        weight = WEIGHTS[self.config.weighting]
        for distance, earlier in enumerate(reversed(history), start=1):
            self._add(earlier, item, weight(distance))
