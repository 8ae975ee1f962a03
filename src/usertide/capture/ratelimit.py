"""A token bucket per key (a write key, a client address): sustained rate plus a burst.

Buckets that have refilled are dropped once there are more than ``max_keys``, so keying by
address cannot grow memory without bound (a full bucket is the same as none)."""

from __future__ import annotations

import time


class RateLimiter:
    def __init__(self, rate: float, burst: float, max_keys: int = 100_000) -> None:
        self.rate = rate
        self.burst = burst
        self.max_keys = max_keys
        self._buckets: dict[str, tuple[float, float]] = {}

    def take(self, key: str, cost: float = 1.0, now: float | None = None) -> float:
        """Take ``cost`` tokens; returns 0 when allowed, else seconds until allowed."""
        now = time.monotonic() if now is None else now
        if len(self._buckets) > self.max_keys:
            self._prune(now)
        tokens, last = self._buckets.get(key, (self.burst, now))
        tokens = min(self.burst, tokens + (now - last) * self.rate)
        if tokens >= cost:
            self._buckets[key] = (tokens - cost, now)
            return 0.0
        self._buckets[key] = (tokens, now)
        return (cost - tokens) / self.rate if self.rate > 0 else 60.0

    def _prune(self, now: float) -> None:
        full = self.burst / self.rate if self.rate > 0 else 0.0  # seconds to refill
        self._buckets = {k: v for k, v in self._buckets.items() if now - v[1] < full}
