from __future__ import annotations

import base64

from prometheus_client import generate_latest

from usertide.metrics import Metrics
from usertide.web.auth import basic_username as _basic_username


def _basic(text: str) -> str:
    return "Basic " + base64.b64encode(text.encode()).decode()


def test_basic_username_is_parsed_consistently() -> None:
    for _ in range(2):
        assert _basic_username(_basic("utw_key:")) == "utw_key"
        assert _basic_username("basic " + base64.b64encode(b"k2:pw").decode()) == "k2"
        assert _basic_username(_basic(":only-password")) is None
        assert _basic_username("Basic !!not-base64!!") is None
        assert _basic_username("Bearer utw_key") is None
        assert _basic_username(None) is None and _basic_username("") is None


def test_metric_children_are_reused_and_counted() -> None:
    metrics = Metrics()
    first = metrics.child(metrics.events_received, "segment")
    assert metrics.child(metrics.events_received, "segment") is first
    assert metrics.child(metrics.events_received, "posthog") is not first
    first.inc(3)
    metrics.child(metrics.events_received, "segment").inc(2)
    text = generate_latest(metrics.registry).decode()
    assert 'usertide_events_received_total{source="segment"} 5.0' in text
