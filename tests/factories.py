"""Small builders shared by the tests."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from typing import Any

from usertide.events import Context, Event, FailedEvent, FailureReason

T0 = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
_ids = itertools.count(1)


def event(
    *,
    user_id: str | None = "jane",
    anonymous_id: str | None = None,
    type: str = "track",
    name: str | None = "click",
    at: float = 0.0,
    id: str | None = None,
    path: str | None = None,
    session_id: str | None = None,
    previous_id: str | None = None,
    traits: dict[str, Any] | None = None,
    properties: dict[str, Any] | None = None,
) -> Event:
    ts = T0 + timedelta(seconds=at)
    return Event(
        id=id or f"e{next(_ids)}",
        type=type,  # type: ignore[arg-type]
        name=name if type == "track" else None,
        user_id=user_id,
        anonymous_id=anonymous_id,
        session_id=session_id,
        timestamp=ts,
        received_at=ts,
        context=Context(page_path=path),
        traits=traits or {},
        properties=properties or {},
        previous_id=previous_id,
    )


def failed(reason: FailureReason = FailureReason.MISSING_EVENT_NAME, **kw: Any) -> FailedEvent:
    return FailedEvent(
        id=kw.pop("id", f"f{next(_ids)}"),
        reason=reason,
        message=kw.pop("message", "'event' is required"),
        received_at=kw.pop("received_at", T0),
        raw=kw.pop("raw", '{"type":"track"}'),
        **kw,
    )
