"""Sign-ins that are in the log but not yet applied by the engine.

The engine applies the log in order, behind the loader (a DuckDB commit and a linger);
a burst of attempts on one account arrives faster than that. So that a synchronous
answer counts every sign-in acknowledged before it for the same account and the same
network, the log's committer shows every durable sign-in here, kept per key in log
order until the engine's offset passes it. The risk API scores a new attempt from the
engine's state *plus* these, applied to a copy (``risk.now``): the engine's own state
changes only in the engine, each sign-in applied exactly once in log order, so a
replay after a crash reaches the same state and the same scores.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Sequence

from usertide.events import Event

MAX_KEPT = 200_000  # bounds memory if the engine stops; its health check reports that


class InFlight:
    def __init__(
        self,
        keys_of: Callable[[Event], tuple[str, ...]],
        applied_through: Callable[[], int],
    ) -> None:
        self.keys_of = keys_of
        self._applied_through = applied_through
        self._lock = threading.Lock()
        self._order: deque[tuple[int, tuple[str, ...]]] = deque()
        self._by_key: dict[str, deque[Event]] = {}

    def observe(self, events: Sequence[Event]) -> None:
        """Durable events, in log order (offsets set): called by the log's committer."""
        keys_of = self.keys_of
        with self._lock:
            for event in events:
                keys = keys_of(event)
                if not keys or event.offset is None:
                    continue
                self._order.append((event.offset, keys))
                for key in keys:
                    self._by_key.setdefault(key, deque()).append(event)
            self._prune(self._applied_through())
            while len(self._order) > MAX_KEPT:
                self._drop_first()

    def pending(self, key: str) -> list[Event]:
        """The sign-ins for ``key`` the engine has not applied yet, in log order. Call it
        under the engine's lock, so the engine cannot apply them meanwhile."""
        with self._lock:
            self._prune(self._applied_through())
            kept = self._by_key.get(key)
            return list(kept) if kept else []

    def _prune(self, through: int) -> None:
        order = self._order
        while order and order[0][0] <= through:
            self._drop_first()

    def _drop_first(self) -> None:
        # Every key's queue is in log order too, so the oldest entry heads each of them.
        _, keys = self._order.popleft()
        for key in keys:
            kept = self._by_key[key]
            kept.popleft()
            if not kept:
                del self._by_key[key]

    def __len__(self) -> int:
        return len(self._order)
