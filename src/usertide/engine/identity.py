"""Which user an event belongs to, and when an anonymous visitor becomes a known user.

Rules (documented in ARCHITECTURE.md):
1. An event with a ``user_id`` belongs to that user. If it also carries an
   ``anonymous_id`` that is not yet linked, the anonymous id is linked to the user and
   the anonymous visitor's state is merged into the user's (``Merge``).
2. An event with only an ``anonymous_id`` belongs to the user it is linked to, or to
   the anonymous visitor ``anon:<id>`` if it is not linked.
3. An anonymous id links to at most one user, for good: once linked, a later event
   pairing it with a different user does not move it, and two identified users are
   never merged.
4. ``alias(previous_id, user_id)``: ``previous_id`` is treated as an anonymous id
   unless it is already a known identified user, in which case nothing is merged.
"""

from __future__ import annotations

from typing import NamedTuple

from usertide.events import Event

ANON_PREFIX = "anon:"


class Route(NamedTuple):
    key: str
    merge_from: str | None  # an anonymous visitor's key to fold into ``key`` first
    new_alias: tuple[str, str] | None  # (anonymous_id, user_id) linked by this event


class IdentityResolver:
    def __init__(self, aliases: dict[str, str] | None = None) -> None:
        self.aliases: dict[str, str] = dict(aliases or {})

    def route(self, event: Event, is_known_user: set[str] | None = None) -> Route:
        user_id = event.user_id
        anonymous_id = event.anonymous_id
        if event.type == "alias" and event.previous_id and user_id:
            if is_known_user is not None and event.previous_id in is_known_user:
                return Route(user_id, None, None)
            anonymous_id = event.previous_id
        if user_id:
            if anonymous_id and anonymous_id not in self.aliases:
                self.aliases[anonymous_id] = user_id
                return Route(user_id, ANON_PREFIX + anonymous_id, (anonymous_id, user_id))
            return Route(user_id, None, None)
        assert anonymous_id is not None  # capture guarantees one of the two
        linked = self.aliases.get(anonymous_id)
        if linked is not None:
            return Route(linked, None, None)
        return Route(ANON_PREFIX + anonymous_id, None, None)
