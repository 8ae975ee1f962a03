"""The engine's extension point: a processor is a function of (event, user state).

A processor owns one slot of per-user state (a msgspec Struct), updates it for each of
the user's events in order, and returns outputs. It must be deterministic and do no
I/O, so that replaying the log from a checkpoint reaches the same state, and so the
same code runs in the embedded runtime and inside Quix Streams. Processors run in the
order they are listed; a later one may read an earlier one's slot (never write it).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any, ClassVar, Generic, TypeVar

import msgspec

from usertide.events import Event
from usertide.events.interaction import Interaction as Interaction
from usertide.events.reason import Reason as Reason

S = TypeVar("S", bound=msgspec.Struct)


class Detection(msgspec.Struct, kw_only=True, frozen=True, tag="detection"):
    """Something unusual about a user, with reasons a person can read."""

    detector: str
    user_key: str
    event_id: str
    timestamp: float
    score: float  # 0..1
    level: str = "low"  # low | medium | high
    reasons: tuple[Reason, ...] = ()
    data: dict[str, Any] = msgspec.field(default_factory=dict)


class SessionClosed(msgspec.Struct, kw_only=True, frozen=True, tag="session_closed"):
    """A session ended (seen at the user's first event after it). ``summary`` is filled
    during that same event by the processors that describe sessions, each under its
    name, with what the closed session ended with (before they start the new one)."""

    user_key: str
    session_id: str
    started: float
    ended: float
    events: int
    pages: int
    summary: dict[str, Any] = msgspec.field(default_factory=dict)


CLOSED_SESSION = "closed_session"  # the scratch entry holding this event's SessionClosed


def closing(user: UserState) -> SessionClosed | None:
    """The session this event closed, if it closed one (for processors resetting)."""
    closed: SessionClosed | None = user.scratch.get(CLOSED_SESSION)
    return closed


Output = Detection | SessionClosed | Interaction


class UserState:
    """The state under one key: one slot per processor.

    ``scratch`` is the per-event blackboard: processors that run earlier for the same
    event (for instance keyed by network rather than by user) leave findings there for
    later ones. It is reset for every event and never persisted.
    """

    __slots__ = ("key", "scratch", "slots")

    def __init__(self, key: str, slots: dict[str, msgspec.Struct]) -> None:
        self.key = key
        self.slots = slots
        self.scratch: dict[str, Any] = {}

    def get(self, processor: type[Processor[S]]) -> S:
        slot = self.slots[processor.name]
        return slot  # type: ignore[return-value]


class Processor(ABC, Generic[S]):
    name: ClassVar[str]
    state_type: ClassVar[type[msgspec.Struct]]
    #: "user" processors keep state per user; others keep it under ``key(event)``
    #: (e.g. per network) and run before the user processors of the same event.
    key_kind: ClassVar[str] = "user"

    def key(self, event: Event) -> str | None:
        """For non-user processors: the state key of this event, or ``None`` to skip it."""
        return None

    @abstractmethod
    def initial(self) -> S:
        """The state of a user never seen before."""

    @abstractmethod
    def process(self, event: Event, state: S, user: UserState) -> Sequence[Output]:
        """Update ``state`` (this processor's slot) for ``event``; return outputs."""

    @abstractmethod
    def merge(self, into: S, other: S) -> S:
        """Fold an anonymous visitor's state into the identified user's on identify."""

    def view(self, state: S) -> dict[str, Any]:
        """The JSON-able part of the state shown by the users API."""
        out: dict[str, Any] = msgspec.to_builtins(state)
        return out
