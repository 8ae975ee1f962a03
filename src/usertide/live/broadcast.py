"""From the engine's thread to the stream clients' bounded queues, never waiting.

Publishers (the engine thread after each stretch of the log it applies, whoever stores
alerts) pick the clients that want each message, encode each message once, and hand
every client's share of the stretch to the event loop in one ``call_soon_threadsafe``:
they take no lock and never wait for a client. On the loop, a client whose queue cannot
take its share is dropped rather than waited for, so a client that does not read costs
at most ``capacity`` messages of memory and never slows ingestion or the engine.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

import msgspec

from usertide.alerts.model import Alert
from usertide.engine.base import Detection, Output
from usertide.events import Event, event_to_builtins
from usertide.live import sse
from usertide.live.filters import StreamFilter, owners

log = logging.getLogger(__name__)

Shares = list[tuple["Subscription", list[bytes]]]


class Subscription:
    """One stream client: its filter and its queue of encoded messages. Apart from
    the constructor (run on the loop too), only the loop's thread touches it."""

    def __init__(self, wants: StreamFilter, loop: asyncio.AbstractEventLoop, capacity: int):
        self.wants = wants
        self.loop = loop
        self.capacity = capacity
        self.frames: deque[bytes] = deque()
        self.peak = 0  # the longest the queue has been
        self.wake = asyncio.Event()  # messages arrived, or the stream must end
        self.stopped = asyncio.Event()  # the stream must end: stop waiting for writes
        self.ended: str | None = None  # "dropped" (too slow) or "closed" (shutdown)

    def take(self, frames: list[bytes]) -> bool:
        """Queue a share; ``False`` if it does not fit (the client is too slow)."""
        if self.ended is not None:
            return True
        if len(self.frames) + len(frames) > self.capacity:
            return False
        self.frames.extend(frames)
        self.peak = max(self.peak, len(self.frames))
        self.wake.set()
        return True

    def end(self, why: str) -> None:
        if self.ended is None:
            self.ended = why
        self.frames.clear()  # nothing more is sent but the ending
        self.stop()

    def stop(self) -> None:
        self.stopped.set()
        self.wake.set()


@dataclass(frozen=True)
class _Routes:
    """Who listens, indexed by user filter so a message only meets its candidates.
    Replaced whole on every change, so publishers read it without the lock."""

    everyone: tuple[Subscription, ...] = ()
    by_user: dict[str, tuple[Subscription, ...]] = field(default_factory=dict)

    @classmethod
    def of(cls, subs: Iterable[Subscription]) -> _Routes:
        everyone: list[Subscription] = []
        by_user: dict[str, list[Subscription]] = {}
        for sub in subs:
            if sub.wants.user is None:
                everyone.append(sub)
            else:
                by_user.setdefault(sub.wants.user, []).append(sub)
        return cls(tuple(everyone), {u: tuple(s) for u, s in by_user.items()})

    def candidates(self, users: Iterable[str | None]) -> Iterable[Subscription]:
        found = [self.by_user.get(u, ()) for u in users if u is not None]
        named = [s for group in found for s in group]
        if len(found) > 1:  # the same client may be found under two ids
            named = list(dict.fromkeys(named))
        return (*self.everyone, *named)


class Broadcaster:
    """The stream clients of one service. ``heartbeat``, ``write_timeout`` and
    ``grace`` pace the streams (``web/stream.py``); tests shorten them."""

    def __init__(self, *, max_clients: int = 100, capacity: int = 1000) -> None:
        self.max_clients = max_clients
        self.capacity = capacity
        self.heartbeat = 15.0  # seconds without a message before a ``: ping``
        self.write_timeout = 10.0  # a client that takes no bytes for this long is cut off
        self.grace = 1.0  # how long a stopping stream may still take to write its end
        self.dropped = 0
        self._lock = threading.Lock()
        self._subs: set[Subscription] = set()
        self._routes = _Routes()
        self._last_offset = -1  # events at or below it were shown (the engine skips them)
        self.closed = False

    # -- clients (the loop's thread) -----------------------------------------------
    def subscribe(self, wants: StreamFilter) -> Subscription | None:
        """A new client on the running loop; ``None`` when full or shutting down."""
        with self._lock:
            if self.closed or len(self._subs) >= self.max_clients:
                return None
            sub = Subscription(wants, asyncio.get_running_loop(), self.capacity)
            self._subs.add(sub)
            self._routes = _Routes.of(self._subs)
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        with self._lock:
            if sub in self._subs:
                self._subs.discard(sub)
                self._routes = _Routes.of(self._subs)

    @property
    def clients(self) -> int:
        return len(self._subs)

    def close(self) -> None:
        """End every stream now (server shutdown waits for open responses), and take
        no new clients."""
        with self._lock:
            self.closed = True
            subs, self._subs = self._subs, set()
            self._routes = _Routes()
        for sub in subs:
            _call(sub.loop, sub.end, "closed")

    # -- publishers (any thread) --------------------------------------------------------
    def on_applied(self, events: Sequence[Event], outputs: Sequence[Output]) -> None:
        """A stretch of the log the engine applied, and what it found in it."""
        routes = self._routes
        if not routes.everyone and not routes.by_user:
            if events and events[-1].offset is not None:
                self._last_offset = max(self._last_offset, events[-1].offset)
            return
        shares: dict[Subscription, list[bytes]] = {}
        for event in events:
            if event.offset is not None:
                if event.offset <= self._last_offset:
                    continue  # replayed after a restart, or taken twice at start: shown
                self._last_offset = event.offset
            frame: bytes | None = None
            for sub in routes.candidates((event.user_id, event.anonymous_id)):
                if sub.wants.wants_event(event):
                    if frame is None:
                        frame = sse.message("event", event_to_builtins(event), event.offset)
                    shares.setdefault(sub, []).append(frame)
        for output in outputs:
            if isinstance(output, Detection):
                self._add(shares, routes, "detection", output.user_key, output)
        self._hand_over(shares)

    def on_alerts(self, alerts: Sequence[Alert]) -> None:
        """Alerts just stored (once each)."""
        routes = self._routes
        if not routes.everyone and not routes.by_user:
            return
        shares: dict[Subscription, list[bytes]] = {}
        for alert in alerts:
            self._add(shares, routes, "alert", alert.user_id, alert)
        self._hand_over(shares)

    def _add(
        self,
        shares: dict[Subscription, list[bytes]],
        routes: _Routes,
        kind: str,
        user_key: str,
        finding: msgspec.Struct,
    ) -> None:
        frame: bytes | None = None
        for sub in routes.candidates(owners(user_key)):
            if sub.wants.wants_finding(kind, user_key):
                if frame is None:
                    frame = sse.message(kind, msgspec.to_builtins(finding))
                shares.setdefault(sub, []).append(frame)

    def _hand_over(self, shares: dict[Subscription, list[bytes]]) -> None:
        by_loop: dict[asyncio.AbstractEventLoop, Shares] = {}
        for sub, frames in shares.items():
            by_loop.setdefault(sub.loop, []).append((sub, frames))
        for loop, batch in by_loop.items():  # one hand-over per loop (one in a server)
            if not _call(loop, self._deliver, batch):
                for sub, _ in batch:
                    self.unsubscribe(sub)

    # -- the loop's thread --------------------------------------------------------------
    def _deliver(self, batch: Shares) -> None:
        for sub, frames in batch:
            if not sub.take(frames):
                self.unsubscribe(sub)  # frees its slot at once
                sub.end("dropped")
                self.dropped += 1
                log.info("a stream client fell %d messages behind: dropped", sub.capacity)


def _call(loop: asyncio.AbstractEventLoop, fn: Callable[..., object], *args: object) -> bool:
    """Schedule ``fn(*args)`` on ``loop`` from any thread; ``False`` if it is closed."""
    try:
        loop.call_soon_threadsafe(fn, *args)
    except RuntimeError:  # the loop is closed: nobody is left to read
        return False
    return True
