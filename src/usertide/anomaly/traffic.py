"""Traffic anomalies: each series' events per minute against a robust, seasonal baseline.

A series is an event name alone or crossed with one segment (country, page path,
source). One keyed processor per dimension keeps, per series, the open minute's count
and a bounded history; when an event of a later minute arrives, the finished minutes
are closed and scored, and the first anomalous minute of an episode becomes a
``Detection`` (``traffic_spike`` or ``traffic_drop``). Event time only: nothing here
reads a clock, so a replay finds the same anomalies. ``docs/traffic-anomalies.md``
explains the choices.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any, ClassVar, NamedTuple
from urllib.parse import urlsplit

import msgspec

from usertide.engine.base import Detection, Output, Processor, Reason, UserState
from usertide.events import Event

SERIES_PREFIX = "traffic:"
MAD_SD = 1.4826  # MAD x this estimates a normal standard deviation
LEVELS = ("low", "medium", "high")
MAX_AGE = 1 << 30
_MEMO = "_traffic"  # (name, epoch seconds, epoch minute) of an event, once for the four
_TYPE_NAMES = {
    "page": "$pageview",
    "screen": "$screen",
    "identify": "$identify",
    "alias": "$alias",
    "group": "$group",
}
_LABELS = {
    "$pageview": "page views",
    "$screen": "screen views",
    "$identify": "identify calls",
    "$alias": "alias calls",
    "$group": "group calls",
}


class TrafficConfig(msgspec.Struct, kw_only=True, frozen=True):
    """Thresholds of the traffic detectors (counts are events per minute)."""

    dimensions: tuple[str, ...] = ("event", "country", "path", "source")
    skip_sources: tuple[str, ...] = ("usertide", "feedback", "import")
    window_minutes: int = 60  # recent minutes the median and MAD are taken over
    warmup_minutes: int = 60  # closed minutes of history before a series is scored
    grace_seconds: float = 10.0  # a minute stays open this long for late arrivals
    max_ahead_seconds: float = 60.0  # ignore events timed this far after their receipt
    z_threshold: float = 6.0  # |robust z| from which a minute is anomalous (level low)
    medium_z: float = 10.0
    high_z: float = 15.0
    min_delta: float = 20.0  # and |count - expected| must be at least this many events
    min_expected: float = 5.0  # series whose recent level is below this: not scored
    calm_minutes: int = 5  # normal minutes that end an episode
    season_hours: int = 24  # the seasonal profile: 24 = hour of day, 168 = hour of week
    season_alpha: float = 0.3  # EWMA weight of the latest season's hour
    season_min: int = 1  # seasons an hour slot must have seen before it is used
    max_ratio: float = 4.0  # bound of the seasonal adjustment (either way)
    max_value_length: int = 200  # longer paths and hosts are cut
    # A series whose recent minutes average under ``sleep_below`` events (and which has
    # no seasonal profile and no open episode) drops its minutes and only keeps a decayed
    # count over ``wake_seconds``; from ``wake_at`` events a minute it counts minutes
    # again. 0 keeps every series counting minutes.
    sleep_below: float = 1.5
    sleep_after_minutes: int = 10  # closed minutes of history before a series may sleep
    wake_at: float = 2.0
    wake_seconds: float = 600.0

    def __post_init__(self) -> None:
        unknown = set(self.dimensions) - set(DIMENSIONS)
        if unknown:
            raise ValueError(f"unknown traffic dimensions: {', '.join(sorted(unknown))}")
        if not 0 <= self.grace_seconds < 60:
            raise ValueError("grace_seconds must be in [0, 60)")
        if self.window_minutes < 5 or self.warmup_minutes < 5:
            raise ValueError("window_minutes and warmup_minutes must be at least 5")
        if not 0 < self.z_threshold <= self.medium_z <= self.high_z:
            raise ValueError("need 0 < z_threshold <= medium_z <= high_z")
        if self.season_hours < 1 or not 0 < self.season_alpha <= 1 or self.max_ratio < 1:
            raise ValueError("need season_hours >= 1, 0 < season_alpha <= 1, max_ratio >= 1")
        if not 0 <= self.sleep_below < self.wake_at <= self.min_expected / 2:
            raise ValueError("need 0 <= sleep_below < wake_at <= min_expected / 2")
        if self.wake_seconds < 60 or self.sleep_after_minutes < 1:
            raise ValueError("need wake_seconds >= 60 and sleep_after_minutes >= 1")


class SeriesState(msgspec.Struct, array_like=True):
    """One series. Lists start empty and grow to their bound (sparse series stay tiny)."""

    minute: int = -1  # the oldest open minute (epoch minutes); -1 before the first event
    count: int = 0  # events in it
    next_count: int = 0  # events in the minute after, while ``minute`` is in its grace
    late: int = 0  # events of an already closed minute: not counted
    ahead: int = 0  # events timed after their receipt by more than max_ahead_seconds
    age: int = 0  # closed minutes so far (the warm-up)
    recent: list[int] = msgspec.field(default_factory=list)  # ring of closed minutes
    pos: int = 0  # the ring's oldest slot once it is full
    total: int = 0  # sum(recent)
    episode: int = 0  # direction x (level + 1) of the episode's last detection; 0: none
    calm: int = 0  # normal minutes in a row during an episode
    hour: int = -1  # the epoch hour being summed for the seasonal profile
    hour_total: float = 0.0
    hour_minutes: int = 0
    season: list[float] = msgspec.field(default_factory=list)  # mean a minute, per slot
    seen: list[int] = msgspec.field(default_factory=list)  # seasons learned, per slot
    # Asleep (a quiet series): no minutes, ``recent`` empty; ``minute`` is the minute it
    # fell asleep in, ``rate`` the count decayed over ``wake_seconds`` to ``rate_at``.
    asleep: bool = False
    rate: float = 0.0
    rate_at: float = 0.0


class Baseline(NamedTuple):
    expected: float  # events a minute
    spread: float  # the robust standard deviation of a count, on the square-root scale
    ratio: float  # the seasonal adjustment applied to the recent level
    level: float  # the recent level: the window's median, or its mean when that is 0


class _Verdict(NamedTuple):
    direction: int  # 1 spike, -1 drop, 0 normal
    level: int
    z: float
    observed: int
    base: Baseline


def event_name(event: Event) -> str | None:
    """The series' event: a track's name, ``$pageview``, ``$screen``, ``$identify``..."""
    if event.type == "track":
        return event.name or None
    return _TYPE_NAMES.get(event.type)


Facts = tuple[str | None, float, int, float]


def _facts(event: Event) -> Facts:
    """The event's name, time, minute and receipt time, memoized on the event for the
    other processors (as ``encode_event`` memoizes its bytes: outside the serialized
    fields)."""
    facts: Facts | None = event.__dict__.get(_MEMO)
    if facts is None:
        t = event.timestamp.timestamp()
        received = event.received_at.timestamp()
        facts = event.__dict__[_MEMO] = (event_name(event), t, int(t // 60), received)
    return facts


@lru_cache(maxsize=4096)
def source_of(referrer: str | None, limit: int = 200) -> str:
    """The referrer's host without ``www.``, or ``direct``."""
    if not referrer or not referrer.startswith(("http://", "https://")):
        return "direct"  # none, PostHog's "$direct", or not a URL
    try:
        host = urlsplit(referrer).hostname
    except ValueError:
        return "direct"
    if not host:
        return "direct"
    return host.removeprefix("www.")[:limit]


class TrafficRate(Processor[SeriesState]):
    """Events per minute of one series per event name (the base of the segments)."""

    name: ClassVar[str] = "traffic_event"
    dimension: ClassVar[str] = "event"
    state_type: ClassVar[type[msgspec.Struct]] = SeriesState
    key_kind: ClassVar[str] = "traffic"
    # Shortcuts that change no state and no detection (a test turns each off to check):
    quiet_path: ClassVar[bool] = True  # unscorable minutes are only recorded
    near_path: ClassVar[bool] = True  # minutes near the level skip the spread

    def __init__(self, config: TrafficConfig | None = None) -> None:
        self.config = config or TrafficConfig()
        self._skip = frozenset(self.config.skip_sources)
        self._grace = self.config.grace_seconds
        self._infix = f"|{self.dimension}="

    def segment(self, event: Event) -> str | None:
        """The dimension's value of the event; ``None`` leaves it out of the series."""
        return ""

    def key(self, event: Event) -> str | None:
        if event.source in self._skip:
            return None
        return (event.__dict__.get(_MEMO) or _facts(event))[0]

    def initial(self) -> SeriesState:
        return SeriesState()

    def merge(self, into: SeriesState, other: SeriesState) -> SeriesState:
        return into  # series are not per user: never merged

    def process(self, event: Event, state: SeriesState, user: UserState) -> Sequence[Output]:
        _, t, m, received = event.__dict__.get(_MEMO) or _facts(event)
        if state.asleep:
            return self._doze(state, t, m, received)
        minute = state.minute
        if m == minute:
            state.count += 1
            return ()
        if m == minute + 1 and t < m * 60 + self._grace:
            state.next_count += 1
            return ()
        return self._advance(event, state, t, m, received)

    # -- closing minutes ---------------------------------------------------------------
    def _advance(
        self, event: Event, state: SeriesState, t: float, m: int, received: float
    ) -> Sequence[Output]:
        if m < state.minute:
            state.late += 1
            return ()
        if t > received + self.config.max_ahead_seconds:
            state.ahead += 1  # a wrong clock must not close hours of minutes at once
            return ()
        if state.minute < 0:
            state.minute, state.count = m, 1
            return ()
        if len(state.recent) > self.config.window_minutes:
            self._fit(state)
        # Every minute that ended ``grace`` before this event closes: [first, watermark).
        watermark = int((t - self._grace) // 60)
        first = state.minute
        if self.quiet_path and self._quiet(state, watermark - first):
            self._record(state, first, watermark)
            self._open(state, t, m, watermark)
            self._maybe_sleep(state, t)
            return ()
        out: list[Output] = []
        # The (at most two) open minutes, then empty ones; a run of empty minutes is
        # scored as one stretch, so a silence weighs by its length.
        zeros_from, zeros = first, 0
        for i, n in enumerate((state.count, state.next_count)[: watermark - first]):
            if n == 0:
                zeros += 1
                continue
            if zeros:
                self._close_zeros(event, state, zeros_from, zeros, out)
            self._close_minute(event, state, first + i, n, out)
            zeros_from, zeros = first + i + 1, 0
        zeros += max(watermark - first - 2, 0)
        if zeros:
            self._close_zeros(event, state, zeros_from, zeros, out)
        self._open(state, t, m, watermark)
        self._maybe_sleep(state, t)
        return out

    # -- sleeping ----------------------------------------------------------------------
    def _maybe_sleep(self, state: SeriesState, t: float) -> None:
        """Fall asleep when the recent minutes are far too few to ever be scored.

        Most series of a site are quiet (a page, a referrer, a country with an event now
        and then): counting their minutes costs as much as a busy series' and can never
        alert (``min_expected``). Asleep, a series costs one decayed count per event and
        a few bytes. Only series without a seasonal profile sleep (a profile is learned
        from busy hours, and a series busy by day keeps its minutes through the night)."""
        c = self.config
        size = len(state.recent)
        if (
            state.episode
            or state.season
            or size < c.sleep_after_minutes
            or state.total + state.count + state.next_count >= c.sleep_below * size
        ):
            return
        # The decayed count of a steady rate r a minute settles at r x wake_seconds / 60.
        per_minute = (state.total + state.count + state.next_count) / size
        state.rate, state.rate_at = per_minute * c.wake_seconds / 60.0, t
        state.asleep = True
        state.recent, state.pos, state.total = [], 0, 0
        state.count = state.next_count = 0
        state.hour, state.hour_total, state.hour_minutes = -1, 0.0, 0

    def _doze(self, state: SeriesState, t: float, m: int, received: float) -> Sequence[Output]:
        """An event of a sleeping series: count it, and wake the series when it got busy."""
        c = self.config
        if t > received + c.max_ahead_seconds:
            state.ahead += 1
            return ()
        elapsed = t - state.rate_at
        if elapsed > 0:
            state.rate = state.rate * math.exp(-elapsed / c.wake_seconds) + 1.0
            state.rate_at = t
        else:  # earlier than the latest: no decay back in time
            state.rate += 1.0
        if state.rate * 60.0 < c.wake_at * c.wake_seconds:
            return ()
        # Awake: minutes again from this one, its age going on, after a window of
        # minutes at the waking rate (rounded up: what the ring of a series this quiet
        # held, near enough, and enough to stay awake while its real minutes come in).
        window, seed = c.window_minutes, math.ceil(c.wake_at)
        state.age = min(state.age + max(m - state.minute, 0), MAX_AGE)
        state.asleep, state.rate, state.rate_at = False, 0.0, 0.0
        state.recent, state.pos, state.total = [seed] * window, 0, seed * window
        state.minute, state.count, state.next_count = m, 1, 0
        return ()

    def _open(self, state: SeriesState, t: float, m: int, watermark: int) -> None:
        """``watermark`` is the oldest open minute now; the event counts in its minute."""
        carried = state.next_count if watermark == state.minute + 1 else 0
        state.minute, state.count, state.next_count = watermark, carried, 0
        if m == watermark:
            state.count += 1
        else:
            state.next_count += 1

    def _quiet(self, state: SeriesState, span: int) -> bool:
        """Whether closing the next ``span`` minutes cannot score any of them (so none is
        anomalous and no episode is open to end): then they are only recorded.

        Exact, not a heuristic: ``_score`` returns ``None`` while the series is warming
        up, and while its level (at most twice the window's mean) is under
        ``min_expected``; closing minutes adds at most the open counts to the total and
        never shrinks the window. Nearly every series of a site is quiet (a page, a
        country, a referrer with a few events a minute), and recording is a third of the
        cost of scoring."""
        if state.episode:
            return False
        c = self.config
        if state.age + span <= c.warmup_minutes:
            return True
        size = len(state.recent)
        return size > 0 and 2 * (state.total + state.count + state.next_count) < (
            c.min_expected * size
        )

    def _record(self, state: SeriesState, first: int, watermark: int) -> None:
        """Close [first, watermark) as ``_advance`` does, without scoring (quiet)."""
        window = self.config.window_minutes
        zeros_from, zeros = first, 0
        for i, n in enumerate((state.count, state.next_count)[: watermark - first]):
            if n == 0:
                zeros += 1
                continue
            if zeros:
                self._record_zeros(state, zeros_from, zeros)
            _push(state, n, window)
            self._season_add(state, first + i, float(n))
            state.age = min(state.age + 1, MAX_AGE)
            zeros_from, zeros = first + i + 1, 0
        zeros += max(watermark - first - 2, 0)
        if zeros:
            self._record_zeros(state, zeros_from, zeros)

    def _record_zeros(self, state: SeriesState, start: int, g: int) -> None:
        window = self.config.window_minutes
        _push_zeros(state, min(g, window), window)
        self._season_zeros(state, start, g)
        state.age = min(state.age + g, MAX_AGE)

    def _close_minute(
        self, event: Event, state: SeriesState, minute: int, n: int, out: list[Output]
    ) -> None:
        verdict = self._score(state, minute, 1, n)
        learned = float(n)
        if verdict is not None:
            base = verdict.base
            ceiling = _anscombe(base.expected) + self.config.z_threshold * base.spread
            learned = min(learned, _unanscombe(ceiling))
            self._episode(event, state, verdict, minute, 1, out)
        else:
            self._calm(state, 1)
        _push(state, n, self.config.window_minutes)
        self._season_add(state, minute, learned)
        state.age = min(state.age + 1, MAX_AGE)

    def _close_zeros(
        self, event: Event, state: SeriesState, start: int, g: int, out: list[Output]
    ) -> None:
        span = min(g, self.config.window_minutes)  # a longer silence scores as one window
        verdict = self._score(state, start, span, 0)
        if verdict is not None:
            self._episode(event, state, verdict, start, g, out)
        else:
            self._calm(state, g)
        self._record_zeros(state, start, g)

    def _fit(self, state: SeriesState) -> None:
        """A state from a checkpoint taken with another window fits this one."""
        window = self.config.window_minutes
        if len(state.recent) > window:
            state.recent = state.recent[:window]
            state.pos %= window
            state.total = sum(state.recent)

    # -- scoring -----------------------------------------------------------------------
    def _score(self, state: SeriesState, start: int, span: int, n: int) -> _Verdict | None:
        """The verdict on ``n`` events over ``span`` minutes from ``start``, or ``None``
        when it cannot be anomalous (warm-up, too quiet a series, too small a change)."""
        c = self.config
        if state.age < c.warmup_minutes or not state.recent:
            return None
        # Bounds without sorting: the level is the mean when most minutes are empty (the
        # median is 0), else the median, at most twice the mean.
        size = len(state.recent)
        level = state.total / size if 2 * state.total < size else 2.0 * state.total / size
        if level < c.min_expected:
            return None
        if n < c.min_delta and c.max_ratio * level * span - n < c.min_delta:
            return None  # no spike (too few events) and no drop (too few expected)
        ordered, median, level, ratio = self._level(state, start, span, n)
        if level < c.min_expected:
            return None
        expected = level * ratio * span
        gap = _anscombe(n) - _anscombe(expected)
        if self.near_path and not state.episode and abs(gap) < c.z_threshold:
            # |z| is below the threshold whatever the spread (at least 1), and there is
            # no episode to go on or calm down: the same as no verdict (most minutes of
            # a busy series, which then skip the deviations and their sort).
            return None
        base = Baseline(level * ratio, _spread(state.recent, ordered, median, ratio), ratio, level)
        delta = n - expected
        z = gap / base.spread
        direction = 0
        if abs(z) >= c.z_threshold and abs(delta) >= c.min_delta:
            direction = 1 if z > 0 else -1
        level = 2 if abs(z) >= c.high_z else 1 if abs(z) >= c.medium_z else 0
        return _Verdict(direction, level, z, n, base)

    def baseline(
        self, state: SeriesState, start: int, span: int = 1, observed: int | None = None
    ) -> Baseline:
        """What a minute of the ``span`` from ``start`` (epoch minutes) should hold: the
        recent minutes' median (their mean when it is 0), seasonally adjusted.

        The recent minutes are the ``len(recent)`` just before ``start``; the seasonal
        profile says how much busier the span is than the middle of those minutes. Given
        the ``observed`` count, the adjustment may only explain it away (raise the
        expectation of a count above the recent level, lower that of one below): hour
        slots are coarse, and across a sharp change within an hour the recent median
        and the profile's smooth curve disagree on which side of it they are."""
        ordered, median, level, ratio = self._level(state, start, span, observed)
        spread = _spread(state.recent, ordered, median, ratio)
        return Baseline(level * ratio, spread, ratio, level)

    def _level(
        self, state: SeriesState, start: int, span: int, observed: int | None
    ) -> tuple[list[int], float, float, float]:
        """The recent minutes sorted, their median, the level and the seasonal ratio."""
        recent = state.recent
        size = len(recent)
        ordered = sorted(recent)
        median = _median(ordered)
        level = median if median > 0 else state.total / size
        low, ratio, high = self._ratios(state, start + span / 2, start - size / 2)
        if observed is not None:
            ratio = max(high, 1.0) if observed >= level * span else min(low, 1.0)
        return ordered, median, level, ratio

    def _ratios(self, state: SeriesState, at: float, center: float) -> tuple[float, float, float]:
        """How much busier the profile has ``at`` than the recent window's centre: the
        least, the interpolated and the most. The profile at a time is read both
        interpolated between hour centres (right for smooth curves) and as its hour's
        slot (right for a change on the hour); either may be the one that applies."""
        now, then = self._seasonal_at(state, at), self._seasonal_at(state, center)
        if now is None or then is None:
            return 1.0, 1.0, 1.0
        bound = self.config.max_ratio

        def clamp(ratio: float) -> float:
            return min(max(ratio, 1.0 / bound), bound)

        return (
            clamp((min(now) + 1.0) / (max(then) + 1.0)),
            clamp((now[0] + 1.0) / (then[0] + 1.0)),
            clamp((max(now) + 1.0) / (min(then) + 1.0)),
        )

    def _seasonal_at(self, state: SeriesState, at: float) -> tuple[float, float] | None:
        """The learned mean a minute at ``at`` (epoch minutes): interpolated between hour
        centres, and its hour slot's; ``None`` before both slots were learned."""
        hours = self.config.season_hours
        if len(state.season) != hours:
            return None
        u = (at - 30.0) / 60.0
        h = math.floor(u)
        a, b = h % hours, (h + 1) % hours
        need = self.config.season_min
        if state.seen[a] < need or state.seen[b] < need:
            return None
        season = state.season
        own = season[math.floor(at / 60.0) % hours]
        return season[a] + (season[b] - season[a]) * (u - h), own

    # -- episodes ----------------------------------------------------------------------
    def _episode(
        self,
        event: Event,
        state: SeriesState,
        verdict: _Verdict,
        start: int,
        minutes: int,
        out: list[Output],
    ) -> None:
        """One detection per episode, and one more each time it reaches a higher level
        (so a rule for "medium" hears of an episode that began "low")."""
        direction, level = verdict.direction, verdict.level
        current = state.episode
        if direction == 0:
            if current and verdict.z * current >= self.config.z_threshold / 2:
                state.calm = 0  # still well off the baseline: the episode goes on
            else:
                self._calm(state, minutes)
            return
        state.calm = 0
        if current * direction > 0 and level + 1 <= abs(current):
            return  # the same episode, no worse than already reported
        state.episode = direction * (level + 1)
        if not out:  # an alert is named by (detector, event): one per closing event
            out.append(self._detection(event, verdict, start, minutes))

    def _calm(self, state: SeriesState, minutes: int) -> None:
        if state.episode:
            state.calm += minutes
            if state.calm >= self.config.calm_minutes:
                state.episode, state.calm = 0, 0

    def _detection(self, event: Event, verdict: _Verdict, start: int, minutes: int) -> Detection:
        key = self.key(event) or ""
        series = SERIES_PREFIX + key
        name = event_name(event) or ""
        value = name if self.dimension == "event" else (self.segment(event) or "")
        base, z, n = verdict.base, verdict.z, verdict.observed
        code = "traffic_spike" if verdict.direction > 0 else "traffic_drop"
        facts: dict[str, Any] = {
            "series": series,
            "dimension": self.dimension,
            "event": name,
            "value": value,
            "minute": datetime.fromtimestamp(start * 60, UTC).isoformat(),
            "minutes": minutes,
            "count": n,
            "expected": round(base.expected * minutes, 2),
            "expected_per_minute": round(base.expected, 2),
            "z": round(z, 2),
            "seasonal_ratio": round(base.ratio, 3),
        }
        message = describe(self.dimension, name, value, start, minutes, n, base.expected, z)
        return Detection(
            detector=self.name,
            user_key=series,
            event_id=event.id,
            timestamp=float(start * 60),
            score=round(1.0 - 0.5 ** (abs(z) / self.config.z_threshold), 4),
            level=LEVELS[verdict.level],
            reasons=(Reason(code=code, message=message, data=dict(facts)),),
            data=facts,
        )

    # -- the seasonal profile ----------------------------------------------------------
    def _season_add(self, state: SeriesState, minute: int, n: float) -> None:
        hour = minute // 60
        if hour != state.hour:
            self._finish_hour(state)
            state.hour, state.hour_total, state.hour_minutes = hour, 0.0, 0
        state.hour_total += n
        state.hour_minutes += 1

    def _season_zeros(self, state: SeriesState, start: int, g: int) -> None:
        most = self.config.season_hours * 60
        if g > most:  # a silence longer than a season teaches each hour slot one 0
            self._finish_hour(state)
            state.hour = -1
            start, g = start + g - most, most
        end = start + g
        while start < end:
            hour = start // 60
            if hour != state.hour:
                self._finish_hour(state)
                if not state.season and hour < (end - 1) // 60:
                    # No profile yet: a whole hour of zeros would teach it nothing, so
                    # the run goes straight to its last hour (a quiet series' silences).
                    hour = (end - 1) // 60
                    start = hour * 60
                state.hour, state.hour_total, state.hour_minutes = hour, 0.0, 0
            step = min(end, (hour + 1) * 60) - start
            state.hour_minutes += step
            start += step

    def _finish_hour(self, state: SeriesState) -> None:
        if state.hour < 0 or state.hour_minutes < 60:
            return  # only whole hours are learned (a series' first hour is not)
        hours = self.config.season_hours
        mean = state.hour_total / 60.0
        if len(state.season) != hours:
            if mean < self.config.min_expected:
                return  # the long tail of quiet series never needs a profile
            state.season, state.seen = [0.0] * hours, [0] * hours
        slot = state.hour % hours
        if state.seen[slot] == 0:
            state.season[slot] = mean
        else:
            state.season[slot] += self.config.season_alpha * (mean - state.season[slot])
        state.seen[slot] = min(state.seen[slot] + 1, 255)

    # -- reading -----------------------------------------------------------------------
    def view(self, state: SeriesState) -> dict[str, Any]:
        expected = None
        if state.recent and state.minute >= 0:
            expected = round(self.baseline(state, state.minute).expected, 2)
        return {
            "minute": (
                datetime.fromtimestamp(state.minute * 60, UTC).isoformat()
                if state.minute >= 0
                else None
            ),
            "count": state.count,
            "expected": expected,
            "history_minutes": state.age,
            "warming_up": state.age < self.config.warmup_minutes,
            "late": state.late,
            "ahead": state.ahead,
            "episode": (None if state.episode == 0 else "spike" if state.episode > 0 else "drop"),
            "seasonal_hours_learned": sum(1 for s in state.seen if s >= self.config.season_min),
            "asleep": state.asleep,
            "rate_per_minute": (
                round(state.rate * 60.0 / self.config.wake_seconds, 3) if state.asleep else None
            ),
        }


class _SegmentRate(TrafficRate):
    def key(self, event: Event) -> str | None:
        if event.source in self._skip:
            return None
        name = (event.__dict__.get(_MEMO) or _facts(event))[0]
        if name is None:
            return None
        value = self.segment(event)
        if value is None:
            return None
        return f"{name}{self._infix}{value}"


class CountryTraffic(_SegmentRate):
    name: ClassVar[str] = "traffic_country"
    dimension: ClassVar[str] = "country"

    def segment(self, event: Event) -> str | None:
        geo = event.context.geo
        if geo is None:
            return None
        return geo.country or None


class PathTraffic(_SegmentRate):
    """One series per page path: there may be many (each a keyed state of the engine);
    paths usually below ``min_expected`` a minute keep a small state and are not scored."""

    name: ClassVar[str] = "traffic_path"
    dimension: ClassVar[str] = "path"

    def segment(self, event: Event) -> str | None:
        path = event.context.page_path
        if not path:
            return None
        limit = self.config.max_value_length
        return path if len(path) <= limit else path[:limit]


class SourceTraffic(_SegmentRate):
    """Where visits come from: the referrer's host, or ``direct``; only events with a
    page (web events), since a server's events have no referrer to go by."""

    name: ClassVar[str] = "traffic_source"
    dimension: ClassVar[str] = "source"

    def segment(self, event: Event) -> str | None:
        context = event.context
        if context.page_path is None and context.page_url is None:
            return None
        return source_of(context.page_referrer, self.config.max_value_length)


DIMENSIONS: dict[str, type[TrafficRate]] = {
    "event": TrafficRate,
    "country": CountryTraffic,
    "path": PathTraffic,
    "source": SourceTraffic,
}
#: The detector names of traffic detections (one per dimension), for an alert rule.
TRAFFIC_DETECTORS: tuple[str, ...] = tuple(p.name for p in DIMENSIONS.values())


def traffic_processors(config: TrafficConfig | None = None) -> list[Processor[Any]]:
    """The traffic processors of ``config.dimensions`` (all four by default)."""
    config = config or TrafficConfig()
    return [DIMENSIONS[d](config) for d in DIMENSIONS if d in config.dimensions]


def describe(
    dimension: str,
    name: str,
    value: str,
    start: int,
    minutes: int,
    n: int,
    expected: float,
    z: float,
) -> str:
    """E.g. "412 page views (country DE) in the minute from 10:41 UTC, 5.2× the usual
    79 (robust z 14.3)"."""
    what = _LABELS.get(name) or f'"{name}" events'
    if dimension != "event":
        what += f" ({dimension} {value})"
    when = datetime.fromtimestamp(start * 60, UTC).strftime("%H:%M UTC")
    usual = f"{expected:.1f}" if expected < 10 else f"{expected:,.0f}"
    if minutes > 1:
        return (
            f"no {what} in the {minutes} minutes from {when}, usually {usual} a minute "
            f"(robust z {z:.1f})"
        )
    ratio = n / expected if expected > 0 else math.inf
    compared = f"{ratio:.1f}× the usual" if ratio >= 1 else f"{ratio:.0%} of the usual"
    return f"{n:,} {what} in the minute from {when}, {compared} {usual} (robust z {z:.1f})"


def _spread(recent: list[int], ordered: list[int], median: float, ratio: float) -> float:
    """The robust standard deviation of a minute's count on the square-root scale: the
    MAD of the recent minutes about their median, scaled by the seasonal ratio."""
    centre = _anscombe(median)
    if ordered[-1] < _TABLE_SIZE:  # the same floats, looked up
        deviations = [abs(_ANSCOMBE[x] - centre) for x in recent]
    else:
        deviations = [abs(2.0 * math.sqrt(x + 0.375) - centre) for x in recent]
    mad = _median(sorted(deviations))
    # 1 is a Poisson count's: traffic is never steadier than that.
    return max(MAD_SD * mad * math.sqrt(ratio), 1.0)


def _push(state: SeriesState, n: int, window: int) -> None:
    recent = state.recent
    if len(recent) < window:
        recent.append(n)
        state.total += n
        return
    pos = state.pos
    state.total += n - recent[pos]
    recent[pos] = n
    state.pos = (pos + 1) % window


def _anscombe(count: float) -> float:
    """Counts on the square-root scale, where a Poisson count's deviation is about 1
    whatever its mean and its tails are close to normal: a z there means the same for
    3 events a minute as for 3,000 (on the raw scale small counts' long right tail would
    pass any threshold too often)."""
    return 2.0 * math.sqrt(count + 0.375)


_TABLE_SIZE = 4096
_ANSCOMBE = tuple(2.0 * math.sqrt(x + 0.375) for x in range(_TABLE_SIZE))  # _anscombe(x)


def _unanscombe(value: float) -> float:
    return (value / 2.0) ** 2 - 0.375


def _push_zeros(state: SeriesState, k: int, window: int) -> None:
    """``k`` (at most ``window``) empty minutes at once: a quiet series' every event."""
    recent = state.recent
    if k >= window:
        state.recent, state.pos, state.total = [0] * window, 0, 0
        return
    room = min(window - len(recent), k)
    if room > 0:  # filling up: the oldest stays at 0
        recent.extend([0] * room)
        k -= room
    while k > 0:
        pos = state.pos
        step = min(k, window - pos)
        state.total -= sum(recent[pos : pos + step])
        recent[pos : pos + step] = [0] * step
        state.pos = (pos + step) % window
        k -= step


def _median(ordered: list[int] | list[float]) -> float:
    size = len(ordered)
    mid = size // 2
    if size % 2:
        return float(ordered[mid])
    return (ordered[mid - 1] + ordered[mid]) / 2.0
