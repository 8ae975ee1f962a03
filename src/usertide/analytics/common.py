"""What trends and funnels share: time ranges, durations, the person of an event."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from usertide.analytics.errors import AnalyticsError
from usertide.capture.errors import ItemError
from usertide.capture.timestamps import parse_time

# The person an event counts for: its user, the user its anonymous id was merged into
# (aliases are written at engine checkpoints), or the anonymous visitor.
PERSON = "coalesce(e.user_id, a.user_id, 'anon:' || e.anonymous_id)"
EVENTS = "events e LEFT JOIN aliases a ON a.anonymous_id = e.anonymous_id"
MAX_RANGE = timedelta(days=3660)
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h|d|w)\s*$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def time_range(body: dict[str, object]) -> tuple[datetime, datetime]:
    """``from`` and ``to`` (both required; ``[from, to)``)."""
    out = []
    for name in ("from", "to"):
        if body.get(name) is None:
            raise AnalyticsError(name, f"'{name}' is required (an ISO-8601 time)")
        try:
            when = parse_time(body[name], name)
        except ItemError as exc:
            raise AnalyticsError(name, exc.message) from exc
        assert when is not None
        out.append(when.astimezone(UTC))
    start, end = out
    if end <= start:
        raise AnalyticsError("to", "'to' must be after 'from'")
    if end - start > MAX_RANGE:
        raise AnalyticsError("to", "the range from 'from' to 'to' is longer than ten years")
    return start, end


def duration(value: object, name: str, *, maximum: timedelta) -> timedelta:
    """``"90s"``, ``"30m"``, ``"12h"``, ``"3d"``, ``"2w"`` or a number of seconds."""
    if isinstance(value, bool):
        raise AnalyticsError(name, f"'{name}' must be a duration such as 3d or 12h")
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str) and (m := _DURATION.match(value)):
        seconds = float(m[1]) * _UNITS[m[2]]
    else:
        raise AnalyticsError(name, f"'{name}' must be a duration such as 3d or 12h")
    if not 0 < seconds <= maximum.total_seconds():
        raise AnalyticsError(name, f"'{name}' must be above 0 and at most {maximum.days} days")
    return timedelta(seconds=seconds)


def iso(when: datetime) -> str:
    return when.astimezone(UTC).isoformat().replace("+00:00", "Z")


def bounded_int(body: dict[str, object], name: str, default: int, lo: int, hi: int) -> int:
    value = body.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise AnalyticsError(name, f"'{name}' must be a whole number from {lo} to {hi}")
    return value
