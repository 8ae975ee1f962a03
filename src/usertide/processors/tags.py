"""Tags and segments derived from behaviour, by rules a person can read (用户画像).

The processor keeps a handful of counters per user; the tags are derived from them
when the user is looked at (``view``: the users API and the profiles checkpoints
write), so an event costs a few comparisons and additions. Everything is event time:
"now" is the timestamp of the user's latest event, never the clock.

The rules (``TagRules``, every threshold with a default; a frozen msgspec Struct, so it
can be read from JSON with ``msgspec.convert``; the service passes them to ``UserTags``
in ``build_processors``) give these lower-case tags, each with a reason:

- one RFM segment (recency, frequency, monetary), the first rule that holds:
  ``lapsed`` — the current visit came after ``lapsed_days`` (60) or more without an
  event; ``at_risk`` — after ``at_risk_days`` (21) or more; ``new`` — first seen less
  than ``new_days`` (14) ago, not yet loyal; ``loyal`` — ``loyal_sessions`` (10)
  sessions or ``loyal_purchases`` (3) purchases; ``active`` — anyone else. Recency is
  the silence before the current session (read from the ``Sessionizer``, which must
  run first), so a segment holds for a whole visit instead of flipping at its second
  event. Segments change only when the user does something: a user who stopped coming
  keeps the segment of their last visit (``as_of`` says when that was).
- ``mobile-first``: more than ``mobile_share`` (half) of the events whose device type
  is known came from ``mobile_types`` (mobile, tablet), once ``mobile_min_events`` (5)
  such events were seen.
- ``night-owl``: at least ``night_share`` (30 %) of the events between
  ``night_start_hour`` and ``night_end_hour`` (0–5 h; the range may wrap past
  midnight) in the user's local time
  (``context.timezone``; UTC when it is absent or unknown), once ``night_min_events``
  (10) events were seen.
- ``big-spender``: revenue of at least ``big_spender_revenue`` (500, in whatever
  currency the events use) from purchase events (``Order Completed``, ``purchase``,
  ``buy``), each worth its first of ``properties.revenue``, ``total``, ``price``.
- ``interest:<category>``: the top ``interests_shown`` (3) values of
  ``properties.category`` on page and screen views and product views, counted with a
  ``interest_half_life_days`` (30-day) half-life, with a decayed weight of at least
  ``interest_min_weight`` (1.5: two views in the last 12 days, or three in the last 30).

The segment is also the first tag. State stays small (60–120 bytes encoded for most
users, at most ~400): counters, a few times, and at most ``MAX_INTERESTS`` categories of
at most ``MAX_CATEGORY_CHARS`` characters.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any, ClassVar
from zoneinfo import ZoneInfo

import msgspec

from usertide.engine.base import Output, Processor, UserState
from usertide.events import Event
from usertide.processors.sessions import PAGE_TYPES, Sessionizer

DAY = 86_400.0
MAX_INTERESTS = 6  # categories kept per user (the least weighty one goes first)
MAX_CATEGORY_CHARS = 32
MAX_AMOUNT = 1e12  # a single purchase worth more is a unit mistake, not revenue
# Interest weights grow as 2 ** (age in half-lives since the anchor) (forward decay:
# adding never has to decay the others); past this many half-lives they are rescaled.
RESCALE_HALF_LIVES = 64.0


class TagRules(msgspec.Struct, frozen=True, kw_only=True):
    """The rules the tags follow (see the module docstring); days are event-time days."""

    new_days: float = 14.0
    at_risk_days: float = 21.0
    lapsed_days: float = 60.0
    loyal_sessions: int = 10
    loyal_purchases: int = 3
    mobile_types: frozenset[str] = frozenset({"mobile", "tablet"})
    mobile_share: float = 0.5
    mobile_min_events: int = 5
    night_start_hour: int = 0
    night_end_hour: int = 5
    night_share: float = 0.3
    night_min_events: int = 10
    purchase_events: frozenset[str] = frozenset({"Order Completed", "purchase", "buy"})
    revenue_keys: tuple[str, ...] = ("revenue", "total", "price")
    big_spender_revenue: float = 500.0
    view_events: frozenset[str] = frozenset(
        {"Product Viewed", "Product List Viewed", "Product Clicked", "view_item"}
    )
    interest_half_life_days: float = 30.0
    interest_min_weight: float = 1.5
    interests_shown: int = 3

    def __post_init__(self) -> None:
        if self.interest_half_life_days <= 0:
            raise ValueError("interest_half_life_days must be positive")
        if not (0 <= self.night_start_hour <= 24 and 0 <= self.night_end_hour <= 24):
            raise ValueError("night hours must be between 0 and 24")

    def night_hours(self) -> frozenset[int]:
        """The local hours that count as night (the range may wrap past midnight)."""
        start, end = self.night_start_hour, self.night_end_hour
        if start <= end:
            return frozenset(range(start, end))
        return frozenset((*range(start, 24), *range(end)))


def load_rules(path: Path) -> TagRules:
    """Rules from a JSON file of ``TagRules`` fields (the others keep their defaults)."""
    try:
        return msgspec.json.decode(path.read_bytes(), type=TagRules)
    except (OSError, msgspec.DecodeError, msgspec.ValidationError, ValueError) as exc:
        raise ValueError(f"the tag rules in {path} cannot be used: {exc}") from exc


class TagState(msgspec.Struct, array_like=True):
    first: float = 0.0  # first and latest event time
    last: float = 0.0
    sessions: int = 0  # the Sessionizer's count as of the last event
    gap: float = 0.0  # seconds without events before the current session began
    events: int = 0
    typed: int = 0  # events whose device type is known
    mobile: int = 0  # ... of which from a mobile type
    night: int = 0  # events in the night hours, local time
    purchases: int = 0
    revenue: float = 0.0
    anchor: float = 0.0  # the time interest weights are relative to
    interests: dict[str, float] = msgspec.field(default_factory=dict)


class UserTags(Processor[TagState]):
    """Counts what the tags need; derives the tags and the RFM segment in ``view``.

    Runs after ``Sessionizer`` (it reads the session count to see a visit begin).
    """

    name: ClassVar[str] = "tags"
    state_type: ClassVar[type[msgspec.Struct]] = TagState

    def __init__(self, rules: TagRules | None = None) -> None:
        self.rules = rules or TagRules()
        rules = self.rules
        self._mobile = rules.mobile_types
        self._night = rules.night_hours()
        self._purchases = rules.purchase_events
        self._views = rules.view_events
        self._half_life = rules.interest_half_life_days * DAY

    def initial(self) -> TagState:
        return TagState()

    def process(self, event: Event, state: TagState, user: UserState) -> Sequence[Output]:
        t = event.timestamp.timestamp()
        sessions = user.get(Sessionizer).total
        if sessions != state.sessions:
            # A visit begins: its recency is the silence it ends.
            state.gap = t - state.last if state.last and t > state.last else 0.0
            state.sessions = sessions
        if not state.first or t < state.first:
            state.first = t
        if t > state.last:
            state.last = t
        state.events += 1
        context = event.context
        device = context.device
        if device is not None and device.device_type:
            state.typed += 1
            if device.device_type in self._mobile:
                state.mobile += 1
        if _hour(t, context.timezone) in self._night:
            state.night += 1
        kind = event.type
        if kind == "track":
            name = event.name
            if name in self._purchases:
                state.purchases += 1
                amount = _amount(event.properties, self.rules.revenue_keys)
                if amount:
                    state.revenue += amount
            elif name in self._views:
                self._interest(state, event.properties.get("category"), t)
        elif kind in PAGE_TYPES and event.properties:
            self._interest(state, event.properties.get("category"), t)
        return ()

    def _interest(self, state: TagState, raw: Any, t: float) -> None:
        if not isinstance(raw, str):
            return
        category = raw.strip().lower()[:MAX_CATEGORY_CHARS]
        if not category:
            return
        interests = state.interests
        if not interests:
            state.anchor = t
        elif (t - state.anchor) / self._half_life > RESCALE_HALF_LIVES:
            _rescale(state, t, self._half_life)
        weight = 2.0 ** ((t - state.anchor) / self._half_life)
        if category not in interests and len(interests) >= MAX_INTERESTS:
            del interests[_weakest(interests)]
        interests[category] = interests.get(category, 0.0) + weight

    def merge(self, into: TagState, other: TagState) -> TagState:
        merged = msgspec.structs.replace(into)
        firsts = [x for x in (into.first, other.first) if x]
        merged.first = min(firsts) if firsts else 0.0
        merged.last = max(into.last, other.last)
        # The current visit is the later one's, and the Sessionizer adds the counts.
        merged.gap = other.gap if other.last > into.last else into.gap
        merged.sessions = into.sessions + other.sessions
        merged.events = into.events + other.events
        merged.typed = into.typed + other.typed
        merged.mobile = into.mobile + other.mobile
        merged.night = into.night + other.night
        merged.purchases = into.purchases + other.purchases
        merged.revenue = into.revenue + other.revenue
        merged.interests = dict(into.interests)
        if other.interests:
            if not merged.interests:
                merged.anchor = other.anchor
            elif other.anchor > merged.anchor:
                _rescale(merged, other.anchor, self._half_life)
            scale = 2.0 ** ((other.anchor - merged.anchor) / self._half_life)
            for category, weight in sorted(other.interests.items()):
                merged.interests[category] = merged.interests.get(category, 0.0) + weight * scale
            while len(merged.interests) > MAX_INTERESTS:
                del merged.interests[_weakest(merged.interests)]
        return merged

    def view(self, state: TagState) -> dict[str, Any]:
        rfm = self.segment(state)
        tags = [rfm["segment"]]
        reasons = {rfm["segment"]: rfm["reason"]}
        for tag, reason in self._behaviour(state):
            tags.append(tag)
            reasons[tag] = reason
        return {"tags": tags, "reasons": reasons, "segments": {"rfm": rfm}}

    def tag_names(self, state: TagState) -> list[str]:
        """The tags alone (what the users search matches)."""
        tags: list[str] = self.view(state)["tags"]
        return tags

    # -- the rules -----------------------------------------------------------------
    def segment(self, state: TagState) -> dict[str, Any]:
        """The RFM segment as of the user's latest event, with its numbers."""
        r = self.rules
        recency = state.gap / DAY
        age = (state.last - state.first) / DAY
        loyal = state.sessions >= r.loyal_sessions or state.purchases >= r.loyal_purchases
        counts = f"{_n(state.sessions, 'session')}, {_n(state.purchases, 'purchase')}"
        if recency >= r.lapsed_days:
            name, why = "lapsed", f"back after {recency:.0f} days away (≥ {r.lapsed_days:g})"
        elif recency >= r.at_risk_days:
            name, why = "at_risk", f"back after {recency:.0f} days away (≥ {r.at_risk_days:g})"
        elif age < r.new_days and not loyal:
            name, why = "new", f"first seen {age:.1f} days ago (< {r.new_days:g}), {counts}"
        elif loyal:
            name = "loyal"
            why = f"{counts} (≥ {r.loyal_sessions} sessions or ≥ {r.loyal_purchases} purchases)"
        else:
            name = "active"
            why = f"{counts}; this visit came {recency:.1f} days after the one before"
        return {
            "segment": name,
            "reason": why,
            "recency_days": round(recency, 3),
            "sessions": state.sessions,
            "purchases": state.purchases,
            "revenue": round(state.revenue, 2),
            "first_seen": _iso(state.first),
            "as_of": _iso(state.last),
        }

    def _behaviour(self, state: TagState) -> list[tuple[str, str]]:
        r = self.rules
        out: list[tuple[str, str]] = []
        if state.typed >= r.mobile_min_events and state.mobile > r.mobile_share * state.typed:
            out.append(
                (
                    "mobile-first",
                    f"{state.mobile} of {state.typed} events "
                    f"({state.mobile / state.typed:.0%}) from mobile devices",
                )
            )
        if state.events >= r.night_min_events and state.night >= r.night_share * state.events:
            out.append(
                (
                    "night-owl",
                    f"{state.night} of {state.events} events ({state.night / state.events:.0%}) "
                    f"between {r.night_start_hour} and {r.night_end_hour} h local time",
                )
            )
        if state.revenue >= r.big_spender_revenue:
            out.append(
                (
                    "big-spender",
                    f"spent {state.revenue:,.2f} in {_n(state.purchases, 'purchase')} "
                    f"(≥ {r.big_spender_revenue:,.0f})",
                )
            )
        for category, weight in self.interests(state):
            out.append(
                (
                    f"interest:{category}",
                    f"viewed {category} often (weight {weight:.1f}, "
                    f"half-life {r.interest_half_life_days:g} days)",
                )
            )
        return out

    def interests(self, state: TagState) -> list[tuple[str, float]]:
        """The top categories with their weight as of the latest event, heaviest first."""
        r = self.rules
        scale = 2.0 ** ((state.anchor - state.last) / self._half_life)
        ranked = sorted(((-w, c) for c, w in state.interests.items()))
        return [
            (category, round(-w * scale, 3))
            for w, category in ranked[: r.interests_shown]
            if -w * scale >= r.interest_min_weight
        ]


def _hour(t: float, timezone: str | None) -> int:
    if timezone:
        offset = _offset(timezone, int(t // 900))
        if offset is not None:
            return int((t + offset) // 3600) % 24
    return int(t // 3600) % 24


@lru_cache(maxsize=8192)
def _offset(timezone: str, quarter: int) -> float | None:
    """The zone's UTC offset (seconds) during a quarter hour since the epoch: every
    zone changes its offset only on a quarter hour of UTC, and building a zoned
    datetime per event would cost more than the rest of this processor."""
    zone = _zone(timezone)
    if zone is None:
        return None
    offset = datetime.fromtimestamp(quarter * 900, zone).utcoffset()
    return offset.total_seconds() if offset is not None else None


@lru_cache(maxsize=1024)
def _zone(name: str) -> ZoneInfo | None:
    try:
        return ZoneInfo(name)
    except (ValueError, KeyError, OSError):  # not a zone name (KeyError: not found)
        return None


def _amount(properties: dict[str, Any], keys: tuple[str, ...]) -> float:
    for key in keys:
        value = properties.get(key)
        if value is None:
            continue
        if isinstance(value, str) and len(value) <= 32:
            try:
                value = float(value)
            except ValueError:
                return 0.0
        if isinstance(value, int | float) and not isinstance(value, bool):
            amount = float(value)
            return amount if math.isfinite(amount) and 0 < amount <= MAX_AMOUNT else 0.0
        return 0.0
    return 0.0


def _weakest(interests: dict[str, float]) -> str:
    return min(interests.items(), key=lambda item: (item[1], item[0]))[0]


def _rescale(state: TagState, t: float, half_life: float) -> None:
    factor = 2.0 ** ((state.anchor - t) / half_life)
    state.interests = {c: w * factor for c, w in state.interests.items()}
    state.anchor = t


def _n(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


def _iso(t: float) -> str | None:
    return datetime.fromtimestamp(t, UTC).isoformat().replace("+00:00", "Z") if t else None
