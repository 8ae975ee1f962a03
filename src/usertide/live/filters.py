"""What one stream client asked for: a user, event names, kinds of message."""

from __future__ import annotations

from dataclasses import dataclass

from usertide.events import Event

KINDS = ("event", "detection", "alert")
ANON = "anon:"  # the engine's key of a visitor known only by an anonymous id


@dataclass(frozen=True, slots=True)
class StreamFilter:
    """``user`` matches an event's user id or anonymous id, and the user a detection or
    alert is about (a visitor's ``anon:<id>`` key by its anonymous id too). ``names``
    restricts events only: detections and alerts have no event name."""

    user: str | None = None
    names: frozenset[str] | None = None
    kinds: frozenset[str] = frozenset(KINDS)

    def wants_event(self, event: Event) -> bool:
        if "event" not in self.kinds:
            return False
        if self.user is not None and self.user not in (event.user_id, event.anonymous_id):
            return False
        return self.names is None or event.name in self.names

    def wants_finding(self, kind: str, user_key: str) -> bool:
        """A detection or an alert about ``user_key``."""
        if kind not in self.kinds:
            return False
        return self.user is None or self.user in owners(user_key)


def owners(user_key: str) -> tuple[str, ...]:
    """The ids a user filter may name for an engine key."""
    if user_key.startswith(ANON):
        return (user_key, user_key[len(ANON) :])
    return (user_key,)
