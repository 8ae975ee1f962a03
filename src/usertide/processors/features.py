"""Windowed behaviour features: the numbers the anomaly detectors read."""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from typing import Any, ClassVar

import msgspec

from usertide.engine.base import Output, Processor, UserState
from usertide.events import Event
from usertide.processors.sessions import PAGE_TYPES, Sessionizer

WINDOW_SECONDS = 60.0
# The sliding window keeps at most this many timestamps: past it, the rate is
# extrapolated from the span the kept ones cover, which bounds state per user.
WINDOW_CAP = 48
# Distinct pages per session by linear counting over a 256-bit bitmap: exact enough
# (±5 %) up to a few hundred pages, at 32 bytes of state.
BITMAP_BITS = 256


class FeatureState(msgspec.Struct, array_like=True):
    session_id: str = ""
    window: list[float] = msgspec.field(default_factory=list)
    gap_n: int = 0
    gap_mean: float = 0.0
    gap_m2: float = 0.0
    prev: float = 0.0
    pages_bits: bytes = b""


class BehaviourFeatures(Processor[FeatureState]):
    name: ClassVar[str] = "features"
    state_type: ClassVar[type[msgspec.Struct]] = FeatureState

    def initial(self) -> FeatureState:
        return FeatureState()

    def process(self, event: Event, state: FeatureState, user: UserState) -> Sequence[Output]:
        session = user.get(Sessionizer)
        t = event.timestamp.timestamp()
        if session.id != state.session_id:
            state.session_id = session.id
            state.window = []
            state.gap_n = 0
            state.gap_mean = 0.0
            state.gap_m2 = 0.0
            state.prev = 0.0
            state.pages_bits = b""
        if state.prev:
            gap = max(0.0, t - state.prev)
            # Welford's running mean and variance of inter-event gaps.
            state.gap_n += 1
            delta = gap - state.gap_mean
            state.gap_mean += delta / state.gap_n
            state.gap_m2 += delta * (gap - state.gap_mean)
        state.prev = max(state.prev, t)
        window = state.window
        window.append(t)
        cutoff = t - WINDOW_SECONDS
        while window and window[0] <= cutoff:
            window.pop(0)
        if len(window) > WINDOW_CAP:
            del window[: len(window) - WINDOW_CAP]
        if event.type in PAGE_TYPES:
            page = event.context.page_path or event.context.page_url or event.name or ""
            state.pages_bits = _set_bit(state.pages_bits, page)
        return ()

    def merge(self, into: FeatureState, other: FeatureState) -> FeatureState:
        # Features describe the current session; the merged user's current session is
        # whichever of the two was more recent.
        return other if other.prev >= into.prev else into

    def view(self, state: FeatureState) -> dict[str, Any]:
        return features_of(state)


def events_per_minute(state: FeatureState) -> float:
    window = state.window
    if not window:
        return 0.0
    if len(window) < WINDOW_CAP:
        return float(len(window))
    span = max(window[-1] - window[0], 1.0)
    return len(window) / span * 60.0


def features_of(state: FeatureState) -> dict[str, Any]:
    gap_std = math.sqrt(state.gap_m2 / state.gap_n) if state.gap_n > 1 else 0.0
    return {
        "events_per_minute": round(events_per_minute(state), 3),
        "gap_mean_seconds": round(state.gap_mean, 3),
        "gap_cv": round(gap_std / state.gap_mean, 4) if state.gap_mean > 0 else 0.0,
        "distinct_pages": distinct_pages(state.pages_bits),
    }


def distinct_pages(bits: bytes) -> int:
    if not bits:
        return 0
    ones = sum(b.bit_count() for b in bits)
    zeros = BITMAP_BITS - ones
    if zeros == 0:
        return BITMAP_BITS * 4  # saturated: report a floor, not infinity
    return round(-BITMAP_BITS * math.log(zeros / BITMAP_BITS))


def _set_bit(bits: bytes, page: str) -> bytes:
    h = int.from_bytes(hashlib.blake2b(page.encode(), digest_size=4).digest(), "little")
    index = h % BITMAP_BITS
    buf = bytearray(bits or bytes(BITMAP_BITS // 8))
    buf[index >> 3] |= 1 << (index & 7)
    return bytes(buf)
