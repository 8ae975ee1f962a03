"""What the users search reads of each user: the record the engine writes to the
store's ``profiles`` at its checkpoints.

Only what ``GET /v1/users`` finds and shows (traits, last seen, tags): a user's whole
view (devices, places, sessions, sign-in history) costs several times as much to
build, and a checkpoint builds one record for every user who changed since the last.
"""

from __future__ import annotations

from typing import Any

from usertide.engine.base import UserState
from usertide.processors.profile import Profile, ProfileState, iso_time
from usertide.processors.tags import TagState, UserTags


class SearchRecord:
    """``record(state)``: ``{"profile": {"traits", "last_seen"}, "tags": {"tags"}}``,
    the same paths as in a user's view."""

    def __init__(self, tags: UserTags) -> None:
        self.tags = tags

    def __call__(self, state: UserState) -> dict[str, Any]:
        out: dict[str, Any] = {}
        profile = state.slots.get(Profile.name)
        if isinstance(profile, ProfileState):
            out["profile"] = {
                "traits": dict(profile.traits),
                "last_seen": iso_time(profile.last_seen),
            }
        tagged = state.slots.get(UserTags.name)
        if isinstance(tagged, TagState):
            out["tags"] = {"tags": self.tags.tag_names(tagged)}
        return out
