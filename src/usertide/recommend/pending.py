"""Each visitor's latest event taken by the log, so that an answer about a visitor waits
for the engine to apply exactly that (and nothing more).

The log's committer shows every event here the moment it takes it (its offset is set
once it is durable, before it is acknowledged). A recommendation request for an
anonymous id, a user id or a session id looks up that key's latest event: if the engine
has not applied it yet, the request waits until it has (a few milliseconds: the loader's
linger); otherwise it answers at once, however far behind the engine is on other
visitors' events. So every event acknowledged before a request counts for that visitor,
and a busy site's requests do not all wait for the whole log.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence
from typing import Final

from usertide.events import Event

MAX_KEPT: Final = 200_000  # visitors remembered (the least recently active are dropped)


class LatestEvents:
    def __init__(self, max_kept: int = MAX_KEPT) -> None:
        self._latest: OrderedDict[str, Event] = OrderedDict()
        self._max = max_kept
        self._lock = threading.Lock()

    def taken(self, events: Sequence[Event]) -> None:
        """Events the log has taken, in log order (a committer observer)."""
        latest = self._latest
        with self._lock:
            for event in events:
                for key in _keys(event):
                    latest[key] = event
                    latest.move_to_end(key)
            while len(latest) > self._max:
                latest.popitem(last=False)

    def lost(self, events: Sequence[Event]) -> None:
        """Events a failed write lost: nothing to wait for on their account."""
        gone = {id(e) for e in events}
        with self._lock:
            for key in [k for k, e in self._latest.items() if id(e) in gone]:
                del self._latest[key]

    def offset(self, kind: str, value: str) -> int | None:
        """The log offset of the latest event of ``kind`` (``anonymous_id``, ``user_id``,
        ``session_id``) ``value``, once durable; ``None`` if none is known."""
        with self._lock:
            event = self._latest.get(_PREFIX[kind] + value)
        return None if event is None else event.offset


_PREFIX: Final = {"anonymous_id": "a:", "user_id": "u:", "session_id": "s:"}


def _keys(event: Event) -> list[str]:
    keys = []
    if event.anonymous_id:
        keys.append("a:" + event.anonymous_id)
    if event.user_id:
        keys.append("u:" + event.user_id)
    if event.session_id:
        keys.append("s:" + event.session_id)
    return keys
