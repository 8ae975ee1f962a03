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

from usertide.events import Event

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
        self._by_key: dict[str, list[Event]] = {}
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
                    self._by_key.setdefault(key, []).append(event)
                self._kept += 1
                self._since_sweep += 1
            if self._since_sweep >= SWEEP_EVERY or self._kept > MAX_KEPT:
                self._sweep()

    def lost(self, events: Sequence[Event]) -> None:
        """Events a failed write lost: they will never reach the engine."""
        gone = {id(e) for e in events}
        with self._lock:
            for key in list(self._by_key):
                kept = [e for e in self._by_key[key] if id(e) not in gone]
                if kept:
                    self._by_key[key] = kept
                else:
                    del self._by_key[key]

    # -- the risk API ----------------------------------------------------------------
    def pending(self, key: str) -> list[Event]:
        """The sign-ins for ``key`` the engine has not applied yet, in log order. Call it
        under the engine's lock, so the engine cannot apply them meanwhile."""
        through = self._applied_through()
        with self._lock:
            kept = self._by_key.get(key)
            if not kept:
                return []
            left = [e for e in kept if e.offset is None or e.offset > through]
            if len(left) != len(kept):
                if left:
                    self._by_key[key] = left
                else:
                    del self._by_key[key]
            return left

    def _sweep(self) -> None:
        through = self._applied_through()
        kept = 0
        for key in list(self._by_key):
            left = [e for e in self._by_key[key] if e.offset is None or e.offset > through]
            if left:
                self._by_key[key] = left
                kept += len(left)
            else:
                del self._by_key[key]
        self._since_sweep = 0
        self._kept = kept  # (counted per key: an upper bound of the sign-ins kept)
        while self._kept > MAX_KEPT and self._by_key:  # the engine is not keeping up
            oldest = next(iter(self._by_key))
            self._kept -= len(self._by_key.pop(oldest))

    def __len__(self) -> int:
        with self._lock:
            return sum(len(v) for v in self._by_key.values())
