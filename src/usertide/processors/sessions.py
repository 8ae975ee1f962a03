"""Sessionization.

With a client-side session id (``context.sessionId``, PostHog's ``$session_id``) the
client decides: a new session when the id changes, and after 24 hours in all (the
continuation gets the id ``<client id>#<n>``, so every session has its own record).
Without one: a new session after 30 minutes idle or 24 hours in all.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, ClassVar

import msgspec

from usertide.engine.base import CLOSED_SESSION, Output, Processor, SessionClosed, UserState
from usertide.events import Event

IDLE_SECONDS = 30 * 60
MAX_SECONDS = 24 * 60 * 60
PAGE_TYPES = frozenset({"page", "screen"})


class SessionState(msgspec.Struct, array_like=True):
    id: str = ""
    client_id: str | None = None
    started: float = 0.0
    last: float = 0.0
    events: int = 0
    pages: int = 0
    total: int = 0  # sessions this user has had


class Sessionizer(Processor[SessionState]):
    name: ClassVar[str] = "sessions"
    state_type: ClassVar[type[msgspec.Struct]] = SessionState

    def __init__(self, idle_seconds: float = IDLE_SECONDS, max_seconds: float = MAX_SECONDS):
        self.idle_seconds = idle_seconds
        self.max_seconds = max_seconds

    def initial(self) -> SessionState:
        return SessionState()

    def process(self, event: Event, state: SessionState, user: UserState) -> Sequence[Output]:
        t = event.timestamp.timestamp()
        outputs: list[Output] = []
        if self._starts_new(event, state, t):
            if state.events:
                closed = _closed(user.key, state)
                user.scratch[CLOSED_SESSION] = closed
                outputs.append(closed)
            client = event.session_id
            if client is not None and client == state.client_id:
                state.id = f"{client}#{state.total + 1}"  # the same client id past 24 h
            else:
                state.id = client or _session_id(user.key, t)
            state.client_id = event.session_id
            state.started = t
            state.last = t
            state.events = 0
            state.pages = 0
            state.total += 1
        # Late events stay in the session they arrived in; time never runs backwards.
        state.last = max(state.last, t)
        state.events += 1
        if event.type in PAGE_TYPES:
            state.pages += 1
        return outputs

    def _starts_new(self, event: Event, state: SessionState, t: float) -> bool:
        if state.events == 0:
            return True
        if t - state.started > self.max_seconds:
            return True
        if event.session_id and state.client_id:
            return event.session_id != state.client_id  # the client's id decides
        return t - state.last > self.idle_seconds

    def merge(self, into: SessionState, other: SessionState) -> SessionState:
        latest = other if other.last >= into.last else into
        merged = msgspec.structs.replace(latest)
        merged.total = into.total + other.total
        return merged

    def view(self, state: SessionState) -> dict[str, Any]:
        return {
            "session_id": state.id or None,
            "session_started": _iso(state.started),
            "session_last_event": _iso(state.last),
            "session_duration_seconds": round(state.last - state.started, 3),
            "session_events": state.events,
            "session_pages": state.pages,
            "sessions": state.total,
        }


def _iso(t: float) -> str | None:
    return datetime.fromtimestamp(t, UTC).isoformat().replace("+00:00", "Z") if t else None


def _session_id(key: str, started: float) -> str:
    digest = hashlib.blake2b(f"{key}|{started:.3f}".encode(), digest_size=10).hexdigest()
    return f"s_{digest}"


def _closed(key: str, state: SessionState) -> SessionClosed:
    return SessionClosed(
        user_key=key,
        session_id=state.id,
        started=state.started,
        ended=state.last,
        events=state.events,
        pages=state.pages,
    )
