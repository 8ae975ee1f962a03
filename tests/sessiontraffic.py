"""Shop traffic for session-anomaly tests: short human sessions and regular crawlers
(Segment page events with a client session id)."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

START = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)


def _page(anon: str, sid: str, at: float, path: str, bot: bool) -> dict[str, Any]:
    return {
        "type": "page",
        "anonymousId": anon,
        "timestamp": (START + timedelta(seconds=at)).isoformat(),
        "context": {
            "sessionId": sid,
            "ip": "54.221.60.7" if bot else "73.92.12.9",
            "userAgent": "python-requests/2.31"
            if bot
            else "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like "
            "Gecko) Chrome/120.0.0.0 Safari/537.36",
            "page": {"path": path, "referrer": None if bot else "https://www.google.com/"},
        },
    }


def traffic(humans: int = 300, bots: int = 4, seed: int = 1) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    events: list[dict[str, Any]] = []
    for i in range(humans):
        t = rng.uniform(0, 3600)
        for _ in range(rng.randint(1, 10)):
            events.append(_page(f"h{i}", f"hs{i}", t, f"/p/{rng.randint(1, 300)}", False))
            t += rng.lognormvariate(3.0, 1.0)
    for b in range(bots):
        t = rng.uniform(0, 3600)
        for k in range(150):
            events.append(_page(f"b{b}", f"bs{b}", t + k * 2.0, f"/p/{k}", True))
    events.sort(key=lambda e: e["timestamp"])
    return events
