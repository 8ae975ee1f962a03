"""Session behaviour features: the numbers the session anomaly detectors read.

Every feature describes the user's current session (see :mod:`.sessions`) and is
updated in event time, so a replay computes the same values. :data:`FEATURES` is their
order in a model's input vector; ``docs/anomaly.md`` defines each.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Sequence
from datetime import datetime
from functools import lru_cache
from typing import Any, ClassVar, Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import msgspec

from usertide.engine.base import Output, Processor, UserState, closing
from usertide.enrich.hosting import is_hosting
from usertide.events import Event
from usertide.processors.sessions import PAGE_TYPES, Sessionizer
from usertide.risk.features import login_succeeded

WINDOW_SECONDS = 60.0
# A sliding window keeps at most this many timestamps: past it, the rate is
# extrapolated from the span the kept ones cover, which bounds state per user.
WINDOW_CAP = 48
# Distinct pages per session by linear counting over a 256-bit bitmap: exact enough
# (±5 %) up to a few hundred pages, at 32 bytes of state.
BITMAP_BITS = 256
NIGHT_HOURS = range(0, 6)  # local time
LOGIN_EVENTS = frozenset({"login", "sign_in", "Signed In", "Sign In", "$login"})
CART_EVENTS = frozenset({"Product Added", "add_to_cart", "Added to Cart", "cart"})
PURCHASE_EVENTS = frozenset({"Order Completed", "purchase", "Purchase", "buy", "checkout"})
AD_EVENTS = frozenset({"Ad Clicked", "ad_click", "Ad Click", "Promotion Clicked"})
# A page reached from an ad: the ad networks' click redirectors, or their click ids.
_AD_HOSTS = ("googleadservices.com", "doubleclick.net", "googlesyndication.com", "/aclk")
_AD_CLICK_IDS = ("gclid=", "fbclid=", "msclkid=", "ttclid=", "dclid=")

# The model input, in order. ``clicks_per_minute`` and ``pages_per_session`` are the
# original design's two features (its /predict_behavior body).
FEATURES: Final[tuple[str, ...]] = (
    "clicks_per_minute",  # events in the last 60 s (sliding)
    "page_views_per_minute",  # page views in the last 60 s (sliding)
    "session_clicks_per_minute",  # events per minute over the whole session
    "pages_per_session",
    "session_duration_seconds",
    "gap_mean_seconds",
    "gap_cv",  # coefficient of variation of inter-event gaps: bots are regular
    "distinct_pages_ratio",
    "no_referrer_share",  # of page views
    "error_page_share",  # of page views
    "peak_requests_per_second",
    "night_share",  # events between 00:00 and 06:00 local time
    "automation_agent",  # 1 when a bot, headless or automation user agent was seen
    "data_centre_network",  # 1 when an event came from a hosting provider's address
    "login_failures",
    "add_to_cart",
    "purchases",
    "ad_click_share",  # ad clicks (events, and pages reached from an ad) ÷ events
)
INDEX: Final = {name: i for i, name in enumerate(FEATURES)}


class FeatureState(msgspec.Struct, array_like=True):
    session_id: str = ""
    window: list[float] = msgspec.field(default_factory=list)
    gap_n: int = 0
    gap_mean: float = 0.0
    gap_m2: float = 0.0
    prev: float = 0.0
    pages_bits: bytes = b""
    page_window: list[float] = msgspec.field(default_factory=list)
    no_referrer: int = 0
    error_pages: int = 0
    second: float = 0.0  # the current whole second, and the events in it
    second_n: int = 0
    peak: int = 0
    night: int = 0
    automation: bool = False
    data_centre: bool = False
    login_failures: int = 0
    add_to_cart: int = 0
    purchases: int = 0
    started: float = 0.0
    events: int = 0
    pages: int = 0
    ad_clicks: int = 0


class BehaviourFeatures(Processor[FeatureState]):
    name: ClassVar[str] = "features"
    state_type: ClassVar[type[msgspec.Struct]] = FeatureState

    def initial(self) -> FeatureState:
        return FeatureState()

    def process(self, event: Event, state: FeatureState, user: UserState) -> Sequence[Output]:
        session = user.get(Sessionizer)
        t = event.timestamp.timestamp()
        if session.id != state.session_id:
            closed = closing(user)
            if closed is not None and closed.session_id == state.session_id:
                closed.summary[self.name] = named(vector(state))
            state = _reset(user, session.id)
            state.started = t
        if state.prev:
            gap = max(0.0, t - state.prev)
            # Welford's running mean and variance of inter-event gaps.
            state.gap_n += 1
            delta = gap - state.gap_mean
            state.gap_mean += delta / state.gap_n
            state.gap_m2 += delta * (gap - state.gap_mean)
        state.prev = max(state.prev, t)
        state.events += 1
        _slide(state.window, t)
        second = math.floor(t)
        if second == state.second:
            state.second_n += 1
        else:
            state.second, state.second_n = second, 1
        if state.second_n > state.peak:
            state.peak = state.second_n
        context = event.context
        if _local_hour(event.timestamp, context.timezone) in NIGHT_HOURS:
            state.night += 1
        device = context.device
        if device is not None and (device.is_bot or device.is_headless or device.is_automation):
            state.automation = True
        geo = context.geo
        if geo is not None and is_hosting(geo.as_org):
            state.data_centre = True
        if event.type in PAGE_TYPES:
            page = context.page_path or context.page_url or event.name or ""
            state.pages += 1
            state.pages_bits = _set_bit(state.pages_bits, page)
            _slide(state.page_window, t)
            if not context.page_referrer:
                state.no_referrer += 1
            if _from_ad(context.page_referrer or "", context.page_url):
                state.ad_clicks += 1
            if _is_error_page(event):
                state.error_pages += 1
        elif event.type == "track":
            name = event.name
            if name in LOGIN_EVENTS:
                if not login_succeeded(event.properties):
                    state.login_failures += 1
            elif name in CART_EVENTS:
                state.add_to_cart += 1
            elif name in PURCHASE_EVENTS:
                state.purchases += 1
            elif name in AD_EVENTS:
                state.ad_clicks += 1
        return ()

    def merge(self, into: FeatureState, other: FeatureState) -> FeatureState:
        # Features describe the current session; the merged user's current session is
        # whichever of the two was more recent.
        return other if other.prev >= into.prev else into

    def view(self, state: FeatureState) -> dict[str, Any]:
        return features_of(state)


def _reset(user: UserState, session_id: str) -> FeatureState:
    fresh = FeatureState(session_id=session_id)
    user.slots[BehaviourFeatures.name] = fresh
    return fresh


def _slide(window: list[float], t: float) -> None:
    window.append(t)
    cutoff = t - WINDOW_SECONDS
    while window and window[0] <= cutoff:
        window.pop(0)
    if len(window) > WINDOW_CAP:
        del window[: len(window) - WINDOW_CAP]


def per_minute(window: list[float]) -> float:
    """Events per minute in a sliding window (extrapolated once the window is full)."""
    if not window:
        return 0.0
    if len(window) < WINDOW_CAP:
        return float(len(window))
    span = max(window[-1] - window[0], 1.0)
    return len(window) / span * 60.0


def events_per_minute(state: FeatureState) -> float:
    return per_minute(state.window)


def vector(state: FeatureState) -> list[float]:
    """The features in :data:`FEATURES` order."""
    events, pages = state.events, state.pages
    duration = max(0.0, state.prev - state.started)
    gap_std = math.sqrt(state.gap_m2 / state.gap_n) if state.gap_n > 1 else 0.0
    minutes = max(duration, WINDOW_SECONDS) / 60.0
    distinct = distinct_pages(state.pages_bits)
    return [
        per_minute(state.window),
        per_minute(state.page_window),
        events / minutes,
        float(pages),
        duration,
        state.gap_mean,
        gap_std / state.gap_mean if state.gap_mean > 0 else 0.0,
        min(1.0, distinct / pages) if pages else 0.0,
        state.no_referrer / pages if pages else 0.0,
        state.error_pages / pages if pages else 0.0,
        float(state.peak),
        state.night / events if events else 0.0,
        1.0 if state.automation else 0.0,
        1.0 if state.data_centre else 0.0,
        float(state.login_failures),
        float(state.add_to_cart),
        float(state.purchases),
        state.ad_clicks / events if events else 0.0,
    ]


def named(values: Sequence[float]) -> dict[str, float]:
    return dict(zip(FEATURES, values, strict=True))


def features_of(state: FeatureState) -> dict[str, Any]:
    """The features by name, rounded for people to read."""
    values = vector(state)
    out = {name: round(value, 4) for name, value in zip(FEATURES, values, strict=True)}
    # The earlier names of the users API, kept for its readers.
    out["events_per_minute"] = out["clicks_per_minute"]
    out["distinct_pages"] = distinct_pages(state.pages_bits)
    return out


@lru_cache(maxsize=16_384)
def distinct_pages(bits: bytes) -> int:
    if not bits:
        return 0
    ones = int.from_bytes(bits, "little").bit_count()
    zeros = BITMAP_BITS - ones
    if zeros == 0:
        return BITMAP_BITS * 4  # saturated: report a floor, not infinity
    return round(-BITMAP_BITS * math.log(zeros / BITMAP_BITS))


@lru_cache(maxsize=8192)
def _bit_of(page: str) -> int:
    h = int.from_bytes(hashlib.blake2b(page.encode(), digest_size=4).digest(), "little")
    return h % BITMAP_BITS


def _set_bit(bits: bytes, page: str) -> bytes:
    index = _bit_of(page)
    if bits and bits[index >> 3] & (1 << (index & 7)):
        return bits  # a page seen before in the session: nothing to copy
    buf = bytearray(bits or bytes(BITMAP_BITS // 8))
    buf[index >> 3] |= 1 << (index & 7)
    return bytes(buf)


def _is_error_page(event: Event) -> bool:
    status = event.properties.get("status") or event.properties.get("status_code")
    if isinstance(status, int) and not isinstance(status, bool):
        return status >= 400
    return _error_path(event.context.page_path or "", event.context.page_title or "")


@lru_cache(maxsize=8192)
def _error_path(path: str, title: str) -> bool:
    text = f"{path} {title}".lower()
    return any(word in text for word in ("/404", "/500", "not found", "/error", "error 4"))


_AD_HOST = re.compile("|".join(map(re.escape, _AD_HOSTS)))  # one scan, not four
_AD_CLICK_ID = re.compile("|".join(map(re.escape, _AD_CLICK_IDS)))


@lru_cache(maxsize=8192)
def _from_ad(referrer: str, url: str | None) -> bool:
    return _AD_HOST.search(referrer) is not None or (
        url is not None and "?" in url and _AD_CLICK_ID.search(url) is not None
    )


@lru_cache(maxsize=512)
def _zone(name: str) -> ZoneInfo | None:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None


def _local_hour(when: datetime, timezone: str | None) -> int:
    zone = _zone(timezone) if timezone else None
    return when.astimezone(zone).hour if zone is not None else when.hour
