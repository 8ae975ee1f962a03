"""Sign-ins the log has taken but the engine has not applied yet.

The engine applies the log in order, behind the loader (a DuckDB commit and a linger);
a burst of attempts on one account arrives faster than that. So that a synchronous
answer counts every sign-in taken before it for the same account and the same network,
the log's committer shows every sign-in here the moment it takes it into its queue (its
place in the log is then fixed; its offset is set once it is durable), kept per key
until the engine's offset passes it. The risk API scores a new attempt from the
engine's state *plus* these, applied to copies (``risk.now``): the engine's own state
changes only in the engine, each sign-in applied exactly once in log order, so a replay
after a crash reaches the same state and the same scores. A write the log loses (a
failed fsync) takes its sign-ins out again.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Any, TypeVar, cast

from usertide.events import Event

S = TypeVar("S")

MAX_KEPT = 200_000  # bounds memory if the engine stops; its health check reports that
SWEEP_EVERY = 4_096  # sign-ins taken between two sweeps of the applied ones


class InFlight:
    def __init__(
        self,
        keys_of: Callable[[Event], tuple[str, ...]],
        applied_through: Callable[[], int],
    ) -> None:
        self.keys_of = keys_of
        self._applied_through = applied_through
        self._lock = threading.Lock()
        # per key: (its taken sign-ins numbered in log order, the next number)
        self._by_key: dict[str, list[tuple[int, Event]]] = {}
        self._next: dict[str, int] = {}
        # per key: the number of the last sign-in applied to a caught-up copy, and it
        self._caught_up: dict[str, tuple[int, Any]] = {}
        self._kept = 0
        self._since_sweep = 0

    # -- the log's observer ----------------------------------------------------------
    def taken(self, events: Sequence[Event]) -> None:
        """Events the log has taken, in log order (called by the committer)."""
        keys_of = self.keys_of
        with self._lock:
            for event in events:
                keys = keys_of(event)
                if not keys:
                    continue
                for key in keys:
                    number = self._next.get(key, 0)
                    self._next[key] = number + 1
                    self._by_key.setdefault(key, []).append((number, event))
                self._kept += 1
                self._since_sweep += 1
            if self._since_sweep >= SWEEP_EVERY or self._kept > MAX_KEPT:
                self._sweep()

    def lost(self, events: Sequence[Event]) -> None:
        """Events a failed write lost: they will never reach the engine."""
        gone = {id(e) for e in events}
        with self._lock:
            self._caught_up.clear()
            for key in list(self._by_key):
                kept = [(n, e) for n, e in self._by_key[key] if id(e) not in gone]
                if kept:
                    self._by_key[key] = kept
                else:
                    self._forget(key)

    # -- the risk API ----------------------------------------------------------------
    def pending(self, key: str) -> list[Event]:
        """The sign-ins for ``key`` the engine has not applied yet, in log order. Call it
        under the engine's lock, so the engine cannot apply them meanwhile."""
        with self._lock:
            return [e for _, e in self._left(key, self._applied_through())]

    def caught_up(
        self,
        key: str,
        base: Callable[[], S],
        copy: Callable[[S], S],
        apply: Callable[[S, Event], None],
    ) -> S | None:
        """``key``'s state with every sign-in the log took for it applied, or ``None``
        when the engine has applied them all (its own state is then the answer).

        ``base()`` is the engine's state; it is copied, never changed. The copy is kept
        and brought up to date from one call to the next (a burst on one account or
        network would otherwise re-apply all its pending sign-ins on every attempt):
        it stays valid while every sign-in the engine applied since it was made is one
        it already holds. The caller must not change what it gets. Call it under the
        engine's lock.
        """
        with self._lock:
            left = self._left(key, self._applied_through())
            if not left:
                return None
            kept = self._caught_up.get(key)
            state: S
            if kept is not None and kept[0] >= left[0][0] - 1:
                last, state = kept[0], cast(S, kept[1])
            else:  # none yet, or the engine applied sign-ins the copy has not seen
                last, state = -1, copy(base())
            for number, event in left:
                if number > last:
                    apply(state, event)
            self._caught_up[key] = (left[-1][0], state)
            return state

    def _left(self, key: str, through: int) -> list[tuple[int, Event]]:
        kept = self._by_key.get(key)
        if not kept:
            return []
        left = [(n, e) for n, e in kept if e.offset is None or e.offset > through]
        if len(left) != len(kept):
            if left:
                self._by_key[key] = left
            else:
                self._forget(key)
        return left

    def _forget(self, key: str) -> None:
        self._by_key.pop(key, None)
        self._next.pop(key, None)
        self._caught_up.pop(key, None)

    def _sweep(self) -> None:
        through = self._applied_through()
        kept = 0
        for key in list(self._by_key):
            kept += len(self._left(key, through))
        self._since_sweep = 0
        self._kept = kept  # (counted per key: an upper bound of the sign-ins kept)
        while self._kept > MAX_KEPT and self._by_key:  # the engine is not keeping up
            oldest = next(iter(self._by_key))
            self._kept -= len(self._by_key[oldest])
            self._forget(oldest)

    def __len__(self) -> int:
        with self._lock:
            return sum(len(v) for v in self._by_key.values())
